"""Issue 9, "One unit of work per request": a request is one connection and at most one
transaction, committed once after the handler succeeded and before the answer leaves; any error
rolls everything back; the PII access record is written in the transaction of the read it
records. Failures are injected at the database (its COMMIT, one INSERT), never into the code
under test."""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio.to_thread
import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from psycopg.pq import Trace
from sqlalchemy import Engine, event, func, select

from jinqiu.api.http.cases import router as cases_router
from jinqiu.notifications.models import InboxMessage, OutboxMessage
from jinqiu.states import CaseState
from jinqiu.workflow.audit.models import AuditEntry, PiiAccess
from jinqiu.workflow.cases.counters import counter_differences
from jinqiu.workflow.cases.models import Case
from jinqiu.workflow.clock import ManualClock
from jinqiu.workflow.db import for_writing
from jinqiu.workflow.users.models import User
from tests.api.conftest import World, username, world_of
from tests.factories import case_in, new_case, student, worker

case_t = Case.__table__  # type: ignore[attr-defined]
pii_t = PiiAccess.__table__  # type: ignore[attr-defined]
audit_t = AuditEntry.__table__  # type: ignore[attr-defined]
user_t = User.__table__  # type: ignore[attr-defined]
outbox_t = OutboxMessage.__table__  # type: ignore[attr-defined]
inbox_t = InboxMessage.__table__  # type: ignore[attr-defined]


class DiskFull(Exception):
    """What the injected failure raises (as a full disk or a lost server would)."""


@contextmanager
def listening(engine: Engine, name: str, fn: Callable[..., Any]) -> Iterator[None]:
    event.listen(engine, name, fn)
    try:
        yield
    finally:
        event.remove(engine, name, fn)


@contextmanager
def commits_counted(engine: Engine) -> Iterator[list[int]]:
    seen: list[int] = []
    with listening(engine, "commit", lambda _conn: seen.append(1)):
        yield seen


def failing_commit(_conn: Any) -> None:
    raise DiskFull("disk I/O error at COMMIT")


@contextmanager
def commits_failing(engine: Engine, table: str) -> Iterator[None]:
    """Every COMMIT of a transaction that wrote `table` fails. On PostgreSQL the server refuses
    it (a deferred constraint trigger, checked at COMMIT): the case counters' hook sends the
    COMMIT itself there, in one pipeline with their upsert (workflow/cases/counters.py), so a
    failure injected in SQLAlchemy's "commit" event would come after it. On SQLite, that event."""
    if engine.dialect.name != "postgresql":
        with listening(engine, "commit", failing_commit):
            yield
        return
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE FUNCTION refuse_commit() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'disk I/O error at COMMIT'; END $$"
        )
        conn.exec_driver_sql(
            f"CREATE CONSTRAINT TRIGGER refuse_commit AFTER INSERT OR UPDATE ON {table} "
            "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse_commit()"
        )
    try:
        yield
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"DROP TRIGGER refuse_commit ON {table}")
            conn.exec_driver_sql("DROP FUNCTION refuse_commit()")


