"""Dependencies every face shares: the process's services, the signed-in actor, declared
permissions, the request's one unit of work (`Conn`), and the objects a path or query names,
loaded within the caller's subtree or refused with 404 (`UnitInScope`, `CampaignInScope`,
`CaseInScope`, `UserInScope`, `InboxItemInScope`; from the query `QueriedUnit`, `ParentUnit`,
`QueriedCase`)."""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi.security import OAuth2PasswordBearer
from pydantic import BaseModel
from sqlalchemy import Connection, Engine, Select, bindparam, select

from jinqiu.api.errors import Unauthorized
from jinqiu.api.security import Bearer, read_token
from jinqiu.notifications.models import InboxMessage
from jinqiu.workflow.attachments.models import Attachment
from jinqiu.workflow.campaigns.models import Campaign
from jinqiu.workflow.cases.models import Case
from jinqiu.workflow.clock import Clock
from jinqiu.workflow.config import Settings
from jinqiu.workflow.db import for_writing, is_sqlite, read_only, reading
from jinqiu.workflow.driver import (
    defer_transaction,
    driver_first,
    driver_first_reading_ahead,
)
from jinqiu.workflow.employment.models import EmploymentRecord, WorkStudyPost
from jinqiu.workflow.engine import Noun
from jinqiu.workflow.errors import NotFound, PermissionDenied
from jinqiu.workflow.payments.service import batch_in_scope as batch_of
from jinqiu.workflow.publicity_lists.models import Objection, PublicityList
from jinqiu.workflow.roles import Actor, Grant, PermissionName
from jinqiu.workflow.units.models import Unit, in_subtree, subtree_bounds
from jinqiu.workflow.users.models import User
from jinqiu.workflow.validation import MAX_DB_INT

user_t = User.__table__  # type: ignore[attr-defined]
attachment_t = Attachment.__table__  # type: ignore[attr-defined]
unit_t = Unit.__table__  # type: ignore[attr-defined]
campaign_t = Campaign.__table__  # type: ignore[attr-defined]
case_t = Case.__table__  # type: ignore[attr-defined]
inbox_t = InboxMessage.__table__  # type: ignore[attr-defined]
list_t = PublicityList.__table__  # type: ignore[attr-defined]
objection_t = Objection.__table__  # type: ignore[attr-defined]
record_t = EmploymentRecord.__table__  # type: ignore[attr-defined]
post_t = WorkStudyPost.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Services:
    """What a request may use. Nothing here holds shared truth: that is all in the database."""

    engine: Engine
    clock: Clock
    settings: Settings


# Dependencies that only compute are `async def`: FastAPI runs a plain `def` in the thread pool,
# a hop of ~45 µs of CPU each; those that touch the database (or DNS) stay `def`.
async def services(request: Request) -> Services:
    return _services_of(request)


ServicesDep = Annotated[Services, Depends(services)]
bearer = OAuth2PasswordBearer(tokenUrl="/api/auth/token", auto_error=False)


# -- the request's connection ----------------------------------------------------------------------
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def request_connection(
    request: Request, token: Annotated[str | None, Depends(bearer)]
) -> AsyncIterator[Connection]:
    """The request's one connection from the pool: the caller is read on it, here, in the same
    trip to the thread pool (`current_actor` only looks at what was found), then it is the unit
    of work (`Conn`, below) — unless nothing FastAPI resolves needs it: a `def` handler then
    reads its caller in its own trip (`in_unit_of_work`). Given back to the pool at the end of
    the handler's own trip (`in_unit_of_work`), or here after a refusal before the handler. A GET's is a read
    (workflow.db.read_only: on PostgreSQL READ ONLY, ended with COMMIT, its prepared statements
    kept for the next request) until the route learns it writes."""
    async for conn in _connection(request, token):
        yield conn


async def anonymous_connection(request: Request) -> AsyncIterator[Connection]:
    """`request_connection` for a route that asks nobody to sign in (/api/health): no token is
    read, and the route's OpenAPI entry names no security scheme."""
    async for conn in _connection(request, None):
        yield conn


