"""The pages in a real browser: Debian's headless Chromium driven by Playwright, against a real
uvicorn server that this module starts in a thread on a free loopback port, serving
create_app(engine, clock, settings) — on SQLite, then on PostgreSQL.

Ten cases of WH-HC-001 wait at the first approval level. The city manager signs in through the
login form, reads the funnel and drills down to the district and the grassroots union; then keeps
the city dashboard open with ?refresh=1 while the grassroots, district and city approvers each
bulk-approve from their work queue; the last approval moves four cases to disbursement, and the
open dashboard shows it without being reloaded. Also: a refusal in words on a case page, the
state machine's SVG, and a bulk POST with a wrong CSRF token refused.

Screenshots go to artifacts/screenshots/ (git-ignored); the SQLite run's city dashboard is also
copied to docs/screenshots/dashboard.png (1280x900).

Needs /usr/bin/chromium (Debian package `chromium`, with `fonts-noto-cjk`; `make install`
installs both when run as root). Without it these tests fail in CI (CI=true) and skip elsewhere.
Playwright never downloads a browser here: it is pointed at that executable."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from sqlalchemy import Engine, select, text

from jinqiu.api.app import create_app
from jinqiu.states import MACHINE, CaseState
from jinqiu.workflow.cases.models import Case
from jinqiu.workflow.clock import ManualClock
from jinqiu.workflow.config import Settings
from jinqiu.workflow.db import transaction
from jinqiu.workflow.users.models import User
from tests.conftest import IN_CI, _wipe
from tests.factories import ROOT, case_in, new_case, password_hash, weihai

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1280, "height": 900}
SHOTS = ROOT / "artifacts" / "screenshots"
DOCS_SHOT = ROOT / "docs" / "screenshots" / "dashboard.png"
PASSWORD = "browser-test-password-7"
WAIT_MS = 15_000  # for the page to show something; nothing here asserts how long it took
USERS = {
    "manager.wh": ("WH", "manager"),
    "clerk.wh-hc-001": ("WH-HC-001", "clerk"),
    "approver.wh-hc-001": ("WH-HC-001", "approver"),
    "approver.wh-hc": ("WH-HC", "approver"),
    "approver.wh": ("WH", "approver"),
}
CASES = 10
case_t = Case.__table__  # type: ignore[attr-defined]
user_t = User.__table__  # type: ignore[attr-defined]


def _browser_problem() -> str | None:
    if not CHROMIUM.exists():
        return (
            f"{CHROMIUM} not found: install Debian's `chromium` and `fonts-noto-cjk` "
            "(`make install` does it as root)"
        )
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the Python package `playwright` is not installed (pip install -e '.[dev]')"
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    problem = _browser_problem()
    if problem is not None:
        if IN_CI:
            pytest.fail(f"{problem} — CI must run the browser tests", pytrace=False)
        pytest.skip(f"{problem}; CI never skips these")
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


class ServerThread:
    """uvicorn serving the app on a socket this class binds itself (port 0: a free one)."""

    def __init__(self, app: Any) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
        self.thread = threading.Thread(
            target=self.server.run,
            kwargs={"sockets": [self.sock]},
            daemon=True,
            name="uvicorn-browser-test",
        )

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.sock.close()


@dataclass
class Site:
    engine: Engine
    clock: ManualClock
    url: str
    dialect: str
    campaign: int
    waiting: list[int]  # the ten cases at the first approval level
    aided: int  # a survey case whose student already has other aid
    shots: list[Path] = field(default_factory=list)

    def shot(self, page: Any, name: str) -> Path:
        path = SHOTS / f"{name}-{self.dialect}.png"
        page.screenshot(path=str(path))
        self.shots.append(path)
        return path

    def unit_name(self, code: str) -> str:
        with self.engine.connect() as conn:
            return str(
                conn.execute(
                    text("SELECT name FROM unit WHERE code = :c"), {"c": code}
                ).scalar_one()
            )

    def case(self, case_id: int) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(select(case_t).where(case_t.c.id == case_id)).one()


def _seed(engine: Engine, clock: ManualClock) -> tuple[int, list[int], int]:
    """The Weihai tree and campaign, the users, ten cases at approval step 0 of WH-HC-001 (put
    there by the factory on 2024-08-09) and one survey case whose student already gets a state
    grant."""
    _tree, campaign = weihai(engine, clock)
    with transaction(engine) as conn:
        units = {r.code: r.id for r in conn.execute(text("SELECT id, code FROM unit"))}
        conn.execute(
            user_t.insert(),
            [
                {
                    "username": name,
                    "password_hash": password_hash(PASSWORD),
                    "display_name": name,
                    "unit_id": units[unit],
                    "roles": [role],
                    "is_active": True,
                    "created_at": clock.now(),
                }
                for name, (unit, role) in USERS.items()
            ],
        )
    aided = new_case(
        engine, clock, campaign, "WH-HC-001", student_changes={"already_aided_by": "国家助学金"}
    )
    clock.set(dt.datetime(2024, 8, 9, 10))  # five working days of publicity are over
    waiting = [
        case_in(engine, clock, campaign, "WH-HC-001", CaseState.APPROVAL) for _ in range(CASES)
    ]
    return campaign, waiting, aided


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def site(
    request: pytest.FixtureRequest, browser: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Site]:
    engine: Engine = request.getfixturevalue(
        "sqlite_engine" if request.param == "sqlite" else "pg_engine"
    )
    _wipe(engine)
    clock = ManualClock(dt.datetime(2024, 7, 20, 9))
    campaign, waiting, aided = _seed(engine, clock)
    settings = Settings(
        secret_key="browser-test-secret-0123456789abcdef",
        token_minutes=24 * 60,
        attachments_dir=str(tmp_path_factory.mktemp("attachments")),
    )
    with ServerThread(create_app(engine=engine, clock=clock, settings=settings)) as server:
        yield Site(
            engine=engine,
            clock=clock,
            url=server.url,
            dialect=request.param,
            campaign=campaign,
            waiting=waiting,
            aided=aided,
        )
    _wipe(engine)


def signed_in(browser: Any, site: Site, username: str, path: str = "/") -> Any:
    """A new browser context (its own cookies) signed in through the login form at `path`."""
    context = browser.new_context(viewport=VIEWPORT, locale="zh-CN", base_url=site.url)
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    page.goto(path)
    assert "/login" in page.url  # not signed in yet: sent to the form, `next` kept
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_url(lambda url: "/login" not in url)
    return page


def column(state: str) -> int:
    """The units table's cell of a state: the unit's name, then one per state in the
    machine's order."""
    return 1 + [str(s) for s in MACHINE.state_names].index(state)


