"""The pages in a real browser: headless Chromium against a real uvicorn server serving
create_app(engine, clock, settings) — on SQLite, then on PostgreSQL (the harness:
tests/api/browser_site.py).

Ten cases of WH-HC-001 wait at the first approval level. The city manager signs in through the
login form, reads the funnel and drills down to the district and the grassroots union; then keeps
the city dashboard open with ?refresh=1 while the grassroots, district and city approvers each
bulk-approve from their work queue; the last approval moves four cases to disbursement, and the
open dashboard shows it without being reloaded. Also: a refusal in words on a case page, the
state machine's SVG, and a bulk POST with a wrong CSRF token refused.

Screenshots go to artifacts/screenshots/ (git-ignored); the SQLite run's city dashboard is also
copied to docs/screenshots/dashboard.png (1280x900)."""

from __future__ import annotations

import datetime as dt
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, text

from jinqiu.states import MACHINE, CaseState
from jinqiu.workflow.cases.models import Case
from jinqiu.workflow.clock import ManualClock
from tests.api.browser_site import (
    DATABASES,
    PASSWORD,
    SHOTS,
    VIEWPORT,
    WAIT_MS,
    Account,
    ServerThread,
    browser,
    sign_in,
    user_t,
    weihai_site,
)
from tests.factories import ROOT, case_in, new_case

# The module-scoped Chromium fixture, shared; the rest stays importable from here for the page
# tests that took the harness from this module before it had one of its own.
__all__ = ["PASSWORD", "SHOTS", "VIEWPORT", "WAIT_MS", "ServerThread", "browser", "user_t"]
DOCS_SHOT = ROOT / "docs" / "screenshots" / "dashboard.png"
USERS = [
    Account("manager.wh", "WH", "manager"),
    Account("clerk.wh-hc-001", "WH-HC-001", "clerk"),
    Account("approver.wh-hc-001", "WH-HC-001", "approver"),
    Account("approver.wh-hc", "WH-HC", "approver"),
    Account("approver.wh", "WH", "approver"),
]
CASES = 10
case_t = Case.__table__  # type: ignore[attr-defined]


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


def _seed(engine: Engine, clock: ManualClock, campaign: int) -> tuple[list[int], int]:
    """Ten cases at approval step 0 of WH-HC-001 (put there by the factory on 2024-08-09) and
    one survey case whose student already gets a state grant."""
    aided = new_case(
        engine, clock, campaign, "WH-HC-001", student_changes={"already_aided_by": "国家助学金"}
    )
    clock.set(dt.datetime(2024, 8, 9, 10))  # five working days of publicity are over
    waiting = [
        case_in(engine, clock, campaign, "WH-HC-001", CaseState.APPROVAL) for _ in range(CASES)
    ]
    return waiting, aided


@pytest.fixture(scope="module", params=DATABASES)
def site(
    request: pytest.FixtureRequest, browser: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Site]:
    with weihai_site(
        request,
        now=dt.datetime(2024, 7, 20, 9),
        users=USERS,
        attachments_dir=tmp_path_factory.mktemp("attachments"),
    ) as served:
        waiting, aided = _seed(served.engine, served.clock, served.campaign)
        yield Site(
            engine=served.engine,
            clock=served.clock,
            url=served.url,
            dialect=served.dialect,
            campaign=served.campaign,
            waiting=waiting,
            aided=aided,
        )


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
    manager = sign_in(browser, site.url, "manager.wh", "/dashboard")
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
    grassroots = sign_in(browser, site.url, "approver.wh-hc-001")
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
    district = sign_in(browser, site.url, "approver.wh-hc")
    expect(district.locator("[data-testid=queue] tbody tr[data-case]")).to_have_count(4)
    assert bulk_approve(district, expect, pick=None, opinion="审核同意") == "已审批通过 4 件"
    city = sign_in(browser, site.url, "approver.wh")
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
    clerk = sign_in(browser, site.url, "clerk.wh-hc-001", f"/cases/{site.aided}")
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

    page = sign_in(browser, site.url, "manager.wh", "/help/machine")
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
    page = sign_in(browser, site.url, "approver.wh-hc-001", "/queue")
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
    page = sign_in(browser, site.url, "approver.wh-hc-001", f"/cases/{site.aided}")
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
    clerk = sign_in(browser, site.url, "clerk.wh-hc-001", f"/cases/{case}")
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
