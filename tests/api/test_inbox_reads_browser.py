"""Two users of one unit in headless Chromium (both databases), each in a browser of their own: the
clerk reads the reminder (its count leaves the clerk's nav); the manager still has it unread, with
the count in the nav and the clerk named as the unit's first reader, and marks everything read."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, text

from jinqiu.api.app import create_app
from jinqiu.notifications.models import InboxMessage, InboxRead
from jinqiu.notifications.outbox import InboxItem, post_to_inbox
from jinqiu.workflow.clock import ManualClock
from jinqiu.workflow.config import Settings
from jinqiu.workflow.db import transaction
from jinqiu.workflow.users.service import hash_password
from tests.api.test_browser import (  # the browser and server harness of the page tests
    PASSWORD,
    VIEWPORT,
    WAIT_MS,
    ServerThread,
    browser,
    user_t,
)
from tests.conftest import _wipe
from tests.factories import weihai

__all__ = ["browser"]  # the module-scoped Chromium fixture, shared
CLERK = "clerk.wh-hc-001"
MANAGER = "manager.wh-hc-001"
REMINDER = "统计表报送提醒（T-1）"
inbox_t = InboxMessage.__table__  # type: ignore[attr-defined]
read_t = InboxRead.__table__  # type: ignore[attr-defined]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def site(
    request: pytest.FixtureRequest, browser: Any, tmp_path: Path
) -> Iterator[tuple[str, Engine]]:
    engine: Engine = request.getfixturevalue(
        "sqlite_engine" if request.param == "sqlite" else "pg_engine"
    )
    _wipe(engine)
    clock = ManualClock(dt.datetime(2024, 7, 20, 9))
    weihai(engine, clock)
    with transaction(engine) as conn:
        unit = conn.execute(text("SELECT id FROM unit WHERE code = 'WH-HC-001'")).scalar_one()
        conn.execute(
            user_t.insert(),
            [
                {"username": name, "password_hash": hash_password(PASSWORD),
                 "display_name": name, "unit_id": unit, "roles": [role], "is_active": True,
                 "created_at": clock.now()}
                for name, role in ((CLERK, "clerk"), (MANAGER, "manager"))
            ],
        )  # fmt: skip
        post_to_inbox(
            conn,
            [InboxItem("test:t-1", "WH-HC-001", REMINDER, "请于明日前报送统计表。", "/queue")],
            clock.now(),
        )
    settings = Settings(
        secret_key="browser-test-secret-0123456789abcdef",
        token_minutes=24 * 60,
        attachments_dir=str(tmp_path / "attachments"),
    )
    with ServerThread(create_app(engine=engine, clock=clock, settings=settings)) as server:
        yield server.url, engine
    _wipe(engine)


def signed_in(browser: Any, url: str, username: str) -> Any:
    context = browser.new_context(viewport=VIEWPORT, locale="zh-CN", base_url=url)
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    page.goto("/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_url(re.compile(r"^(?!.*/login)"))
    return page


def test_each_user_of_the_unit_reads_the_reminder_for_themselves(
    browser: Any, site: tuple[str, Engine]
) -> None:
    from playwright.sync_api import expect

    url, engine = site
    clerk = signed_in(browser, url, CLERK)
    expect(clerk.locator("[data-testid=unread-count]")).to_have_text("1")
    clerk.click("[data-testid=inbox-link]")
    clerk.locator("[data-testid=inbox-item] button[type=submit]").click()
    expect(clerk.locator("[data-testid=inbox-item]")).to_contain_text(f"已读 · {CLERK}")
    expect(clerk.locator("[data-testid=unread-count]")).to_have_count(0)

    manager = signed_in(browser, url, MANAGER)
    expect(manager.locator("[data-testid=unread-count]")).to_have_text("1")
    manager.click("[data-testid=inbox-link]")
    item = manager.locator("[data-testid=inbox-item]")
    expect(item).to_contain_text(REMINDER)
    expect(item.locator("[data-testid=unit-first-read]")).to_contain_text(CLERK)
    expect(item.locator("button[type=submit]")).to_have_count(1)
    manager.click("[data-testid=read-all] button[type=submit]")
    expect(manager.locator(".flash")).to_contain_text("已将 1 条标为已读")
    expect(manager.locator("[data-testid=inbox-item]")).to_contain_text(f"已读 · {MANAGER}")
    expect(manager.locator("[data-testid=unread-count]")).to_have_count(0)
    manager.context.close()
    clerk.context.close()

    with engine.connect() as conn:
        readers = conn.execute(select(read_t.c.username).order_by(read_t.c.username)).scalars()
        assert list(readers) == [CLERK, MANAGER]
        assert conn.execute(select(inbox_t.c.read_by)).scalar_one() == CLERK