def funnel(page: Any, state: str) -> Any:
    return page.locator(f"[data-testid=funnel] li[data-state={state}] .n")


def bulk_approve(page: Any, expect: Any, *, pick: int | None, opinion: str) -> str:
    """Ticks the first `pick` cases (None: all, by the select-all box), types the opinion,
    clicks 批量审批通过; returns the flash message."""
    if pick is None:
        page.check("input[data-select-all]")
    else:
        boxes = page.locator("[data-testid=queue] input[name=cases]")
        for i in range(pick):
            boxes.nth(i).check()
    page.fill(".bulk input[name=opinion]", opinion)
    button = page.locator("button[name=event][value=approve]")
    expect(button).to_have_text("批量审批通过")
    button.click()
    page.wait_for_url(re.compile(r"/queue\?.*flash="))
    flash = page.locator("[data-testid=flash]")
    expect(flash).to_be_visible()
    return str(flash.inner_text())


def test_funnel_drill_down_bulk_approval_and_a_self_refreshing_dashboard(
    browser: Any, site: Site
) -> None:
    from playwright.sync_api import expect

    # The manager signs in through the form and lands on the city dashboard.
    manager = signed_in(browser, site, "manager.wh", "/dashboard")
    assert "/dashboard" in manager.url
    expect(manager.locator("nav.crumbs")).to_have_text("威海市总工会")
    expect(funnel(manager, "approval")).to_have_text(str(CASES))
    expect(funnel(manager, "survey")).to_have_text("1")
    expect(funnel(manager, "disbursement")).to_have_text("0")
    expect(
        manager.locator("[data-testid=units] tr[data-unit=WH-HC] td").nth(column("approval"))
    ).to_have_text(str(CASES))
    site.shot(manager, "dashboard-before")

    # Drill down by clicking the child units' links.
    manager.click("[data-testid=units] tr[data-unit=WH-HC] a")
    manager.wait_for_url(re.compile(r"unit=WH-HC$"))
    expect(manager.locator("nav.crumbs a")).to_have_text(["威海市总工会", "环翠区总工会"])
    expect(manager).to_have_title("阶段看板 · 环翠区总工会 · 金秋助学")
    rows = manager.locator("[data-testid=units] tbody tr")
    expect(rows).to_have_count(3)  # WH-HC-001..003
    manager.click("[data-testid=units] tr[data-unit=WH-HC-001] a")
    manager.wait_for_url(re.compile(r"unit=WH-HC-001$"))
    crumbs = manager.locator("nav.crumbs a")
    expect(crumbs).to_have_count(3)
    expect(crumbs.nth(2)).to_have_text(site.unit_name("WH-HC-001"))
    expect(crumbs.nth(2)).to_have_attribute("href", re.compile(r"unit=WH-HC-001$"))
    expect(manager).to_have_title(f"阶段看板 · {site.unit_name('WH-HC-001')} · 金秋助学")
    expect(manager.locator("[data-testid=units]")).to_have_count(0)  # no child units below
    expect(funnel(manager, "approval")).to_have_text(str(CASES))
    site.shot(manager, "dashboard-grassroots")

    # The city dashboard stays open, refreshing itself every second.
    manager.goto("/dashboard?refresh=1")
    expect(manager.locator("#dashboard")).to_have_attribute("data-every", "1")
    manager.evaluate("window.__notReloaded = true")

    # The grassroots approver ticks four of the ten cases and approves them with one opinion.
    grassroots = signed_in(browser, site, "approver.wh-hc-001")
    assert "/queue" in grassroots.url  # an approver's home is the work queue
    queue_rows = grassroots.locator("[data-testid=queue] tbody tr[data-case]")
    expect(queue_rows).to_have_count(CASES)
    chosen = [int(queue_rows.nth(i).get_attribute("data-case") or 0) for i in range(4)]
    site.shot(grassroots, "queue")
    flash = bulk_approve(grassroots, expect, pick=4, opinion="情况属实，同意上报")
    assert flash == "已审批通过 4 件", flash
    expect(queue_rows).to_have_count(CASES - 4)
    site.shot(grassroots, "queue-approved")
    for case_id in chosen:
        row = site.case(case_id)
        assert (row.state, row.approval_step) == ("approval", 1)
    # Still `approval`: the funnel counts states, so the open dashboard has nothing new yet.
    expect(funnel(manager, "approval")).to_have_text(str(CASES))

    # The district approver takes all four (select-all box), then the city approver.
    district = signed_in(browser, site, "approver.wh-hc")
    expect(district.locator("[data-testid=queue] tbody tr[data-case]")).to_have_count(4)
    assert bulk_approve(district, expect, pick=None, opinion="审核同意") == "已审批通过 4 件"
    city = signed_in(browser, site, "approver.wh")
    city_rows = city.locator("[data-testid=queue] tbody tr[data-case]")
    expect(city_rows).to_have_count(4)
    assert sorted(
        int(city_rows.nth(i).get_attribute("data-case") or 0) for i in range(4)
    ) == sorted(chosen)
    assert bulk_approve(city, expect, pick=None, opinion="审批同意资助") == "已审批通过 4 件"
    for case_id in chosen:
        row = site.case(case_id)
        assert (row.state, row.approved_amount_fen) == ("disbursement", 300_000)

    # The open dashboard shows the move without being reloaded.
    expect(funnel(manager, "disbursement")).to_have_text("4")
    expect(funnel(manager, "approval")).to_have_text(str(CASES - 4))
    assert manager.evaluate("window.__notReloaded") is True
    assert manager.locator("#dashboard").get_attribute("data-refreshed-at")
    expect(
        manager.locator("[data-testid=units] tr[data-unit=WH-HC] td").nth(column("disbursement"))
    ).to_have_text("4")
    shot = site.shot(manager, "dashboard")
    if site.dialect == "sqlite":
        DOCS_SHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, DOCS_SHOT)
        assert DOCS_SHOT.stat().st_size < 300_000

    # The timeline of one approved case, opinions and all.
    manager.goto(f"/cases/{chosen[0]}")
    timeline = manager.locator("[data-testid=timeline] li")
    # created, submit, verify, published, publicity over, 3 approvals
    expect(timeline).to_have_count(8)
    expect(timeline.nth(7)).to_contain_text("审批通过")
    expect(timeline.nth(7)).to_contain_text("审批同意资助")
    expect(timeline.nth(5)).to_contain_text("情况属实，同意上报")
    for page in (manager, grassroots, district, city):
        page.context.close()


