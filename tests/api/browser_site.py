"""The harness of the page tests in a real browser: Debian's headless Chromium driven by
Playwright (the module-scoped `browser` fixture), a real uvicorn server started in a thread on a
free loopback port (ServerThread), the Weihai site those tests share (weihai_site: the Weihai
tree and 2024 campaign, the accounts a test names, create_app served on SQLite or PostgreSQL)
and the sign-in through the login form (sign_in).

Needs /usr/bin/chromium (Debian package `chromium`, with `fonts-noto-cjk`; `make install`
installs both when run as root). Without it the browser tests fail in CI (CI=true) and skip
elsewhere. Playwright never downloads a browser here: it is pointed at that executable."""

from __future__ import annotations

import datetime as dt
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from sqlalchemy import Engine, text

from jinqiu.api.app import create_app
from jinqiu.workflow.clock import ManualClock
from jinqiu.workflow.config import Settings
from jinqiu.workflow.db import transaction
from jinqiu.workflow.users.models import User
from tests.conftest import IN_CI, _wipe
from tests.factories import ROOT, password_hash, weihai

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
PASSWORD = "browser-test-password-7"
# For the page to show something; nothing here asserts how long it took. Generous: on the two
# cores of CI with other suites running, an import's dry run on PostgreSQL once took over 15 s.
WAIT_MS = 60_000
# The params of a `site` fixture: SQLite, then PostgreSQL.
DATABASES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
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
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=WAIT_MS)  # its own default is 5 s, whatever the context says
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


@dataclass(frozen=True)
class Account:
    """A user a site starts with, signing in with PASSWORD."""

    username: str
    unit: str  # the unit's code
    role: str
    display_name: str = ""  # empty: the username


@dataclass(frozen=True)
class WeihaiSite:
    url: str
    engine: Engine
    clock: ManualClock
    campaign: int
    dialect: str  # the `site` param: "sqlite" or "postgresql"


@contextmanager
def weihai_site(
    request: pytest.FixtureRequest,
    *,
    now: dt.datetime,
    users: Sequence[Account],
    attachments_dir: Path | None = None,
) -> Iterator[WeihaiSite]:
    """The database of `request.param` wiped, the Weihai tree and 2024 campaign loaded at `now`
    (the site's ManualClock), `users` inserted, and create_app served on it until the block
    ends; then the database is wiped again. Whatever a test seeds beyond that, it seeds in the
    block, before it yields: the app runs no scheduler here, so nothing reads the database
    until the test's first request."""
    dialect = str(request.param)
    engine: Engine = request.getfixturevalue(
        "sqlite_engine" if dialect == "sqlite" else "pg_engine"
    )
    _wipe(engine)
    clock = ManualClock(now)
    _tree, campaign = weihai(engine, clock)
    with transaction(engine) as conn:
        units = {r.code: r.id for r in conn.execute(text("SELECT id, code FROM unit"))}
        conn.execute(
            user_t.insert(),
            [
                {
                    "username": user.username,
                    "password_hash": password_hash(PASSWORD),
                    "display_name": user.display_name or user.username,
                    "unit_id": units[user.unit],
                    "roles": [user.role],
                    "is_active": True,
                    "created_at": clock.now(),
                }
                for user in users
            ],
        )
    settings = Settings(
        secret_key="browser-test-secret-0123456789abcdef",
        token_minutes=24 * 60,
        attachments_dir=None if attachments_dir is None else str(attachments_dir),
    )
    with ServerThread(create_app(engine=engine, clock=clock, settings=settings)) as server:
        yield WeihaiSite(
            url=server.url, engine=engine, clock=clock, campaign=campaign, dialect=dialect
        )
    _wipe(engine)


def sign_in(
    browser: Any,
    url: str,
    username: str,
    path: str = "/",
    *,
    password: str = PASSWORD,
) -> Any:
    """A new browser context (its own cookies; downloads accepted, Playwright's default)
    signed in through the login form at `path`; the page is where the sign-in led."""
    context = browser.new_context(viewport=VIEWPORT, locale="zh-CN", base_url=url)
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    page.goto(path)
    assert "/login" in page.url  # not signed in yet: sent to the form, `next` kept
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_url(lambda u: "/login" not in u)
    return page
