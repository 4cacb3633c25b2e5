"""Two users of one unit in headless Chromium (both databases), each in a browser of their own: the
clerk reads the reminder (its count leaves the clerk's nav); the manager still has it unread, with
the count in the nav and the clerk named as the unit's first reader, and marks everything read."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from jinqiu.notifications.models import InboxMessage, InboxRead
from jinqiu.notifications.outbox import InboxItem, post_to_inbox
from jinqiu.workflow.db import transaction
from tests.api.browser_site import DATABASES, Account, browser, sign_in, weihai_site

__all__ = ["browser"]  # the module-scoped Chromium fixture, shared
CLERK = "clerk.wh-hc-001"
MANAGER = "manager.wh-hc-001"
REMINDER = "统计表报送提醒（T-1）"
inbox_t = InboxMessage.__table__  # type: ignore[attr-defined]
read_t = InboxRead.__table__  # type: ignore[attr-defined]


@pytest.fixture(params=DATABASES)
def site(
    request: pytest.FixtureRequest, browser: Any, tmp_path: Path
) -> Iterator[tuple[str, Engine]]:
    with weihai_site(
        request,
        now=dt.datetime(2024, 7, 20, 9),
        users=[Account(CLERK, "WH-HC-001", "clerk"), Account(MANAGER, "WH-HC-001", "manager")],
        attachments_dir=tmp_path / "attachments",
    ) as served:
        with transaction(served.engine) as conn:
            post_to_inbox(
                conn,
                [InboxItem("test:t-1", "WH-HC-001", REMINDER, "请于明日前报送统计表。", "/queue")],
                served.clock.now(),
            )
        yield served.url, served.engine


def test_each_user_of_the_unit_reads_the_reminder_for_themselves(
    browser: Any, site: tuple[str, Engine]
) -> None:
    from playwright.sync_api import expect

    url, engine = site
    clerk = sign_in(browser, url, CLERK, "/login")
    expect(clerk.locator("[data-testid=unread-count]")).to_have_text("1")
    clerk.click("[data-testid=inbox-link]")
    clerk.locator("[data-testid=inbox-item] button[type=submit]").click()
    expect(clerk.locator("[data-testid=inbox-item]")).to_contain_text(f"已读 · {CLERK}")
    expect(clerk.locator("[data-testid=unread-count]")).to_have_count(0)

    manager = sign_in(browser, url, MANAGER, "/login")
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