async def _connection(request: Request, token: str | None) -> AsyncIterator[Connection]:
    # An async generator: FastAPI runs a `def` one's enter and exit in two trips to the thread
    # pool; here the exit costs a trip only when the handler did not give the connection back.
    # The services are read off the app, not taken as a dependency: FastAPI computes a cache
    # key for every dependency each time a route names it, and the connection is named by
    # most of a route's dependencies.
    conn = await run_in_threadpool(_check_out, request, _services_of(request), token)
    try:
        yield conn
    finally:
        if not conn.closed:
            await run_in_threadpool(conn.close)
    if _writes(request) and not getattr(request.state, "committed", False):
        # A handler that wrote outside UnitOfWorkRoute: nothing it did is kept.
        raise RuntimeError(f"{request.method} {request.url.path}: not a UnitOfWorkRoute")


def _check_out(
    request: Request, svc: Services, token: str | None, ahead: ReadAhead | None = None
) -> Connection:
    conn = svc.engine.connect()
    try:
        request.state.connection = conn
        if request.method in SAFE_METHODS:
            read_only(conn)
        request.state.caller = _caller(svc, conn, token, ahead)
    except BaseException:
        conn.close()
        raise
    return conn


def _connection_of(request: Request) -> Connection | None:
    conn: Connection | None = getattr(request.state, "connection", None)
    return conn


def _give_back(request: Request) -> None:
    """The request's connection back to the pool (a transaction left open is rolled back; a
    read's ends with COMMIT on PostgreSQL, workflow.db)."""
    conn = _connection_of(request)
    if conn is not None:
        conn.close()


def _caller(
    svc: Services, conn: Connection, token: str | None, ahead: ReadAhead | None = None
) -> Actor | Unauthorized:
    """Who the token says is calling, read on the request's connection (with the row `ahead`
    names, when given: `actor_on`); a refusal is kept, not raised: only a route that asks who is
    calling (`CurrentActor`) answers 401 with it (a health check sent with a stale token is
    still answered)."""
    if not token:
        return Unauthorized("请先登录")
    try:
        return actor_on(conn, read_token(svc.settings, token, svc.clock.now()), ahead)
    except Unauthorized as refused:
        return refused


# scope="function": the exit code runs when the handler returns, before the response is sent;
# with FastAPI's default, "request", it runs after the client already has its answer.
RequestConnection = Annotated[Connection, Depends(request_connection, scope="function")]
AnonymousConn = Annotated[Connection, Depends(anonymous_connection, scope="function")]


# -- who is calling ---------------------------------------------------------------------------------
async def current_actor(request: Request, _conn: RequestConnection) -> Actor:
    """The caller `request_connection` read (no trip to the thread pool of its own)."""
    return _caller_of(request)


def actor_of(svc: Services, bearer: Bearer) -> Actor:
    """The signed-in actor (`actor_on`), read on a short connection of its own (the pages)."""
    with reading(svc.engine) as conn:
        return actor_on(conn, bearer)


ACTOR_QUERY = (
    select(
        user_t.c.username,
        user_t.c.roles,
        user_t.c.is_active,
        user_t.c.token_generation,
        unit_t.c.code,
        unit_t.c.path,
        unit_t.c.level,
    )
    .join(unit_t, unit_t.c.id == user_t.c.unit_id)
    .where(user_t.c.username == bindparam("username"))
)


# A row the handler's engine reads next in the same transaction: its statement and parameters
# (workflow.engine.noun.Noun.read_ahead).
ReadAhead = tuple[Select[Any], dict[str, Any]]


def actor_on(conn: Connection, bearer: Bearer, ahead: ReadAhead | None = None) -> Actor:
    """The signed-in actor, read fresh from the database on every request: a token issued
    before the user's last password change, deactivation, role change or sign-out (an older
    generation) is refused at once, whichever process or host changed it — nothing about a user
    is kept in a process. Read on the request's own connection (one pool checkout per request,
    not two: the second cost ~0.7 ms of CPU, its pre-ping and ROLLBACK included). That read
    begins no write: on SQLite it is a deferred read that `_begin` ends before the request's
    write transaction begins (BEGIN IMMEDIATE), so a refused token never holds the write lock.
    `ahead`: the row the handler's engine loads next (an event's case), read in the same
    statement on PostgreSQL and kept for it (workflow.driver.driver_first_reading_ahead) — an
    event's one round trip and statement fewer; a caller refused here is shown nothing of it,
    and it leaves with the request's transaction. That request's transaction then waits for its
    first write (workflow.driver.defer_transaction): this read needs no BEGIN, and a transition
    that is all the request writes goes as one statement the server commits as it ends."""
    username = {"username": bearer.username}
    if ahead is None:
        row = driver_first(conn, ACTOR_QUERY, username)
    else:
        defer_transaction(conn)
        row = driver_first_reading_ahead(conn, ACTOR_QUERY, username, *ahead)
    if row is None:
        raise Unauthorized("用户不存在或已停用")
    username, roles, is_active, token_generation, unit_code, unit_path, unit_level = row
    if not is_active:
        raise Unauthorized("用户不存在或已停用")
    if token_generation != bearer.generation:
        raise Unauthorized("登录已失效（已退出、改密或权限变更），请重新登录")
    return Actor(
        username=username,
        unit_code=unit_code,
        unit_path=unit_path,
        unit_level=unit_level,
        roles=tuple(roles),
    )


