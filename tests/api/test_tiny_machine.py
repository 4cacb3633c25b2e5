"""A new noun needs no change to any module: a three-state machine and its tables are declared
here, inside the test, and driven through the engine, the API's generic event route and the
diagram — with the engine's guarantees (all guard reasons, version check, hash-chained audit,
outbox in the same transaction, effects kept off the engine's columns)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import (
    Column,
    Connection,
    Date,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    select,
)

from jinqiu.api.app import create_app
from jinqiu.notifications.outbox import InboxItem, Outgoing
from jinqiu.states.diagram import to_svg
from jinqiu.states.machine import Kind, Machine, State, Transition
from jinqiu.storage.sqltypes import JSONType, UTCDateTime
from jinqiu.workflow.audit.chain import GENESIS, entry_hash
from jinqiu.workflow.clock import ManualClock
from jinqiu.workflow.db import transaction
from jinqiu.workflow.engine import EffectError, Loaded, Noun, Outcome, fire
from jinqiu.workflow.engine.registry import SERVED
from jinqiu.workflow.errors import GuardFailed, PermissionDenied, Reason, VersionConflict
from jinqiu.workflow.roles import Actor
from tests.api.conftest import World


class NoticeState(StrEnum):
    DRAFT = "draft"
    POSTED = "posted"
    TAKEN_DOWN = "taken_down"


class NoticeEvent(StrEnum):
    POST = "post"
    TAKE_DOWN = "take_down"


MACHINE: Machine[NoticeState, NoticeEvent, Any] = Machine(
    name="notice",
    label="公告",
    states=[
        State(NoticeState.DRAFT, "草稿"),
        State(NoticeState.POSTED, "已张贴"),
        State(NoticeState.TAKEN_DOWN, "已撤下", Kind.TERMINAL),
    ],
    events=list(NoticeEvent),
    transitions=[
        Transition(
            NoticeEvent.POST,
            (NoticeState.DRAFT,),
            NoticeState.POSTED,
            "case.review",
            "张贴",
            guards=("has_title", "has_body"),
            effects=("stamp_posted",),
        ),
        Transition(
            NoticeEvent.TAKE_DOWN,
            (NoticeState.POSTED,),
            NoticeState.TAKEN_DOWN,
            "case.review",
            "撤下",
            opinion_required=True,
            notifies=("notice_taken_down",),
        ),
    ],
    initial=NoticeState.DRAFT,
)

tables = MetaData()
notice_t = Table(
    "tiny_notice",
    tables,
    Column("id", Integer, primary_key=True),
    Column("title", String(100), nullable=False),
    Column("body", Text, nullable=False),
    Column("state", String(20), nullable=False),
    Column("version", Integer, nullable=False),
    Column("audit_seq", Integer, nullable=False),
    Column("audit_head", String(64), nullable=False),
    Column("updated_at", UTCDateTime),
    Column("posted_on", Date),
)
notice_audit_t = Table(
    "tiny_notice_audit",
    tables,
    Column("id", Integer, primary_key=True),
    Column("notice_id", Integer, nullable=False),
    Column("seq", Integer, nullable=False),
    Column("actor", String(64), nullable=False),
    Column("actor_unit", String(64)),
    Column("event", String(32), nullable=False),
    Column("from_state", String(20)),
    Column("to_state", String(20), nullable=False),
    Column("opinion", Text),
    Column("data", JSONType, nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)


class NoticeFacts:
    def __init__(self, row: Any, today: dt.date) -> None:
        self.title, self.body, self.today = row.title, row.body, today


def has_title(facts: NoticeFacts) -> list[Reason]:
    return [] if facts.title.strip() else [Reason("no_title", "公告没有标题")]


def has_body(facts: NoticeFacts) -> list[Reason]:
    return [] if facts.body.strip() else [Reason("no_body", "公告没有正文")]


def stamp_posted(facts: NoticeFacts, opinion: str | None) -> Outcome:
    return Outcome(changes={"posted_on": facts.today}, audit={"posted_on": str(facts.today)})


class Notices(Noun[NoticeFacts]):
    machine = MACHINE
    table = notice_t
    audit_table = notice_audit_t
    audit_subject = "notice_id"
    label = "公告"
    guards = MappingProxyType({"has_title": has_title, "has_body": has_body})
    effects = MappingProxyType({"stamp_posted": stamp_posted})

    def load(
        self, conn: Connection, subject_id: int, *, today: dt.date, data: Mapping[str, Any]
    ) -> Loaded[NoticeFacts] | None:
        row = conn.execute(select(notice_t).where(notice_t.c.id == subject_id)).first()
        if row is None:
            return None
        return Loaded(
            row.id, row.state, row.version, row.audit_seq, row.audit_head, NoticeFacts(row, today)
        )

    def messages(
        self,
        conn: Connection,
        loaded: Loaded[NoticeFacts],
        transition: Any,
        notification: str,
        *,
        key: str,
        opinion: str | None,
        at: dt.datetime,
    ) -> tuple[list[Outgoing], list[InboxItem]]:
        return [], [InboxItem(key, "WH", f"{loaded.facts.title} 已撤下", opinion or "")]


NOTICES = Notices()
REVIEWER = Actor("reviewer.wh", "WH", "/WH/", "city", ("reviewer",))
CLERK = Actor("clerk.wh", "WH", "/WH/", "city", ("clerk",))


@pytest.fixture
def notices(db: Engine) -> Iterator[Engine]:
    NOTICES.check_declaration()
    tables.create_all(db)
    yield db
    tables.drop_all(db)


def new_notice(engine: Engine, title: str = "公示名单", body: str = "名单如下") -> int:
    with transaction(engine) as conn:
        return int(
            conn.execute(
                notice_t.insert()
                .values(
                    title=title, body=body, state="draft", version=1, audit_seq=0, audit_head=""
                )
                .returning(notice_t.c.id)
            ).scalar_one()
        )


def post_and_take_down(conn: Connection, notice: int, clock: ManualClock) -> Any:
    """Both transitions by the reviewer; what posting returned."""
    posted = fire(conn, NOTICES, subject_id=notice, event="post", expected_version=1,
                  actor=REVIEWER, clock=clock)  # fmt: skip
    fire(conn, NOTICES, subject_id=notice, event="take_down", expected_version=2,
         actor=REVIEWER, clock=clock, opinion="名单有误")  # fmt: skip
    return posted


def audit_rows(engine: Engine, notice_id: int) -> list[Any]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                select(notice_audit_t)
                .where(notice_audit_t.c.notice_id == notice_id)
                .order_by(notice_audit_t.c.seq)
            )
        )


class TestThroughTheEngine:
    def test_guards_refuse_with_every_reason_and_write_nothing(
        self, notices: Engine, clock: ManualClock
    ) -> None:
        notice = new_notice(notices, title=" ", body="")
        with pytest.raises(GuardFailed) as refused, transaction(notices) as conn:
            fire(
                conn,
                NOTICES,
                subject_id=notice,
                event="post",
                expected_version=1,
                actor=REVIEWER,
                clock=clock,
            )
        assert [r["code"] for r in refused.value.details["reasons"]] == ["no_title", "no_body"]
        assert audit_rows(notices, notice) == []

    def test_a_transition_writes_the_row_its_effects_and_a_chained_audit_entry(
        self, notices: Engine, clock: ManualClock
    ) -> None:
        notice = new_notice(notices)
        with transaction(notices) as conn:
            fired = post_and_take_down(conn, notice, clock)
        assert (fired.state, fired.version) == (NoticeState.POSTED, 2)
        with notices.connect() as conn:
            row = conn.execute(select(notice_t).where(notice_t.c.id == notice)).one()
        assert (row.state, row.version, row.posted_on) == ("taken_down", 3, clock.now().date())
        entries = audit_rows(notices, notice)
        assert [(e.seq, e.event, e.from_state, e.to_state) for e in entries] == [
            (1, "post", "draft", "posted"),
            (2, "take_down", "posted", "taken_down"),
        ]
        prev = GENESIS
        for e in entries:  # the chain recomputes, and the row keeps its head
            fields = {
                k: getattr(e, k)
                for k in (
                    "seq",
                    "actor",
                    "actor_unit",
                    "event",
                    "from_state",
                    "to_state",
                    "opinion",
                    "data",
                    "at",
                )
            }
            assert e.prev_hash == prev
            assert entry_hash(prev_hash=prev, case_id=notice, **fields) == e.hash
            prev = e.hash
        assert (row.audit_seq, row.audit_head) == (2, prev)

    def test_the_declared_notification_reaches_the_inbox_in_the_same_transaction(
        self, notices: Engine, clock: ManualClock
    ) -> None:
        notice = new_notice(notices, title="第一批名单")
        with transaction(notices) as conn:
            post_and_take_down(conn, notice, clock)
        with notices.connect() as conn:
            titles = [r.title for r in conn.execute(select(inbox_table()))]
        assert "第一批名单 已撤下" in titles

    def test_stale_versions_and_roles_are_refused(
        self, notices: Engine, clock: ManualClock
    ) -> None:
        notice = new_notice(notices)
        with pytest.raises(VersionConflict), transaction(notices) as conn:
            fire(
                conn,
                NOTICES,
                subject_id=notice,
                event="post",
                expected_version=7,
                actor=REVIEWER,
                clock=clock,
            )
        with pytest.raises(PermissionDenied), transaction(notices) as conn:
            fire(
                conn,
                NOTICES,
                subject_id=notice,
                event="post",
                expected_version=1,
                actor=CLERK,
                clock=clock,
            )

    def test_an_effect_may_not_write_the_engines_columns(
        self, notices: Engine, clock: ManualClock
    ) -> None:
        def sneaky(facts: NoticeFacts, opinion: str | None) -> Outcome:
            return Outcome(changes={"state": "taken_down"})

        class SneakyNotices(Notices):
            effects = MappingProxyType({"stamp_posted": sneaky})

        notice = new_notice(notices)
        with pytest.raises(EffectError), transaction(notices) as conn:
            fire(
                conn,
                SneakyNotices(),
                subject_id=notice,
                event="post",
                expected_version=1,
                actor=REVIEWER,
                clock=clock,
            )
        assert audit_rows(notices, notice) == []


def inbox_table() -> Table:
    from jinqiu.notifications.models import InboxMessage

    return InboxMessage.__table__  # type: ignore[attr-defined,no-any-return]


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch, world: World) -> Iterator[TestClient]:
    """An app of its own that serves the tiny noun too (the world's shared app was built
    without it), on the world's database, clock and settings."""
    monkeypatch.setitem(SERVED, "tiny-notices", NOTICES)
    app = create_app(engine=world.engine, clock=world.clock, settings=world.settings)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