def test_a_guard_refusal_is_shown_in_words_on_the_case_page(browser: Any, site: Site) -> None:
    from playwright.sync_api import expect

    before = site.case(site.aided)
    clerk = signed_in(browser, site, "clerk.wh-hc-001", f"/cases/{site.aided}")
    assert f"/cases/{site.aided}" in clerk.url  # back where the sign-in started
    expect(clerk.locator("h1 .state")).to_have_text("摸底申报")
    clerk.fill("textarea[name=opinion]", "请予受理")
    clerk.click("button[name=event][value=submit]")
    clerk.wait_for_url(re.compile(r"refusal="))
    refusal = clerk.locator("[data-testid=refusal]")
    expect(refusal).to_contain_text("未能办理")
    expect(refusal.locator("li").filter(has_text="已获")).to_have_text(
        "该学生已获国家助学金资助，不再重复救助"
    )
    expect(clerk.locator("h1 .state")).to_have_text("摸底申报")
    site.shot(clerk, "case-refusal")
    after = site.case(site.aided)
    assert (after.state, after.version, after.audit_seq) == (
        before.state,
        before.version,
        before.audit_seq,
    )
    expect(clerk.locator("[data-testid=timeline] li")).to_have_count(1)  # only its creation
    clerk.context.close()


def test_the_state_machine_page_draws_every_state(browser: Any, site: Site) -> None:
    from playwright.sync_api import expect

    page = signed_in(browser, site, "manager.wh", "/help/machine")
    svg = page.locator("[data-testid=machine] svg")
    expect(svg).to_be_visible()
    for state in CaseState:
        box = svg.locator(f"g.state[data-state={state.value}]")
        expect(box).to_have_count(1)
        expect(box).to_contain_text(MACHINE.state_labels[state])
        assert box.bounding_box() is not None  # drawn, with a size
    site.shot(page, "machine")
    page.context.close()


