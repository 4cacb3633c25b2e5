"""Inbox items are read per user (both databases): two users of one unit — A reads an item, B
still has it unread (API and page) and the unit's first read stays A's; marking read twice, or
at once from many threads (PostgreSQL), gives one receipt per user and no error; a user of
another unit, a sibling or the parent, cannot mark it (404) and writes nothing."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from jinqiu.notifications import inbox as inbox_reads
from jinqiu.notifications.models import InboxMessage, InboxRead
from jinqiu.notifications.outbox import InboxItem, post_to_inbox
from jinqiu.workflow.clock import ManualClock
from jinqiu.workflow.db import transaction
from tests.api.conftest import World, username
from tests.api.test_inbox_pages import post, unread_badge
from tests.api.test_publicity_pages import csrf_of, page_client

A = username("clerk", "WH-HC-001")
B = username("manager", "WH-HC-001")
inbox_t = InboxMessage.__table__  # type: ignore[attr-defined]
read_t = InboxRead.__table__  # type: ignore[attr-defined]


def inbox_of(world: World, user: str, **params: Any) -> dict[int, dict[str, Any]]:
    answer = world.client.get("/api/inbox", params=params, headers=world.as_(user))
    assert answer.status_code == 200, answer.text
    return {m["id"]: m for m in answer.json()}


def receipts(engine: Engine) -> list[tuple[int, str]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(read_t.c.inbox_message_id, read_t.c.username).order_by(read_t.c.username)
        ).all()
    return [(r.inbox_message_id, r.username) for r in rows]


def test_a_read_is_the_reader_s_own_and_the_unit_s_first_read_stays_the_first(
    world: World,
) -> None:
    item, other = post(world, "WH-HC-001", "摸底表 T-3 提醒", "摸底表 T-1 提醒")
    assert set(inbox_of(world, B, unread="true")) == {item, other}

    read_at = world.clock.now()
    mine = world.client.post(f"/api/inbox/{item}/read", headers=world.as_(A))
    assert mine.status_code == 200, mine.text
    body = mine.json()
    assert (body["read_by"], body["read_by_me_at"]) == (A, body["read_at"])
    assert dt.datetime.fromisoformat(body["read_by_me_at"]) == read_at

    # B has not read it: it is unread for B, who sees that A read it first.
    for_b = inbox_of(world, B)[item]
    assert (for_b["read_by_me_at"], for_b["read_by"]) == (None, A)
    assert set(inbox_of(world, B, unread="true")) == {item, other}
    assert set(inbox_of(world, A, unread="true")) == {other}

    world.clock.advance(dt.timedelta(hours=2))
    theirs = world.client.post(f"/api/inbox/{item}/read", headers=world.as_(B)).json()
    assert dt.datetime.fromisoformat(theirs["read_by_me_at"]) == world.clock.now()
    assert (theirs["read_by"], theirs["read_at"]) == (A, body["read_at"])  # still A's, then
    assert set(inbox_of(world, B, unread="true")) == {other}
    assert receipts(world.engine) == [(item, A), (item, B)]


def test_the_page_and_its_nav_count_are_each_user_s_own(world: World) -> None:
    (item,) = post(world, "WH-HC-001", "统计表 T0 提醒")
    a_page = page_client(world, A)
    first = a_page.get("/inbox")
    assert unread_badge(first.text) == 1
    a_page.post(f"/inbox/{item}/read", data={"csrf_token": csrf_of(first.text)})
    assert unread_badge(a_page.get("/queue").text) == 0

    b_page = page_client(world, B)
    seen = b_page.get("/inbox")
    assert unread_badge(seen.text) == 1 and unread_badge(b_page.get("/queue").text) == 1
    assert f'action="/inbox/{item}/read"' in seen.text
    assert f"本单位 {A} 首先阅读于" in seen.text
    read = b_page.post(f"/inbox/{item}/read", data={"csrf_token": csrf_of(seen.text)})
    assert read.status_code == 200 and f"已读 · {B}" in read.text
    assert unread_badge(read.text) == 0 and f"本单位 {A} 首先阅读于" in read.text
    with world.engine.connect() as conn:
        assert conn.execute(select(inbox_t.c.read_by)).scalar_one() == A


def test_marking_read_twice_keeps_the_first_receipt_and_answers_the_same(world: World) -> None:
    (item,) = post(world, "WH-HC-001", "提醒")
    first = world.client.post(f"/api/inbox/{item}/read", headers=world.as_(A))
    world.clock.advance(dt.timedelta(minutes=5))
    again = world.client.post(f"/api/inbox/{item}/read", headers=world.as_(A))
    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json() == first.json()
    assert receipts(world.engine) == [(item, A)]


def test_another_unit_s_user_cannot_mark_it_and_writes_nothing(world: World) -> None:
    (item,) = post(world, "WH-HC-001", "提醒")
    for outsider in (username("clerk", "WH-HC-002"), username("manager", "WH-HC")):
        refused = world.client.post(f"/api/inbox/{item}/read", headers=world.as_(outsider))
        assert refused.status_code == 404, refused.text
        assert refused.json()["code"] == "not_found"
        assert item not in inbox_of(world, outsider)
    assert receipts(world.engine) == []
    with world.engine.connect() as conn:
        assert conn.execute(select(inbox_t.c.read_at)).scalar_one() is None


def nav_count_sql(conn: Any) -> str:
    """What the nav asks, with its values written in (for EXPLAIN)."""
    count = (
        select(func.count())
        .select_from(inbox_t)
        .where(inbox_t.c.unit_code == "WH-HC-001", ~inbox_reads.read_by(A))
    )
    return str(count.compile(conn, compile_kwargs={"literal_binds": True}))


def test_the_nav_count_is_one_indexed_query_on_sqlite(sqlite_engine: Engine) -> None:
    """The count runs on every page: the unit's index for the items, the receipts' primary key
    for each one's read — no scan of either table."""
    with sqlite_engine.connect() as conn:
        plan = " | ".join(
            r[-1] for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {nav_count_sql(conn)}")
        )
    assert "ix_inbox_message_unit_code" in plan and "SCAN" not in plan, plan
    assert "sqlite_autoindex_inbox_read_1 (username=? AND inbox_message_id=?)" in plan, plan