CurrentActor = Annotated[Actor, Depends(current_actor)]


def require(
    permission: PermissionName, message: str = "当前角色无权执行该操作"
) -> Callable[[Actor], Awaitable[Actor]]:
    """A dependency that lets only actors holding `permission` through (403 otherwise). Listed
    before the objects a route loads, so a role without the grant learns nothing of them."""

    async def check(actor: CurrentActor) -> Actor:
        if not actor.may(permission):
            raise PermissionDenied(message, {"permission": permission.value})
        return actor

    return check


# -- the unit of work -------------------------------------------------------------------------------


def declare_writes(request: Request, writes: bool) -> None:
    """A read that writes after all (it records that personal numbers were shown in full):
    declared by a route-level dependency; the handler's unit of work (`UnitOfWorkRoute`) then
    ends the read and begins a write."""
    request.state.writes = writes


async def records_full_reads(request: Request, actor: CurrentActor) -> None:
    """For routes that show a case's numbers: a pii.read holder sees them in full and that read
    writes its pii_access row, so their request is a write transaction; others' stay reads."""
    declare_writes(request, actor.may(Grant.READ_PII))


RecordsFullReads = Depends(records_full_reads)


# The request's one connection as its unit of work. A request that writes — any method but
# GET/HEAD, or a read declared to write — is one transaction, begun and committed by its route
# (`UnitOfWorkRoute`) in the handler's own trip to the thread pool; other reads keep the read
# connection. The connection itself, not a dependency on it: each level of dependencies is a
# cache key FastAPI computes on every request.
Conn = RequestConnection


def _writes(request: Request) -> bool:
    return request.method not in SAFE_METHODS or getattr(request.state, "writes", False)


def _begin(request: Request) -> Connection | None:
    """Before the handler of a request that writes: its connection, ready to write. On SQLite the
    caller's read (`current_actor`, the scope checks: a deferred read transaction) is ended, so
    the write begins with BEGIN IMMEDIATE at the handler's first statement
    (workflow.db.for_writing) — the database's one write lock is not held while FastAPI reads the
    caller and the objects the path names, nor between trips to the thread pool. A GET declared
    to write ends its read (READ ONLY on PostgreSQL). A POST on PostgreSQL goes on in the
    transaction its first read began."""
    conn: Connection | None = getattr(request.state, "connection", None)
    if conn is None or not _writes(request):
        return None
    if conn.in_transaction() and (is_sqlite(conn) or request.method in SAFE_METHODS):
        conn.rollback()
    return for_writing(conn)


def _commit(request: Request, conn: Connection) -> None:
    """Committed once, after the handler returned and before the answer is serialised or sent;
    any error before rolls it back (request_connection closes the connection), so a refusal
    leaves nothing behind."""
    try:
        conn.commit()
    except BaseException:
        # Whatever state a failed COMMIT left the driver in, this connection does not go
        # back to the pool: closed, its transaction is discarded by the database.
        conn.invalidate()
        raise
    request.state.committed = True


_REQUEST = "unit_of_work_request"
_TOKEN = "unit_of_work_token"
# The bearer token alone, for a handler that reads its caller in its own trip: FastAPI reads the
# header (and names the route's security scheme in OpenAPI) without checking anything out.
BearerToken = Annotated[str | None, Depends(bearer)]