def test_a_bulk_post_with_a_wrong_csrf_token_is_refused(browser: Any, site: Site) -> None:
    page = signed_in(browser, site, "approver.wh-hc-001", "/queue")
    target = site.waiting[-1]
    before = site.case(target)
    form = {
        "event": "approve",
        "cases": f"{target}:{before.version}",
        "opinion": "同意",
        "back": "/queue",
    }
    refused = page.request.post(
        "/queue/bulk", form={**form, "csrf_token": "forged"}, max_redirects=0
    )
    assert refused.status == 400, refused.text()
    assert "表单已过期" in refused.text()
    assert site.case(target).version == before.version
    no_token = page.request.post("/queue/bulk", form=form, max_redirects=0)
    assert no_token.status in {400, 422}
    assert site.case(target).version == before.version
    # The page's own token gets past the check: the refusals above were the token's. (The event
    # itself, `verify` on a case in approval, is then refused case by case: nothing changes, so
    # the other tests' cases stay as they were.)
    token = page.locator("#bulk input[name=csrf_token]").input_value()
    accepted = page.request.post(
        "/queue/bulk", form={**form, "event": "verify", "csrf_token": token}, max_redirects=0
    )
    assert accepted.status == 303
    page.goto(accepted.headers["location"])  # the message travels signed: the page shows it
    assert "1 件未能办理" in page.locator("[data-testid=flash]").inner_text()
    assert site.case(target).version == before.version
    page.context.close()


def test_the_pages_show_times_in_china_time(browser: Any, site: Site) -> None:
    page = signed_in(browser, site, "approver.wh-hc-001", f"/cases/{site.aided}")
    try:
        created = page.locator("[data-testid=timeline] li time").first.inner_text()
        assert created == "2024-07-20 09:00"  # new_case() ran at 2024-07-20 09:00 China time
        page.goto("/queue")
        updated = page.locator("[data-testid=queue] tbody tr[data-case] td").last.inner_text()
        assert updated == "08-09 10:00"  # every case here last moved at 2024-08-09 10:00
    finally:
        page.context.close()


def test_a_clerk_attaches_documents_on_the_case_page(browser: Any, site: Site) -> None:
    from playwright.sync_api import expect

    from tests.api.test_attachments import png

    case = new_case(site.engine, site.clock, site.campaign, "WH-HC-001")
    clerk = signed_in(browser, site, "clerk.wh-hc-001", f"/cases/{case}")
    documents = clerk.locator("[data-testid=attachments]")
    expect(documents).to_contain_text("尚未上传材料")
    documents.locator("select[name=kind]").select_option("hardship_proof")
    scan = {"name": "困难证明.png", "mimeType": "image/png", "buffer": png(640, 480)}
    documents.locator("input[name=file]").set_input_files(files=[scan])
    documents.locator("button[type=submit]").click()
    clerk.wait_for_url(re.compile(r"flash="))
    expect(clerk.locator(".flash")).to_contain_text("已上传困难证明")
    expect(documents.locator("tbody tr")).to_have_count(1)
    expect(documents.locator("tbody tr td").first).to_have_text("困难证明")
    expect(clerk.locator("[data-testid=timeline]")).to_contain_text("上传材料")
    # A program renamed to look like a scan is judged by its bytes, and refused in words.
    fake = {
        "name": "录取通知书.pdf",
        "mimeType": "application/pdf",
        "buffer": b"MZ\x90" + bytes(64),
    }
    documents.locator("input[name=file]").set_input_files(files=[fake])
    documents.locator("button[type=submit]").click()
    clerk.wait_for_url(re.compile(r"refusal="))
    expect(clerk.locator("[data-testid=refusal]")).to_contain_text("只接受 PDF、JPEG 或 PNG")
    expect(documents.locator("tbody tr")).to_have_count(1)
    site.shot(clerk, "case-attachments")
    clerk.context.close()