class TestThroughTheApi:
    def test_the_generic_event_route_fires_and_refuses_in_the_contracts_shapes(
        self, served: TestClient, notices: Engine, world: World
    ) -> None:
        notice = new_notice(notices, title="")
        url = f"/api/tiny-notices/{notice}/events"
        refused = served.post(
            url, json={"event": "post", "version": 1}, headers=world.as_("reviewer.wh")
        )
        assert refused.status_code == 422, refused.text
        assert refused.json()["code"] == "guard_failed", refused.text
        with transaction(notices) as conn:
            conn.execute(notice_t.update().values(title="名单"))
        done = served.post(
            url, json={"event": "post", "version": 1}, headers=world.as_("reviewer.wh")
        )
        assert done.status_code == 200, done.text
        assert done.json() == {"id": notice, "state": "posted", "version": 2}
        stale = served.post(
            url,
            json={"event": "take_down", "version": 1, "opinion": "重贴"},
            headers=world.as_("reviewer.wh"),
        )
        assert stale.status_code == 409 and stale.json()["code"] == "version_conflict"
        unknown = served.post(
            url, json={"event": "explode", "version": 2}, headers=world.as_("reviewer.wh")
        )
        assert unknown.status_code == 422
        assert served.post(url, json={"event": "post", "version": 1}).status_code == 401

    def test_openapi_lists_the_nouns_events(
        self, served: TestClient, notices: Engine, world: World
    ) -> None:
        schema = served.get("/openapi.json").json()
        assert "/api/tiny-notices/{subject_id}/events" in schema["paths"]
        body = schema["components"]["schemas"]["TinyNoticesEventIn"]
        event_schema = schema["components"]["schemas"][
            body["properties"]["event"]["$ref"].split("/")[-1]
        ]
        assert event_schema["enum"] == ["post", "take_down"]