def failing_insert_into(table: str) -> Callable[..., None]:
    def fail(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO " + table.upper()):
            raise DiskFull(f"disk I/O error writing {table}")

    return fail


def eventually(condition: Callable[[], bool], within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def count(engine: Engine, table: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def case_state(engine: Engine, case_id: int) -> tuple[str, int]:
    with engine.connect() as conn:
        row = conn.execute(
            select(case_t.c.state, case_t.c.version).where(case_t.c.id == case_id)
        ).one()
    return str(row.state), int(row.version)


def new_case_body(world: World) -> dict[str, Any]:
    return {
        "campaign": world.campaign,
        "unit": "WH-HC-001",
        "worker": worker(),
        "student": student(),
    }


def test_a_failed_commit_answers_an_error_and_stores_nothing(world: World) -> None:
    """The commit happens before the answer is sent: a COMMIT that fails is a 500 in the
    contract's shape, never a 201 for a case that was not stored."""
    headers = world.as_(username("clerk", "WH-HC"))
    before = count(world.engine, case_t)
    with commits_failing(world.engine, case_t.name):
        response = world.client.post("/api/cases", json=new_case_body(world), headers=headers)
    assert response.status_code == 500, response.text
    assert response.json()["code"] == "internal_error"
    assert count(world.engine, case_t) == before
    # The connection whose commit failed went nowhere near the next request.
    again = world.client.post("/api/cases", json=new_case_body(world), headers=headers)
    assert again.status_code == 201, again.text
    assert count(world.engine, case_t) == before + 1


def test_a_new_case_and_the_record_of_its_full_read_are_one_transaction(world: World) -> None:
    """A manager (pii.read) creates a case and gets it back in full: when recording that read
    fails, the case is not stored either — a client that retries does not meet its own case as
    a duplicate application."""
    headers = world.as_(username("manager", "WH-HC"))
    before = count(world.engine, case_t)
    with listening(world.engine, "before_cursor_execute", failing_insert_into("pii_access")):
        response = world.client.post("/api/cases", json=new_case_body(world), headers=headers)
    assert response.status_code == 500, response.text
    assert count(world.engine, case_t) == before
    retried = world.client.post("/api/cases", json=new_case_body(world), headers=headers)
    assert retried.status_code == 201, retried.text
    assert retried.json()["pii_unmasked"] is True


def test_a_correction_and_the_record_of_its_full_read_are_one_transaction(world: World) -> None:
    case_id = new_case(world.engine, world.clock, world.campaign, "WH-HC-001")
    headers = {**world.as_(username("manager", "WH-HC")), "If-Match": 'W/"1"'}
    with listening(world.engine, "before_cursor_execute", failing_insert_into("pii_access")):
        response = world.client.patch(
            f"/api/cases/{case_id}", headers=headers, json={"student": {"school": "青岛大学"}}
        )
    assert response.status_code == 500, response.text
    with world.engine.connect() as conn:
        assert conn.execute(select(case_t.c.version).where(case_t.c.id == case_id)).scalar() == 1


@pytest.mark.parametrize(
    ("role", "method", "path", "body", "commits"),
    [
        ("manager", "POST", "/api/cases", "new", 1),
        ("clerk", "POST", "/api/cases", "new", 1),
        ("manager", "PATCH", "/api/cases/{id}", {"student": {"school": "青岛大学"}}, 1),
        ("manager", "POST", "/api/cases/{id}/events", {"event": "withdraw", "version": 1}, 1),
        ("manager", "GET", "/api/cases/{id}", None, 1),  # the full read is recorded
        ("reviewer", "GET", "/api/cases/{id}", None, 0),  # masked: a plain read
        ("reviewer", "GET", "/api/cases/{id}/history", None, 0),
        ("reviewer", "GET", "/api/cases", None, 0),
    ],
)
def test_a_request_commits_at_most_once(
    world: World, role: str, method: str, path: str, body: Any, commits: int
) -> None:
    case_id = new_case(world.engine, world.clock, world.campaign, "WH-HC-001")
    headers = {**world.as_(username(role, "WH-HC")), "If-Match": 'W/"1"'}
    json = new_case_body(world) if body == "new" else body
    with commits_counted(world.engine) as seen:
        response = world.client.request(method, path.format(id=case_id), json=json, headers=headers)
    assert response.status_code < 300, response.text
    assert len(seen) == commits


def test_a_refused_write_leaves_nothing_behind(world: World) -> None:
    """A report for a unit outside the caller's subtree is refused after the campaign was
    looked up: the refusal rolls the request back (the tables are as before)."""
    headers = world.as_(username("manager", "WH-HC-002"))
    with commits_counted(world.engine) as seen:
        response = world.client.post(
            f"/api/campaigns/{world.campaign}/reports",
            headers=headers,
            json={"unit": "WH-HC-001", "kind": "statistics"},
        )
    assert response.status_code == 422, response.text
    assert seen == []


def test_the_full_read_of_a_case_page_is_recorded_with_the_page(world: World) -> None:
    """The case page shows a manager the numbers in full: the page and its access record are
    one transaction, so when the record cannot be written the page is not shown."""
    case_id = new_case(world.engine, world.clock, world.campaign, "WH-HC-001")
    login = world.client.post(
        "/login",
        data={"username": username("manager", "WH-HC"), "password": "correct-horse-42"},
        follow_redirects=False,
    )
    assert login.status_code == 303, login.text
    before = count(world.engine, pii_t)
    with listening(world.engine, "before_cursor_execute", failing_insert_into("pii_access")):
        refused = world.client.get(f"/cases/{case_id}")
    assert refused.status_code == 500
    assert count(world.engine, pii_t) == before
    shown = world.client.get(f"/cases/{case_id}")
    assert shown.status_code == 200
    assert count(world.engine, pii_t) == before + 1


@contextmanager
def checkouts_counted(engine: Engine) -> Iterator[list[int]]:
    """Connections taken from the engine's pool (SQLAlchemy's pool "checkout" event)."""
    seen: list[int] = []
    with listening(engine, "checkout", lambda *_args: seen.append(1)):
        yield seen


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/cases/{id}/events", {"event": "withdraw", "version": 1}),
        ("GET", "/api/cases/{id}", None),
        ("GET", "/api/cases", None),
    ],
)
def test_a_signed_in_request_is_one_connection_the_caller_read_on_it(
    world: World, method: str, path: str, body: Any
) -> None:
    """Who is calling is read on the request's own connection: one pool checkout per request
    (the actor's own short connection was a second checkout, pre-ping and ROLLBACK)."""
    case_id = new_case(world.engine, world.clock, world.campaign, "WH-HC-001")
    headers = world.as_(username("manager", "WH-HC"))
    with checkouts_counted(world.engine) as seen:
        response = world.client.request(method, path.format(id=case_id), json=body, headers=headers)
    assert response.status_code == 200, response.text
    assert len(seen) == 1


def test_a_token_revoked_in_the_database_is_refused_at_the_next_request(world: World) -> None:
    """Revocation is the database's: a generation bumped by another process (here, straight in
    the table, as another `serve` on another host would) refuses the token at once — no copy of
    the user kept in this process decides."""
    user = username("clerk", "WH-HC-001")
    headers = world.as_(user)
    assert world.client.get("/api/cases", headers=headers).status_code == 200
    with world.engine.begin() as conn:
        conn.execute(
            user_t.update()
            .where(user_t.c.username == user)
            .values(token_generation=user_t.c.token_generation + 1)
        )
    refused = world.client.get("/api/cases", headers=headers)
    assert refused.status_code == 401, refused.text
    assert refused.json()["code"] == "unauthorized"


BAD_INPUTS = [
    ("POST", "/api/cases/{id}/events", {"event": "fly", "version": 1}),
    ("POST", "/api/cases/{id}/events", "not json"),
    ("POST", f"/api/cases/{2**63}/events", {"event": "submit", "version": 1}),
    ("POST", "/api/cases/bulk-events", {"event": "submit", "cases": []}),
    ("POST", "/api/cases", {"campaign": 0}),
    ("GET", "/api/cases?page_size=0", None),
]


@pytest.mark.parametrize(("method", "path", "body"), BAD_INPUTS)
def test_a_stranger_is_refused_before_the_input_is_judged(
    world: World, method: str, path: str, body: Any
) -> None:
    """The contract's order is 401, 403, 422, then 404: a request whose input is invalid is
    answered 401 when the caller is nobody — no token, a token that is not ours, or one of ours
    revoked in the database — although a route that reads its caller in the handler's own trip
    (api.deps.in_unit_of_work) never reaches that trip: FastAPI judges the input first. The
    same input from a signed-in caller is a 422; no connection is left checked out."""
    case_id = new_case(world.engine, world.clock, world.campaign, "WH-HC-001")
    user = username("clerk", "WH-HC-001")
    signed_in = world.as_(user)
    revoked = world.as_(username("clerk", "WH-HC-002"))
    with world.engine.begin() as conn:
        conn.execute(
            user_t.update()
            .where(user_t.c.username == username("clerk", "WH-HC-002"))
            .values(token_generation=user_t.c.token_generation + 1)
        )
    url = path.format(id=case_id)
    payload = {"content": body} if isinstance(body, str) else {"json": body}
    for headers in ({}, {"Authorization": "Bearer not.a.token"}, revoked):
        refused = world.client.request(method, url, headers=headers, **payload)
        assert refused.status_code == 401, (headers, refused.text)
        assert refused.json()["code"] == "unauthorized"
        assert refused.headers["WWW-Authenticate"] == "Bearer"
    judged = world.client.request(method, url, headers=signed_in, **payload)
    assert judged.status_code == 422, judged.text
    # given back, if need be just after the answer (a dependency's exit may follow it)
    assert eventually(lambda: world.engine.pool.checkedout() == 0)  # type: ignore[attr-defined]


def test_a_refused_token_commits_nothing_and_leaves_the_write_lock_free(world: World) -> None:
    """A write request with a revoked token is refused while reading the caller: nothing is
    committed, and (SQLite) no write transaction is left behind — a writer right after succeeds."""
    user = username("clerk", "WH-HC-001")
    headers = world.as_(user)
    with world.engine.begin() as conn:
        conn.execute(
            user_t.update()
            .where(user_t.c.username == user)
            .values(token_generation=user_t.c.token_generation + 1)
        )
    with commits_counted(world.engine) as seen:
        refused = world.client.post("/api/cases", json=new_case_body(world), headers=headers)
    assert refused.status_code == 401, refused.text
    assert seen == []
    created = world.client.post(
        "/api/cases", json=new_case_body(world), headers=world.as_(username("clerk", "WH-HC"))
    )
    assert created.status_code == 201, created.text


PREPARED = "SELECT count(*) FROM pg_prepared_statements"


@pytest.mark.parametrize("db", ["postgresql"], indirect=True)
def test_a_read_request_keeps_its_prepared_statements_and_writes_nothing(world: World) -> None:
    """A GET is a read: READ ONLY on PostgreSQL, ended with COMMIT, so the statements psycopg
    prepared for it (the fifth time one runs on a connection) are still there for the next
    request — with ROLLBACK psycopg forgets them all and each dashboard was planned anew. A
    read that records a full read of personal numbers still writes its record (a declared
    write, its own transaction)."""
    headers = world.as_(username("manager", "WH-HC"))
    for _ in range(30):  # every pooled connection the requests rotate over, ≥ 5 times
        response = world.client.get(f"/api/dashboard?campaign={world.campaign}", headers=headers)
        assert response.status_code == 200, response.text
    idle = world.engine.pool.checkedin()  # type: ignore[attr-defined]
    with contextlib.ExitStack() as stack:
        conns = [stack.enter_context(world.engine.connect()) for _ in range(idle)]
        prepared = [int(c.exec_driver_sql(PREPARED).scalar_one()) for c in conns]
    assert sum(prepared) > 0, prepared

    case_id = new_case(world.engine, world.clock, world.campaign, "WH-HC-001")
    records = select(func.count()).select_from(pii_t)
    with world.engine.connect() as conn:
        before = conn.execute(records).scalar_one()
    shown = world.client.get(f"/api/cases/{case_id}", headers=headers)
    assert shown.status_code == 200, shown.text
    with world.engine.connect() as conn:
        assert conn.execute(records).scalar_one() == before + 1


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
def test_a_write_request_takes_the_write_lock_only_for_its_handler(world: World) -> None:
    """SQLite has one write lock for the whole database. A write request takes it when its
    handler starts writing, not while FastAPI is still reading the caller and looking up what
    the path names: a request refused by its scope check (404) is answered while another
    connection holds the lock, instead of queueing behind it for the lock it never needed."""
    case_id = new_case(world.engine, world.clock, world.campaign, "WH-HC-001")
    outsider = world.as_(username("clerk", "WH-HC-002"))
    holding, answered = threading.Event(), threading.Event()
    waited: list[bool] = []

    def hold_the_write_lock() -> None:
        with world.engine.connect() as conn:
            for_writing(conn).exec_driver_sql("SELECT 1")  # BEGIN IMMEDIATE: the write lock
            holding.set()
            waited.append(answered.wait(timeout=20))  # False: the request waited for the lock
            conn.rollback()

    holder = threading.Thread(target=hold_the_write_lock)
    holder.start()
    try:
        assert holding.wait(timeout=20)
        refused = world.client.post(
            f"/api/cases/{case_id}/events", json={"event": "submit", "version": 1}, headers=outsider
        )
        answered.set()
    finally:
        answered.set()
        holder.join()
    assert refused.status_code == 404, refused.text
    assert waited == [True]


def test_the_health_check_asks_nobody_to_sign_in(world: World) -> None:
    """The caller is read with the request's connection, but only a route that asks who is
    calling refuses a bad token: /api/health answers one, and its OpenAPI entry names no
    security scheme (every signed-in route's does)."""
    stale = {"Authorization": "Bearer not.a.token"}
    assert world.client.get("/api/health", headers=stale).status_code == 200
    assert world.client.get("/api/cases", headers=stale).status_code == 401
    paths = world.client.get("/openapi.json").json()["paths"]
    assert "security" not in paths["/api/health"]["get"]
    assert paths["/api/cases"]["get"]["security"] == [{"OAuth2PasswordBearer": []}]


def test_an_event_request_makes_one_trip_to_the_thread_pool(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FastAPI runs each `def` dependency and handler on a pool thread, ~0.3 ms of CPU a trip
    with the event loop's wake-ups. An event's request makes one, the handler's
    (api.deps.in_unit_of_work: the connection checked out with the caller read, the lookup of
    the case its path names — in_handler —, the write, the commit, and the connection given
    back). It made five: the scope lookup, FastAPI's validation of a `def` handler's answer and
    the connection's return each had a trip of their own, and until the fourteenth sitting the
    caller's read had one. The trips are counted as they pass; each still runs."""
    case_id = new_case(world.engine, world.clock, world.campaign, "WH-HC-001")
    clerk = world.as_(username("clerk", "WH-HC-001"))  # signed in before the count
    trips: list[str] = []
    run_sync = anyio.to_thread.run_sync

    async def counted(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        trips.append(getattr(func, "__qualname__", repr(func)))
        return await run_sync(func, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counted)
    fired = world.client.post(
        f"/api/cases/{case_id}/events",
        json={"event": "submit", "version": 1},
        headers=clerk,
    )
    assert fired.status_code == 200, fired.text
    assert len(trips) == 1, trips


def test_fastapi_resolves_only_the_token_and_the_case_of_an_event() -> None:
    """FastAPI computes a cache key and makes a call for each dependency a route names, on
    every request. An event's handler is handed the app's services, the request's connection
    and the caller from the request (api.deps.in_unit_of_work: the connection is checked out
    and the caller read in the handler's own trip) — 4 % of an event's instructions in-process
    for the first two; FastAPI resolves the bearer token (which also names the route's
    security scheme in OpenAPI) and the case's deferred lookup."""
    route = next(
        r
        for r in cases_router.routes
        if isinstance(r, APIRoute) and r.path == "/api/cases/{case_id}/events"
    )

    def calls(dependant: Dependant) -> list[str]:
        return [
            getattr(d.call, "__name__", type(d.call).__name__) for d in dependant.dependencies
        ] + [name for d in dependant.dependencies for name in calls(d)]

    assert sorted(calls(route.dependant)) == sorted(["case_in_scope", "OAuth2PasswordBearer"])


def test_an_event_looks_its_case_up_once_on_postgresql(world: World) -> None:
    """The engine loads the case it fires on and refuses one outside the caller's subtree with
    the 404 of every scope check, so on PostgreSQL the event route leaves its scope to the engine:
    one read of the case per event, in the write's own transaction. On SQLite the scope is still
    looked up first, before the database's one write lock is taken (a 404 waits for no lock: the
    test above). Either way an outsider gets the same 404 and nothing is written."""
    case_id = new_case(world.engine, world.clock, world.campaign, "WH-HC-001")
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(" ".join(statement.split()))

    def reads_of_the_case() -> int:
        return sum(1 for s in statements if s.startswith("SELECT") and "FROM aid_case" in s)

    def audit_entries() -> int:
        with world.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(audit_t)).scalar_one()

    before = audit_entries()
    outsider = world.as_(username("clerk", "WH-HC-002"))
    with listening(world.engine, "before_cursor_execute", seen):
        refused = world.client.post(
            f"/api/cases/{case_id}/events", json={"event": "submit", "version": 1}, headers=outsider
        )
    assert refused.status_code == 404, refused.text
    assert refused.json() == {
        "code": "not_found",
        "message": f"案件 {case_id} 不存在",
        "details": None,
    }
    assert audit_entries() == before

    clerk = world.as_(username("clerk", "WH-HC-001"))
    statements.clear()
    with listening(world.engine, "before_cursor_execute", seen):
        fired = world.client.post(
            f"/api/cases/{case_id}/events", json={"event": "submit", "version": 1}, headers=clerk
        )
    assert fired.status_code == 200, fired.text
    assert reads_of_the_case() == (2 if world.engine.dialect.name == "sqlite" else 1), statements
    assert audit_entries() == before + 1


@contextmanager
def round_trips_traced(engine: Engine, path: Path) -> Iterator[Callable[[], list[str]]]:
    """libpq's protocol trace of every connection the pool hands out meanwhile. Yields a function
    giving the client's round trips: each run of messages it sent before it read an answer, by
    the messages' names (libpq logs a message sent as it is sent and an answer as it is read)."""
    out = path.open("w")

    def trace(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        dbapi_connection.pgconn.trace(out.fileno())
        dbapi_connection.pgconn.set_trace_flags(Trace.SUPPRESS_TIMESTAMPS | Trace.REGRESS_MODE)

    def untrace(dbapi_connection: Any, _record: Any) -> None:
        if dbapi_connection is not None:
            dbapi_connection.pgconn.untrace()

    def round_trips() -> list[str]:
        out.flush()
        trips: list[list[str]] = []
        previous = "B"
        for line in path.read_text().splitlines():
            if not line.startswith(("F\t", "B\t")):
                continue  # a statement's text goes on over lines
            side, _length, message, *rest = line.split("\t")
            if side == "F":
                if previous == "B":
                    trips.append([])
                statement = (
                    re.search(r'"([A-Z]+)', rest[0]) if message in ("Parse", "Query") else None
                )
                trips[-1].append(statement.group(1) if statement else message)
            previous = side
        return [
            " ".join(m for m in trip if m not in ("Bind", "Describe", "Execute")) for trip in trips
        ]

    event.listen(engine, "checkout", trace)
    event.listen(engine, "checkin", untrace)
    try:
        yield round_trips
    finally:
        event.remove(engine, "checkout", trace)
        event.remove(engine, "checkin", untrace)
        out.close()


def submitted(world: World) -> tuple[int, dict[str, str]]:
    """A new case of WH-HC-001 submitted by its clerk, and the district reviewer's headers."""
    case_id = new_case(world.engine, world.clock, world.campaign, "WH-HC-001")
    clerk = world.as_(username("clerk", "WH-HC-001"))
    response = world.client.post(
        f"/api/cases/{case_id}/events", json={"event": "submit", "version": 1}, headers=clerk
    )
    assert response.status_code == 200, response.text
    return case_id, world.as_(username("reviewer", "WH-HC"))


def fails_leaving_it_submitted(
    world: World, case_id: int, body: dict[str, Any], headers: dict[str, str], table: str
) -> None:
    """The event, with every INSERT INTO `table` failing: a 500, and the case as submitted."""
    with listening(world.engine, "before_cursor_execute", failing_insert_into(table)):
        failed = world.client.post(f"/api/cases/{case_id}/events", json=body, headers=headers)
    assert failed.status_code == 500, failed.text
    assert case_state(world.engine, case_id) == ("archive_check", 2)


@pytest.mark.parametrize("db", ["postgresql"], indirect=True)
@pytest.mark.parametrize("fired_event", ["submit", "verify"])
def test_an_event_waits_for_the_database_twice(
    world: World, tmp_path: Path, fired_event: str
) -> None:
    """An event through the API on PostgreSQL: the caller's read with the case's load (one
    statement: the route knows the case the engine will load, api.deps `read_ahead`), then the
    transition — the version-checked UPDATE, the audit entry it chains and the counters — as one
    statement the server commits as it ends: no BEGIN (the request's transaction waits for its
    first write, workflow.driver.defer_transaction), no COMMIT. Each round trip costs both
    sides a send, a wake-up and a receive — on this machine about 0.1 ms of the server's CPU
    each, as much as a small statement's own work. A verify asks nothing more: whether its
    campaign skips publicity is in the facts the engine loaded."""
    if fired_event == "verify":
        case_id, headers = submitted(world)
        body: dict[str, Any] = {"event": "verify", "version": 2, "opinion": "档案核查无误"}
    else:
        case_id = new_case(world.engine, world.clock, world.campaign, "WH-HC-001")
        body = {"event": "submit", "version": 1}
        headers = world.as_(username("clerk", "WH-HC-001"))
    with round_trips_traced(world.engine, tmp_path / "trace") as round_trips:
        fired = world.client.post(f"/api/cases/{case_id}/events", json=body, headers=headers)
        assert fired.status_code == 200, fired.text
        trips = round_trips()
    assert len(trips) == 2, trips
    read, write = trips
    assert "WITH" not in read and "WITH" in write, trips  # the row, entry and counters as one
    assert not any("BEGIN" in trip or "COMMIT" in trip for trip in trips), trips
    assert fired.json()["version"] == body["version"] + 1
    # the case's creation, then the events
    assert count(world.engine, audit_t) == 1 + body["version"]
    with world.engine.connect() as conn:
        assert counter_differences(conn, world.campaign) == []


@pytest.mark.parametrize("db", ["postgresql"], indirect=True)
@pytest.mark.parametrize("unit", ["WH-HC-001", "WH-HC"])
def test_an_approval_reads_its_chain_alone(world: World, tmp_path: Path, unit: str) -> None:
    """An approval's facts need the levels the units on the case's path act at (one more read):
    it runs alone before the transition's one statement — no BEGIN, three round trips."""
    steps_done = 0 if unit == "WH-HC-001" else 1
    case_id = case_in(
        world.engine, world.clock, world.campaign, "WH-HC-001", CaseState.APPROVAL,
        approved=steps_done,
    )  # fmt: skip
    version = case_state(world.engine, case_id)[1]
    body = {"event": "approve", "version": version, "opinion": "同意"}
    approver = world.as_(username("approver", unit))
    with round_trips_traced(world.engine, tmp_path / "trace") as round_trips:
        approved = world.client.post(f"/api/cases/{case_id}/events", json=body, headers=approver)
        assert approved.status_code == 200, approved.text
        trips = round_trips()
    assert len(trips) == 3 and "WITH" in trips[-1], trips
    assert not any("BEGIN" in trip or "COMMIT" in trip for trip in trips), trips
    assert case_state(world.engine, case_id) == ("approval", version + 1)


@pytest.mark.parametrize("db", ["postgresql"], indirect=True)
def test_an_event_that_sends_a_message_is_one_transaction_with_it(
    world: World, tmp_path: Path
) -> None:
    """A return tells the unit (outbox and inbox): the transition is not all the request writes,
    so its transaction begins with its first write (BEGIN), and a failure writing the message
    takes the transition back with it."""
    case_id, reviewer = submitted(world)
    body = {"event": "return", "version": 2, "opinion": "缺少学籍证明"}
    fails_leaving_it_submitted(world, case_id, body, reviewer, "inbox_message")
    assert count(world.engine, outbox_t) == 0
    with round_trips_traced(world.engine, tmp_path / "trace") as round_trips:
        returned = world.client.post(f"/api/cases/{case_id}/events", json=body, headers=reviewer)
        assert returned.status_code == 200, returned.text
        trips = round_trips()
    assert "BEGIN" not in trips[0] and "BEGIN" in trips[1], trips
    assert "COMMIT" in trips[-1], trips
    assert case_state(world.engine, case_id) == ("survey", 3)
    assert count(world.engine, inbox_t) == 1
    with world.engine.connect() as conn:
        assert counter_differences(conn, world.campaign) == []


@pytest.mark.parametrize("db", ["postgresql"], indirect=True)
def test_a_verify_that_skips_publicity_is_one_transaction_with_its_moves(
    db: Engine, clock: ManualClock, tmp_path: Path
) -> None:
    """A campaign whose notice asks for no publicity (Dalian 2011): the verify is followed, in its
    own transaction, by the publicity's start and end — the verify is not all the request
    writes, so it is not sent alone, and a failure after it takes it back."""
    with world_of(db, clock, tmp_path, publicity_working_days=0) as world:
        case_id, reviewer = submitted(world)
        body = {"event": "verify", "version": 2, "opinion": "档案核查无误"}
        # the publicity's entries go in after the verify's (workflow.audit.chain, many at once)
        fails_leaving_it_submitted(world, case_id, body, reviewer, "audit_entry")
        verified = world.client.post(f"/api/cases/{case_id}/events", json=body, headers=reviewer)
        assert verified.status_code == 200, verified.text
        assert (verified.json()["state"], verified.json()["version"]) == ("approval", 5)
        assert case_state(world.engine, case_id) == ("approval", 5)
        with world.engine.connect() as conn:
            assert counter_differences(conn, world.campaign) == []