def in_unit_of_work(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """`endpoint` with the request's unit of work around it, all in the handler's one trip to the
    thread pool: the connection checked out with the caller read (unless a dependency FastAPI
    resolved did it already), the lookups `in_handler` deferred, `_begin`, the handler,
    `_commit`, and the connection given back. FastAPI runs each `def` dependency and handler on
    a pool thread and validates a `def` handler's answer in one more; the caller's read, a
    dependency that began and committed the transaction were trips of their own (~0.1–0.3 ms
    of CPU each, and on SQLite the write lock held across them). The handler's signature is
    FastAPI's to read, plus the request (a keyword FastAPI fills in) and the bearer token, less
    the parameters handed to it from the request (`_given_by_request`)."""
    signature = inspect.signature(endpoint, eval_str=True)
    # A `def` handler asking who is calling reads the caller in its own trip.
    reads_caller = not inspect.iscoroutinefunction(endpoint) and any(
        id(p.annotation) == id(CurrentActor) for p in signature.parameters.values()
    )
    given = _given_by_request(signature, reads_caller=reads_caller)
    # FastAPI fills one parameter per request with the Request: the handler's own, or ours.
    own = [p.name for p in signature.parameters.values() if p.annotation is Request]
    name = own[0] if own else _REQUEST
    parameters = [p for p in signature.parameters.values() if p.name not in given]
    if not own:
        parameters.append(
            inspect.Parameter(_REQUEST, inspect.Parameter.KEYWORD_ONLY, annotation=Request)
        )
    if reads_caller:
        parameters.append(
            inspect.Parameter(_TOKEN, inspect.Parameter.KEYWORD_ONLY, annotation=BearerToken)
        )

    def request_of(values: dict[str, Any]) -> Request:
        req: Request = values[name] if own else values.pop(name)
        return req

    def hand_over(values: dict[str, Any], req: Request) -> None:
        if reads_caller:
            token = values.pop(_TOKEN)
            if _connection_of(req) is None:  # no dependency FastAPI resolved needed it
                _check_out(req, _services_of(req), token, _read_ahead(values))
        for parameter, get in given.items():
            values[parameter] = get(req)  # the caller's refusal (401) is raised here

    if inspect.iscoroutinefunction(endpoint):

        async def handler(**values: Any) -> Any:
            req = request_of(values)
            hand_over(values, req)
            if any(isinstance(v, Deferred) for v in values.values()):
                await run_in_threadpool(_resolve_deferred, values, req)
            conn = _begin(req)
            result = await endpoint(**values)
            if conn is not None:
                await run_in_threadpool(_commit, req, conn)
            return result

    else:

        def work(values: dict[str, Any]) -> Any:
            req = request_of(values)
            try:
                hand_over(values, req)
                # before the write begins: a 404 waits for no lock
                _resolve_deferred(values, req)
                conn = _begin(req)
                result = endpoint(**values)
                if conn is not None:
                    _commit(req, conn)
                return result
            finally:
                _give_back(req)  # in this trip: request_connection's exit needs none

        # A coroutine to FastAPI, which makes the one trip itself: FastAPI would also validate a
        # `def` handler's answer in a trip of its own (~0.3 ms of CPU a trip; the validation
        # holds the interpreter lock wherever it runs).
        async def handler(**values: Any) -> Any:
            return await run_in_threadpool(work, values)

    functools.update_wrapper(handler, endpoint)
    handler.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    handler.reads_caller = reads_caller  # type: ignore[attr-defined]
    return handler


def _given_by_request(
    signature: inspect.Signature, *, reads_caller: bool
) -> dict[str, Callable[[Request], Any]]:
    """The handler's parameters filled from the request by `in_unit_of_work`, not resolved by
    FastAPI, which computes a cache key and makes a call for each dependency on every request:
    the app's services; where the handler asks who is calling, the request's connection, and,
    where the handler reads its caller in its own trip, the caller."""
    annotations = {id(p.annotation) for p in signature.parameters.values()}
    given: dict[str, Callable[[Request], Any]] = {}
    for p in signature.parameters.values():
        if id(p.annotation) == id(ServicesDep):
            given[p.name] = _services_of
        elif id(p.annotation) == id(CurrentActor) and reads_caller:
            given[p.name] = _caller_of
        elif id(p.annotation) == id(Conn) and id(CurrentActor) in annotations:
            given[p.name] = _connection_of
    return given


def _refuse_a_stranger(request: Request, token: str | None) -> None:
    """Raises the caller's refusal (401), read on a short connection of its own: for a request
    whose input FastAPI found invalid before the handler's trip, where its caller would have
    been read — the contract answers 401 before 422."""
    svc = _services_of(request)
    with svc.engine.connect() as conn:
        read_only(conn)
        caller = _caller(svc, conn, token)
    if isinstance(caller, Unauthorized):
        raise caller


class UnitOfWorkRoute(APIRoute):
    """Every route of the app: its handler runs in the request's unit of work
    (`in_unit_of_work`). `api_router` makes routers of it."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, in_unit_of_work(endpoint), **kwargs)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()
        if not getattr(self.endpoint, "reads_caller", False):
            return handle

        async def app(request: Request) -> Response:
            try:
                return await handle(request)
            except RequestValidationError:
                if _connection_of(request) is None:  # the caller was not read: no trip came
                    await run_in_threadpool(_refuse_a_stranger, request, await bearer(request))
                raise

        return app


def api_router(**options: Any) -> APIRouter:
    """An APIRouter whose routes are UnitOfWorkRoutes."""
    return APIRouter(route_class=UnitOfWorkRoute, **options)


# -- what a request names, within the caller's subtree ----------------------------------------------
_UNIT_NAMED = select(unit_t).where(unit_t.c.code == bindparam("code"))


def unit_named(conn: Connection, code: str | None, actor: Actor) -> Any:
    """The unit called `code`, if it is the actor's or below it."""
    row = conn.execute(_UNIT_NAMED, {"code": code}).first() if code else None
    if row is None or not actor.sees(row.path):
        raise NotFound(f"单位 {code} 不存在")
    return row


def unit_in_scope(code: str, actor: CurrentActor, conn: Conn) -> Any:
    """/…/{code}: the unit, if it is the caller's or below it."""
    return unit_named(conn, code, actor)


def queried_unit(
    actor: CurrentActor, conn: Conn, unit: Annotated[str | None, Query(max_length=64)] = None
) -> Any:
    """?unit=: a unit of the caller's subtree; by default the caller's own."""
    return unit_named(conn, unit or actor.unit_code, actor)


def parent_unit(
    actor: CurrentActor, conn: Conn, parent: Annotated[str | None, Query(max_length=64)] = None
) -> Any:
    """?parent=: a unit of the caller's subtree, or None when not given."""
    return None if parent is None else unit_named(conn, parent, actor)


_CAMPAIGN = (
    select(campaign_t, unit_t.c.code.label("organizer"), unit_t.c.path.label("organizer_path"))
    .join(unit_t, unit_t.c.id == campaign_t.c.organizer_unit_id)
    .where(campaign_t.c.id == bindparam("campaign_id"))
)


def campaign_of(conn: Connection, campaign_id: int, actor: Actor) -> Any:
    """The campaign with its organiser, if it concerns the caller (Actor.concerned_by)."""
    row = conn.execute(_CAMPAIGN, {"campaign_id": campaign_id}).first()
    if row is None or not actor.concerned_by(row.organizer_path):
        raise NotFound(f"活动 {campaign_id} 不存在")
    return row


def campaign_in_scope(
    campaign_id: Annotated[int, Path(ge=1, le=MAX_DB_INT)], actor: CurrentActor, conn: Conn
) -> Any:
    return campaign_of(conn, campaign_id, actor)


# Built once, values bound per call: building a select with its join and range per request (and
# its cache key) cost more than running it — a third of a case event's scope check.
_CASE_IN_SUBTREE = (
    select(case_t.c.id)
    .join(unit_t, unit_t.c.id == case_t.c.unit_id)
    .where(
        case_t.c.id == bindparam("case_id"),
        unit_t.c.path >= bindparam("lower"),
        unit_t.c.path < bindparam("upper"),
    )
)


def case_of(conn: Connection, case_id: int, actor: Actor) -> int:
    """The case's id, if its unit is in the actor's subtree. The domain checks again (the
    engine and the PII read are called from other faces too); this check answers 404 before
    anything else is looked at."""
    lower, upper = subtree_bounds(actor.unit_path)
    found = conn.execute(
        _CASE_IN_SUBTREE, {"case_id": case_id, "lower": lower, "upper": upper}
    ).first()
    if found is None:
        raise NotFound(f"案件 {case_id} 不存在")
    return case_id


def case_in_scope(
    case_id: Annotated[int, Path(ge=1, le=MAX_DB_INT)], actor: CurrentActor, conn: Conn
) -> int:
    return case_of(conn, case_id, actor)


def attachment_of(conn: Connection, case_id: int, attachment_id: int) -> int:
    """The attachment's id, if it is a document of this case (whose scope is checked already)."""
    found = conn.execute(
        select(attachment_t.c.id).where(
            attachment_t.c.id == attachment_id, attachment_t.c.case_id == case_id
        )
    ).first()
    if found is None:
        raise NotFound(f"附件 {attachment_id} 不存在")
    return attachment_id


def attachment_in_scope(
    case_id: Annotated[int, Depends(case_in_scope)],
    attachment_id: Annotated[int, Path(ge=1, le=MAX_DB_INT)],
    conn: Conn,
) -> int:
    return attachment_of(conn, case_id, attachment_id)


def subject_in_scope(noun: Noun[Any]) -> Callable[..., int]:
    """The scope dependency of a noun served by the generic event route: its subject, or 404
    when there is none or the noun says the caller may not see it."""

    def in_scope(
        subject_id: Annotated[int, Path(ge=1, le=MAX_DB_INT)],
        actor: CurrentActor,
        svc: ServicesDep,
        conn: Conn,
    ) -> int:
        loaded = noun.load(conn, subject_id, today=svc.clock.now().date(), data={})
        if loaded is None or not noun.visible(actor, loaded):
            raise NotFound(f"{noun.label} {subject_id} 不存在")
        return subject_id

    return in_scope


def batch_in_scope(
    request: Request,
    batch_id: Annotated[int, Path(ge=1, le=MAX_DB_INT)],
    actor: CurrentActor,
    conn: Conn,
) -> Any:
    """/payment-batches/{batch_id}: the batch, if its unit is in the caller's subtree; held
    (PostgreSQL FOR UPDATE) by a POST, PUT or DELETE from here to its commit, so two imports of
    one result file apply it once: the second waits, then finds it applied. A GET that writes
    (the bank file's download) looks it up in its read, which cannot lock (READ ONLY); its
    handler's service locks the batch again in the write (payments.service.export_file)."""
    return batch_of(conn, batch_id, actor, lock=request.method not in SAFE_METHODS)


def queried_case(
    actor: CurrentActor,
    conn: Conn,
    case: Annotated[int | None, Query(ge=1, le=MAX_DB_INT)] = None,
) -> int | None:
    """?case=: a case of the caller's subtree, or None when not given."""
    return None if case is None else case_of(conn, case, actor)


def user_in_scope(username: str, actor: CurrentActor, conn: Conn) -> Any:
    row = conn.execute(
        select(user_t, unit_t.c.code.label("unit_code"), unit_t.c.path)
        .join(unit_t, unit_t.c.id == user_t.c.unit_id)
        .where(user_t.c.username == username)
    ).first()
    if row is None or not actor.sees(row.path):
        raise NotFound(f"用户 {username} 不存在")
    return row


def inbox_item_of(conn: Connection, item_id: int, actor: Actor) -> Any:
    """A notification addressed to the actor's own unit (an inbox is one unit's, not a subtree's)."""
    row = conn.execute(
        select(inbox_t).where(inbox_t.c.id == item_id, inbox_t.c.unit_code == actor.unit_code)
    ).first()
    if row is None:
        raise NotFound(f"通知 {item_id} 不存在")
    return row


def inbox_item_in_scope(
    item_id: Annotated[int, Path(ge=1, le=MAX_DB_INT)], actor: CurrentActor, conn: Conn
) -> Any:
    return inbox_item_of(conn, item_id, actor)


def after_body(scope: Callable[..., Any], model: type[BaseModel]) -> Callable[..., Any]:
    """`scope`, an `async def` that only computes (a header parsed), as a dependency that also
    takes the route's body (named `body`, as the route names it). FastAPI calls a dependency only
    when all its own parameters are valid, so an invalid body is answered 422 first — the
    contract's order: 401, 403, 422, then 404. (The body is then validated by two dependants;
    api.errors reports each problem once.) A lookup in the database is `in_handler`'s."""
    if not inspect.iscoroutinefunction(scope):
        raise TypeError(f"{scope.__name__}: a lookup is checked in the handler (in_handler)")
    signature = inspect.signature(scope, eval_str=True)
    body = inspect.Parameter("body", inspect.Parameter.KEYWORD_ONLY, annotation=model)

    async def dependency(**values: Any) -> Any:
        values.pop("body")
        return await scope(**values)

    dependency.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[*signature.parameters.values(), body]
    )
    return dependency