class TestTheDiagram:
    def test_the_machine_is_drawn_with_its_labels_and_transitions(self) -> None:
        svg = to_svg(MACHINE)
        for label in ("草稿", "已张贴", "已撤下", "张贴", "撤下"):
            assert label in svg
        mermaid = MACHINE.to_mermaid()
        assert "draft --> posted" in mermaid.replace('"', "")


def test_the_generic_route_resolves_its_subject_by_a_scope_dependency() -> None:
    """As every route (tests/security/test_scope_dependencies.py): not the handler itself."""
    from fastapi.routing import APIRoute

    from jinqiu.api.http.events import event_router

    (route,) = [r for r in event_router("tiny-notices", NOTICES).routes if isinstance(r, APIRoute)]
    assert route.dependant.path_params == []
    resolvers = {sub.call.__module__ for sub in route.dependant.dependencies if sub.path_params}  # type: ignore[union-attr]
    assert resolvers == {"jinqiu.api.deps"}


def test_a_noun_that_writes_on_moving_says_how_to_write_it_with_the_row() -> None:
    """A transition that is all its request writes goes as one statement (workflow.engine.core):
    a noun whose `moved` writes (a counter) without `moved_with` would lose that write there."""

    class CountedNotices(Notices):
        def moved(self, conn: Connection, loaded: Loaded[Any], transition: Any) -> None:
            conn.execute(select(1))

    with pytest.raises(ImportError, match="moved_with"):
        CountedNotices().check_declaration()
