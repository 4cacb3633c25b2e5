"""The inbox page (both databases): a unit's reminders and notices, those the user has not read
first; the user's unread count in every page's nav; marked read by a form with its CSRF token
(when shown, and who in the unit read it first), refused without it; another unit's notification
is a 404 page; what the sweep posts is what is shown."""

from __future__ import annotations

import datetime as dt
import re

from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import select

from jinqiu.api.pages import case_entry, inbox
from jinqiu.notifications.models import InboxMessage
from jinqiu.notifications.outbox import InboxItem, post_to_inbox
from jinqiu.workflow.db import transaction
from tests.api.conftest import World, username
from tests.api.test_publicity_pages import csrf_of, page_client

CLERK = username("clerk", "WH-HC-001")
inbox_t = InboxMessage.__table__  # type: ignore[attr-defined]
HTML = {"Accept": "text/html"}


def post(world: World, unit: str, *titles: str) -> list[int]:
    """Notifications for `unit`, one a minute, through the sweep's own writer."""
    ids = []
    for i, title in enumerate(titles):
        with transaction(world.engine) as conn:
            post_to_inbox(
                conn,
                [InboxItem(f"test:{unit}:{title}", unit, title, f"{title}：请按时报送", "/queue")],
                world.clock.now() + dt.timedelta(minutes=i),
            )
            ids.append(
                conn.execute(
                    select(inbox_t.c.id).where(inbox_t.c.idempotency_key == f"test:{unit}:{title}")
                ).scalar_one()
            )
    return ids


def unread_badge(page: str) -> int:
    found = re.search(r'data-testid="unread-count">(\d+)<', page)
    return int(found[1]) if found else 0


def titles_in_order(page: str) -> list[str]:
    return re.findall(
        r'data-testid="inbox-item">\s*<td>[^<]*</td>\s*<td><a href="/queue">([^<]+)<', page
    )


def test_the_inbox_lists_unread_first_and_a_form_marks_one_read(world: World) -> None:
    first, second, third = post(
        world, "WH-HC-001", "摸底表 T-3 提醒", "摸底表 T-1 提醒", "摸底表已逾期"
    )
    post(world, "WH-HC-002", "别的单位的提醒")
    client = page_client(world, CLERK)
    page = client.get("/inbox")
    assert page.status_code == 200
    assert titles_in_order(page.text) == ["摸底表已逾期", "摸底表 T-1 提醒", "摸底表 T-3 提醒"]
    assert "别的单位的提醒" not in page.text
    assert unread_badge(page.text) == 3 and unread_badge(client.get("/queue").text) == 3

    marked = client.post(f"/inbox/{third}/read", data={"csrf_token": csrf_of(page.text)})
    assert marked.status_code == 200 and "已标为已读" in marked.text
    assert titles_in_order(marked.text) == ["摸底表 T-1 提醒", "摸底表 T-3 提醒", "摸底表已逾期"]
    assert unread_badge(marked.text) == 2
    assert f"已读 · {CLERK}" in marked.text
    with world.engine.connect() as conn:
        row = conn.execute(select(inbox_t).where(inbox_t.c.id == third)).one()
    assert (row.read_by, row.read_at is not None) == (CLERK, True)

    # A colleague of the same unit shares the items but reads for themselves: all three are
    # still unread for them, and they see who in the unit read one first.
    colleague = page_client(world, username("manager", "WH-HC-001"))
    shared = colleague.get("/inbox")
    assert unread_badge(shared.text) == 3 and f"已读 · {CLERK}" not in shared.text
    assert f"本单位 {CLERK} 首先阅读于" in shared.text
    assert {first, second, third} == {
        int(i) for i in re.findall(r'action="/inbox/(\d+)/read"', shared.text)
    }


def test_marking_read_needs_the_csrf_token_and_an_item_of_one_s_own_unit(world: World) -> None:
    (mine,) = post(world, "WH-HC-001", "本单位提醒")
    (theirs,) = post(world, "WH-HC-002", "兄弟单位提醒")
    (parents,) = post(world, "WH-HC", "区工会提醒")
    client = page_client(world, CLERK)
    csrf = csrf_of(client.get("/inbox").text)
    forged = client.post(f"/inbox/{mine}/read", data={"csrf_token": "forged"}, headers=HTML)
    assert forged.status_code == 400 and "表单已过期" in forged.text
    for other in (theirs, parents, parents + 1000):
        refused = client.post(f"/inbox/{other}/read", data={"csrf_token": csrf}, headers=HTML)
        assert refused.status_code == 404 and "<html" in refused.text, refused.text[:300]
        assert f"通知 {other} 不存在" in refused.text
    with world.engine.connect() as conn:
        assert (
            conn.execute(select(inbox_t.c.read_at).where(inbox_t.c.read_at.is_not(None))).all()
            == []
        )