@dataclass(frozen=True, slots=True)
class Deferred:
    """A lookup of the object a path names, to be made in the handler's own trip to the thread
    pool (`in_unit_of_work`) rather than a trip of its own."""

    lookup: Callable[..., Any]
    values: dict[str, Any]
    from_request: tuple[tuple[str, Callable[[Request], Any]], ...]
    checked_by_engine: str | None = None
    fired_on: Noun[Any] | None = None

    def resolve(self, request: Request) -> Any:
        conn = _connection_of(request)
        if self.checked_by_engine is not None and conn is not None and not is_sqlite(conn):
            # The handler's engine loads the subject in this transaction and refuses one outside
            # the caller's subtree with the same 404 (workflow.engine.fire).
            return self.values[self.checked_by_engine]
        return self.lookup(**self.values, **{name: get(request) for name, get in self.from_request})


def _caller_of(request: Request) -> Actor:
    caller: Actor | Unauthorized = request.state.caller
    if isinstance(caller, Unauthorized):
        raise caller
    return caller


def _services_of(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


# What a deferred lookup is given from the request, not by FastAPI: the caller and the connection
# `request_connection` found, the app's services. Each dependency FastAPI resolves is a cache key
# it computes on every request, and these are already resolved for the handler itself.
_FROM_REQUEST: dict[int, Callable[[Request], Any]] = {}


def in_handler(
    lookup: Callable[..., Any],
    *,
    checked_by_engine: str | None = None,
    fired_on: Noun[Any] | None = None,
) -> Callable[..., Any]:
    """`lookup` (a scope dependency that reads the database and refuses with 404 outside the
    caller's subtree) for a route with a body: the dependency itself only records what to look
    up (no trip to the thread pool), and the route's unit of work (`in_unit_of_work`) makes the
    lookup first thing in the handler's trip, before its write begins. FastAPI has validated
    the body by then, so the contract's order holds — 401, 403, 422, then 404 — with the body
    validated once and one trip to the pool fewer (~0.3 ms of CPU a request). The route's
    handler must take the dependency as one of its own parameters.

    `checked_by_engine` names the path parameter of an event route, whose handler fires the
    engine: `workflow.engine.fire` loads the subject itself and answers one outside the caller's
    subtree with the same 404, after the body is valid and before anything else is looked at.
    On PostgreSQL the lookup is then left to the engine (one statement and round trip fewer an
    event, in the write's own transaction); on SQLite it is still made, before the database's
    one write lock is taken, so that a 404 waits for no lock. `fired_on`, the noun the engine
    fires on, goes with it: the caller's read reads the subject's row ahead for the engine's load
    (`actor_on`: one more statement and round trip fewer on PostgreSQL)."""
    if (checked_by_engine is None) != (fired_on is None):
        raise TypeError(f"{lookup.__name__}: checked_by_engine and fired_on go together")
    if inspect.iscoroutinefunction(lookup):
        raise TypeError(f"{lookup.__name__}: only a lookup in the database is deferred")
    signature = inspect.signature(lookup, eval_str=True)
    from_request = tuple(
        (p.name, _FROM_REQUEST[id(p.annotation)])
        for p in signature.parameters.values()
        if id(p.annotation) in _FROM_REQUEST
    )
    own = [p for p in signature.parameters.values() if id(p.annotation) not in _FROM_REQUEST]

    async def dependency(**values: Any) -> Deferred:
        return Deferred(lookup, values, from_request, checked_by_engine, fired_on)

    dependency.__signature__ = signature.replace(parameters=own)  # type: ignore[attr-defined]
    dependency.__name__ = lookup.__name__
    dependency.__module__ = lookup.__module__
    return dependency


def _read_ahead(values: dict[str, Any]) -> ReadAhead | None:
    """The row the handler's engine loads first — the subject of an event route whose scope is
    the engine's (`in_handler`'s `checked_by_engine`) — for the caller's read to read ahead."""
    for value in values.values():
        if isinstance(value, Deferred) and value.fired_on and value.checked_by_engine:
            return value.fired_on.read_ahead(value.values[value.checked_by_engine])
    return None


def _resolve_deferred(values: dict[str, Any], request: Request) -> None:
    """The handler's deferred lookups made, in parameter order, on the request's connection."""
    for name, value in values.items():
        if isinstance(value, Deferred):
            values[name] = value.resolve(request)


_FROM_REQUEST.update(
    {id(CurrentActor): _caller_of, id(Conn): _connection_of, id(ServicesDep): _services_of}
)

UnitInScope = Annotated[Any, Depends(unit_in_scope)]
QueriedUnit = Annotated[Any, Depends(queried_unit)]
ParentUnit = Annotated[Any, Depends(parent_unit)]
CampaignInScope = Annotated[Any, Depends(campaign_in_scope)]
CaseInScope = Annotated[int, Depends(case_in_scope)]
AttachmentInScope = Annotated[int, Depends(attachment_in_scope)]
BatchInScope = Annotated[Any, Depends(batch_in_scope)]
QueriedCase = Annotated[int | None, Depends(queried_case)]
UserInScope = Annotated[Any, Depends(user_in_scope)]
InboxItemInScope = Annotated[Any, Depends(inbox_item_in_scope)]


def publicity_list_of(conn: Connection, list_id: int, actor: Actor) -> int:
    """The list's id, if its unit is the actor's or below it."""
    found = conn.execute(
        select(list_t.c.id)
        .join(unit_t, unit_t.c.id == list_t.c.unit_id)
        .where(list_t.c.id == list_id, in_subtree(unit_t.c.path, actor.unit_path))
    ).first()
    if found is None:
        raise NotFound(f"公示名单 {list_id} 不存在")
    return list_id


def publicity_list_in_scope(
    list_id: Annotated[int, Path(ge=1, le=MAX_DB_INT)], actor: CurrentActor, conn: Conn
) -> int:
    """/publicity-lists/{list_id}: the list, if its unit is the caller's or below it."""
    return publicity_list_of(conn, list_id, actor)


def objection_of(conn: Connection, objection_id: int, actor: Actor) -> int:
    """The objection's id, if its list is in the actor's subtree."""
    found = conn.execute(
        select(objection_t.c.id)
        .join(list_t, list_t.c.id == objection_t.c.list_id)
        .join(unit_t, unit_t.c.id == list_t.c.unit_id)
        .where(objection_t.c.id == objection_id, in_subtree(unit_t.c.path, actor.unit_path))
    ).first()
    if found is None:
        raise NotFound(f"异议 {objection_id} 不存在")
    return objection_id


def objection_in_scope(
    objection_id: Annotated[int, Path(ge=1, le=MAX_DB_INT)], actor: CurrentActor, conn: Conn
) -> int:
    """/objections/{objection_id}: the objection, if its list is in the caller's subtree."""
    return objection_of(conn, objection_id, actor)


PublicityListInScope = Annotated[int, Depends(publicity_list_in_scope)]


def employment_record_of(conn: Connection, record_id: int, actor: Actor) -> int:
    """The record's id, if its unit (the case's) is the actor's or below it."""
    found = conn.execute(
        select(record_t.c.id)
        .join(unit_t, unit_t.c.id == record_t.c.unit_id)
        .where(record_t.c.id == record_id, in_subtree(unit_t.c.path, actor.unit_path))
    ).first()
    if found is None:
        raise NotFound(f"就业记录 {record_id} 不存在")
    return record_id


def employment_record_in_scope(
    record_id: Annotated[int, Path(ge=1, le=MAX_DB_INT)], actor: CurrentActor, conn: Conn
) -> int:
    """/employment-records/{record_id}: the record, if its unit is in the caller's subtree."""
    return employment_record_of(conn, record_id, actor)


def work_study_post_of(conn: Connection, post_id: int, actor: Actor) -> int:
    """The post's id, if its unit is the actor's or below it."""
    found = conn.execute(
        select(post_t.c.id)
        .join(unit_t, unit_t.c.id == post_t.c.unit_id)
        .where(post_t.c.id == post_id, in_subtree(unit_t.c.path, actor.unit_path))
    ).first()
    if found is None:
        raise NotFound(f"勤工俭学岗位 {post_id} 不存在")
    return post_id


def work_study_post_in_scope(
    post_id: Annotated[int, Path(ge=1, le=MAX_DB_INT)], actor: CurrentActor, conn: Conn
) -> int:
    """/work-study-posts/{post_id}: the post, if its unit is in the caller's subtree."""
    return work_study_post_of(conn, post_id, actor)


EmploymentRecordInScope = Annotated[int, Depends(employment_record_in_scope)]
WorkStudyPostInScope = Annotated[int, Depends(work_study_post_in_scope)]