@pytest.mark.postgres
def test_the_nav_count_has_its_indexes_on_postgresql(pg: Engine) -> None:
    """PostgreSQL plans by the tables' size (an empty table is scanned); with scans priced out,
    the plan shows the indexes it has for the count: the unit's and the receipts' key."""
    with pg.connect() as conn:
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        plan = " | ".join(r[0] for r in conn.exec_driver_sql(f"EXPLAIN {nav_count_sql(conn)}"))
        conn.rollback()
    assert "ix_inbox_message_unit_code" in plan and "inbox_read_pkey" in plan, plan
    assert "Seq Scan" not in plan, plan


@pytest.mark.postgres
def test_racing_reads_give_one_receipt_per_user_and_the_first_committed_reader(
    pg: Engine, clock: ManualClock
) -> None:
    """Eight threads, two users, the same item, each in its own transaction released at once:
    no error, one receipt per user, and `read_by` one of them (the first to commit)."""
    with transaction(pg) as conn:
        post_to_inbox(conn, [InboxItem("race", "WH-HC-001", "提醒", "请按时报送")], clock.now())
        item = conn.execute(select(inbox_t.c.id)).scalar_one()
    readers = [A, B] * 4
    start = threading.Barrier(len(readers))
    errors: list[BaseException] = []
    written: list[bool] = []

    def read(user: str) -> None:
        try:
            with transaction(pg) as conn:
                conn.execute(select(1))  # the transaction is open before they all go
                start.wait(timeout=10)
                written.append(inbox_reads.mark_read(conn, item, user, clock.now()))
        except BaseException as exc:  # any failure is the test's answer
            errors.append(exc)

    threads = [threading.Thread(target=read, args=(u,)) for u in readers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    assert sorted(written) == [False] * 6 + [True] * 2
    assert receipts(pg) == [(item, A), (item, B)]
    with pg.connect() as conn:
        assert conn.execute(select(inbox_t.c.read_by)).scalar_one() in {A, B}


@pytest.mark.postgres
def test_one_user_s_tabs_marking_all_and_one_at_once_give_each_receipt_once(
    pg: Engine, clock: ManualClock
) -> None:
    """Six transactions of one user released at once, four marking everything and two one item:
    no error, no deadlock, one receipt per item, and the marks add up to the items."""
    with transaction(pg) as conn:
        post_to_inbox(
            conn,
            [InboxItem(f"tab:{n}", "WH-HC-001", f"提醒{n}", "请按时报送") for n in range(50)],
            clock.now(),
        )
        post_to_inbox(conn, [InboxItem("sibling", "WH-HC-002", "兄弟单位", "…")], clock.now())
        first = conn.execute(select(func.min(inbox_t.c.id))).scalar_one()
    start = threading.Barrier(6)
    errors: list[BaseException] = []
    marked: list[int] = []

    def tab(everything: bool) -> None:
        try:
            with transaction(pg) as conn:
                conn.execute(select(1))
                start.wait(timeout=10)
                if everything:
                    marked.append(inbox_reads.mark_all_read(conn, "WH-HC-001", A, clock.now()))
                else:
                    marked.append(int(inbox_reads.mark_read(conn, first, A, clock.now())))
        except BaseException as exc:  # any failure is the test's answer
            errors.append(exc)

    threads = [threading.Thread(target=tab, args=(n < 4,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    assert sum(marked) == 50
    with pg.connect() as conn:
        assert conn.execute(select(func.count()).select_from(read_t)).scalar_one() == 50
        unread_units = conn.execute(
            select(inbox_t.c.unit_code).where(inbox_t.c.read_at.is_(None))
        ).scalars()
        assert list(unread_units) == ["WH-HC-002"]
        assert inbox_reads.unread_count(conn, "WH-HC-001", A) == 0
        assert inbox_reads.unread_count(conn, "WH-HC-001", B) == 50