def test_an_empty_inbox_says_so_and_the_nav_shows_no_count(world: World) -> None:
    client = page_client(world, username("clerk", "WH-WD-001"))
    page = client.get("/inbox")
    assert page.status_code == 200 and "收件箱是空的" in page.text
    assert unread_badge(page.text) == 0 and 'data-testid="inbox-link"' in page.text


def test_all_of_the_unit_s_unread_items_are_marked_read_at_once(world: World) -> None:
    post(world, "WH-HC-001", "提醒一", "提醒二")
    (theirs,) = post(world, "WH-HC-002", "兄弟单位提醒")
    client = page_client(world, CLERK)
    page = client.get("/inbox")
    forged = client.post("/inbox/read-all", data={"csrf_token": "forged"}, headers=HTML)
    assert forged.status_code == 400
    done = client.post("/inbox/read-all", data={"csrf_token": csrf_of(page.text)})
    assert done.status_code == 200 and "已将 2 条标为已读" in done.text
    assert unread_badge(done.text) == 0 and 'data-testid="read-all"' not in done.text
    with world.engine.connect() as conn:
        unread = conn.execute(select(inbox_t.c.id).where(inbox_t.c.read_at.is_(None))).scalars()
        assert list(unread) == [theirs]  # another unit's stays as it was
    # Only the clerk's: a colleague still has both to read, and marks them for themselves.
    colleague = page_client(world, username("manager", "WH-HC-001"))
    theirs_page = colleague.get("/inbox")
    assert unread_badge(theirs_page.text) == 2
    again = colleague.post("/inbox/read-all", data={"csrf_token": csrf_of(theirs_page.text)})
    assert "已将 2 条标为已读" in again.text and unread_badge(again.text) == 0
    repeated = client.post("/inbox/read-all", data={"csrf_token": csrf_of(page.text)})
    assert "已将 0 条标为已读" in repeated.text


def test_a_link_under_the_service_s_address_opens_here_and_any_other_is_no_link(
    world: World,
) -> None:
    """The sweep writes links under JINQIU_BASE_URL (they go out by e-mail too)."""
    with transaction(world.engine) as conn:
        post_to_inbox(
            conn,
            [
                InboxItem(
                    "k:here",
                    "WH-HC-001",
                    "公示结束",
                    "案件公示结束",
                    f"{world.settings.base_url}/cases/7",
                ),
                InboxItem(
                    "k:there", "WH-HC-001", "可疑链接", "请点击", "https://evil.example/cases/7"
                ),
                InboxItem("k:slashes", "WH-HC-001", "双斜线", "请点击", "//evil.example/x"),
            ],
            world.clock.now(),
        )
    page = page_client(world, CLERK).get("/inbox").text
    assert '<a href="/cases/7">公示结束</a>' in page
    assert "evil.example" not in page
    assert "<td>可疑链接</td>" in page and "<td>双斜线</td>" in page


def test_every_clerk_page_asks_for_a_sign_in_first(world: World) -> None:
    """The new pages' routes, read from their routers: without a session each sends the browser
    to the sign-in page (coming back after), and nothing is written."""
    (item,) = post(world, "WH-HC-001", "提醒")
    routes = [r for m in (case_entry, inbox) for r in m.router.routes if isinstance(r, APIRoute)]
    assert len(routes) >= 7
    anonymous = TestClient(world.client.app, raise_server_exceptions=False)
    for route in routes:
        for method in route.methods:
            url = route.path.replace("{case_id}", "1").replace("{item_id}", str(item))
            answer = anonymous.request(
                method, url, data={"csrf_token": "x"}, follow_redirects=False
            )
            assert answer.status_code == 303, (method, url, answer.status_code)
            assert answer.headers["location"].startswith("/login?next="), answer.headers
    with world.engine.connect() as conn:
        assert (
            conn.execute(select(inbox_t.c.read_at).where(inbox_t.c.id == item)).scalar_one() is None
        )
