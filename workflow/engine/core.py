"""One event on one subject of any noun, inside the caller's transaction:

    load the facts → select the transition (the machine) → authorise → run every guard, keep
    every reason → compute the effects (pure) → write their side records → write the row with
    `version = version + 1 WHERE version = :expected` → the noun's counters → append the audit
    entry, chained by hash → enqueue the transition's declared notifications.

Any refusal raises a typed error before or instead of the write, and the caller's transaction
rolls back whatever was written: nothing half-happens. On PostgreSQL a transition that is all
its unit of work writes, on a connection whose transaction waits for its first write (an event
request's: `workflow.driver.defer_transaction`), is written alone: row, audit entry and the
noun's counters in one statement the server commits as it ends (`write`). `decide` is the pure
part, shared with the bulk path (`workflow.engine.bulk`), which writes many subjects with a few
statements.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Hashable, Mapping
from dataclasses import field
from typing import Any

from sqlalchemy import CTE, Connection, Table, bindparam, insert, select, update

from jinqiu.notifications.outbox import enqueue, post_to_inbox
from jinqiu.states.machine import Transition
from jinqiu.workflow.audit.chain import Link, append_entries, chain_entry
from jinqiu.workflow.clock import Clock
from jinqiu.workflow.driver import driver_write, processed_rows, writes_alone
from jinqiu.workflow.engine.noun import ENGINE_COLUMNS, Loaded, Noun, Outcome
from jinqiu.workflow.errors import (
    EventNotAllowed,
    GuardFailed,
    NotFound,
    PermissionDenied,
    ValidationFailed,
    VersionConflict,
)
from jinqiu.workflow.readonly import readonly
from jinqiu.workflow.roles import Actor, Grant

OVERRIDE_KEY = "override"  # goes with every event: a manager's override of named guards


class EffectError(RuntimeError):
    """An effect tried to write what only the engine writes (a programming error)."""


@readonly()
class Fired:
    """What a transition did; the event and states are the machine's own members (StrEnums)."""

    id: int
    event: str
    from_state: str
    state: str
    version: int
    audit_seq: int
    # The facts the transition was decided on (the noun's snapshot, no database handles): what
    # the noun does next in the same transaction reads them instead of the database again.
    facts: Any = field(default=None, compare=False, repr=False)


@readonly()
class Decision:
    """What a transition will write, decided from the facts alone (no I/O)."""

    transition: Transition[Any, Any, Any]
    outcome: Outcome
    opinion: str | None
    audit: dict[str, Any]  # the entry's data: the effects' notes and any override


# A subject's transition for the event (None: none fits) and why the actor may not fire it.
Route = tuple[Transition[Any, Any, Any] | None, str | None]


def checked_event(noun: Noun[Any], event: str, data: Mapping[str, Any]) -> str:
    """The event, known to the machine, with only the data keys it takes; else ValidationFailed."""
    if event not in noun.machine.events:
        raise ValidationFailed(
            f"未知的事件：{event}",
            [{"field": "event", "code": "unknown_event", "message": "未知的事件"}],
        )
    unknown = set(data) - {OVERRIDE_KEY} - noun.machine.data_keys(event)
    if unknown:
        raise ValidationFailed(
            f"data.{sorted(unknown)[0]} 不允许用于事件 {event}",
            [
                {"field": f"data.{k}", "code": "extra_forbidden", "message": "不允许的字段"}
                for k in sorted(unknown)
            ],
        )
    member: str = next(e for e in noun.machine.events if e == event)  # the machine's own
    return member


def decide(
    noun: Noun[Any],
    loaded: Loaded[Any],
    *,
    event: str,
    expected_version: int,
    actor: Actor,
    opinion: str | None,
    data: Mapping[str, Any],
    routes: dict[Hashable, Route] | None = None,
) -> Decision:
    """Everything a transition decides before it writes, or the refusal (raised): the version,
    the transition, the actor's right to fire it, the opinion, overrides, every guard, the
    effects. Pure: reads only `loaded`, so the bulk path runs it item by item. `routes`: the
    bulk's answers of `select` and `refusal` by the noun's `route_key`, for one actor and event."""
    if loaded.version != expected_version:
        raise VersionConflict(
            f"{noun.label}已被他人修改，请刷新后重试",
            {"expected_version": expected_version, "current_version": loaded.version},
        )
    key = None if routes is None else noun.route_key(loaded)
    route = None if routes is None or key is None else routes.get(key)
    if route is None:
        chosen = noun.select(loaded, event)
        route = (chosen, None if chosen is None else noun.refusal(actor, chosen, loaded))
        if routes is not None and key is not None:
            routes[key] = route
    transition, refusal = route
    if transition is None:
        label = noun.machine.state_labels.get(loaded.state, loaded.state)
        raise EventNotAllowed(
            f"{noun.label}处于“{label}”环节，不能执行“{event}”",
            {"state": loaded.state, "allowed_events": noun.allowed_events(actor, loaded)},
        )
    if refusal is not None:
        raise PermissionDenied(refusal, {"event": event})
    opinion = opinion.strip() if opinion else None
    asked = noun.opinion_asked(transition, loaded)
    if asked is not None and not opinion:
        message = f"该操作须填写{asked}"
        raise ValidationFailed(
            message, [{"field": "opinion", "code": "missing", "message": message}]
        )
    overridden, override_reason = _overrides(actor, transition, data)
    reasons = [
        reason
        for name in transition.guards
        if name not in overridden
        for reason in noun.guards[name](loaded.facts)
    ]
    if reasons:
        raise GuardFailed(reasons)
    outcome = combined([noun.effects[name](loaded.facts, opinion) for name in transition.effects])
    audit = dict(outcome.audit)
    if overridden:
        audit["override"] = {"guards": sorted(overridden), "reason": override_reason}
    return Decision(transition, outcome, opinion, audit)


def combined(outcomes: list[Outcome]) -> Outcome:
    """The effects' outcomes in order, refusing any that would write what the engine writes."""
    for outcome in outcomes:
        taken = ENGINE_COLUMNS & outcome.changes.keys()
        if taken:
            raise EffectError(f"an effect may not change {sorted(taken)}")
    if len(outcomes) == 1:  # most transitions have one effect: nothing to merge
        return outcomes[0]
    changes: dict[str, Any] = {}
    audit: dict[str, Any] = {}
    records: list[object] = []
    for outcome in outcomes:
        changes.update(outcome.changes)
        audit.update(outcome.audit)
        records.extend(outcome.records)
    return Outcome(changes, audit, tuple(records))


def fire(
    conn: Connection,
    noun: Noun[Any],
    *,
    subject_id: int,
    event: str,
    expected_version: int,
    actor: Actor,
    clock: Clock,
    opinion: str | None = None,
    data: Mapping[str, Any] | None = None,
) -> Fired:
    """Fires `event` on the subject, or raises (NotFound, VersionConflict, EventNotAllowed,
    PermissionDenied, ValidationFailed, GuardFailed, or what the noun's side records refuse —
    InsufficientFunds for a case). Does not commit."""
    data = dict(data or {})
    event = checked_event(noun, str(event), data)
    now = clock.now()
    loaded = noun.load(conn, subject_id, today=now.date(), data=data)
    if loaded is None or not noun.visible(actor, loaded):
        raise NotFound(f"{noun.label} {subject_id} 不存在")  # outside the subtree: not revealed
    decision = decide(
        noun,
        loaded,
        event=event,
        expected_version=expected_version,
        actor=actor,
        opinion=opinion,
        data=data,
    )
    return write(conn, noun, loaded, decision, actor=actor, now=now)


def write(
    conn: Connection,
    noun: Noun[Any],
    loaded: Loaded[Any],
    decision: Decision,
    *,
    actor: Actor,
    now: dt.datetime,
) -> Fired:
    """Writes a decided transition: the version-checked row, its side records, the noun's
    counters, the audit entry, the outbox. (Test factories call it directly to put a subject in
    a state.) The row is written before the side records, as the bulk path locks rows before
    funds: two writers never take the same two locks in opposite orders."""
    statement = _write_statement(noun.table)
    records = decision.outcome.records
    link = (
        None
        if records
        else entry_for(noun, loaded, decision, actor=actor, audit=decision.audit, at=now)
    )
    head = {} if link is None else {"audit_seq": link.seq, "audit_head": link.hash}
    params = {
        "b_id": loaded.id,
        "b_expected_version": loaded.version,
        **state_written(loaded, decision),
        "version": loaded.version + 1,
        "updated_at": now,
        **head,
        **decision.outcome.changes,
    }
    # PostgreSQL: the entry goes in with the UPDATE, one statement (a round trip less). When the
    # transition is all its unit of work writes — a request whose transaction waits for its
    # first write (driver.writes_alone), no side records, no messages, nothing the noun fires
    # after it — the counters go in too, and the server commits the statement as it ends.
    entered = link is not None and conn.dialect.name == "postgresql"
    alone = (
        entered
        and writes_alone(conn)
        and not decision.transition.notifies
        and not noun.fires_after(loaded, decision.transition)
    )
    if entered:
        assert link is not None
        result = _update_with_entry(
            conn, noun, loaded, decision.transition, params, link.row, alone=alone
        )
    else:
        result = _update(conn, noun.table, statement, params)
    if result != 1:  # a concurrent transition committed first
        raise VersionConflict(
            f"{noun.label}已被他人修改，请刷新后重试", {"expected_version": loaded.version}
        )
    if link is None:  # the records say what the entry says (which fund): chain it now
        written = noun.write_records(conn, loaded, records)
        audit = {**decision.audit, **written.audit}
        link = entry_for(noun, loaded, decision, actor=actor, audit=audit, at=now)
        _update(
            conn,
            noun.table,
            statement,
            {
                "b_id": loaded.id,
                "b_expected_version": loaded.version + 1,  # ours, held until the commit
                "audit_seq": link.seq,
                "audit_head": link.hash,
                **combined([written]).changes,
            },
        )
    if not entered:
        append_entries(conn, noun.audit_table, [link])
    notify(conn, noun, loaded, decision, link, now)
    # The counters last: their rows (the unit's and every ancestor's, up to the province) are
    # what every transition of the campaign shares, and a row's lock is held from its update to
    # the commit. Taken last, the time others wait on it is that update, the answer and the
    # commit — not also this transition's audit entry and messages.
    if not alone:
        noun.moved(conn, loaded, decision.transition)
    return Fired(
        id=loaded.id,
        event=decision.transition.event,
        from_state=noun.machine.state(loaded.state).name,
        state=decision.transition.dest,
        version=loaded.version + 1,
        audit_seq=link.seq,
        facts=loaded.facts,
    )


def state_written(loaded: Loaded[Any], decision: Decision) -> dict[str, str]:
    """The state column only when the transition changes it: SQLite updates every index on a
    column the SET names, changed or not (four on the case's state), and a step from one
    approval level to the next stays in `approval`."""
    dest = str(decision.transition.dest)
    return {} if dest == str(loaded.state) else {"state": dest}


def entry_for(
    noun: Noun[Any],
    loaded: Loaded[Any],
    decision: Decision,
    *,
    actor: Actor,
    audit: dict[str, Any],
    at: dt.datetime,
    audit_json: str | None = None,
) -> Link:
    return chain_entry(
        subject_column=noun.audit_subject,
        subject_id=loaded.id,
        head_seq=loaded.audit_seq,
        head_hash=loaded.audit_head,
        actor=actor.username,
        actor_unit=actor.unit_code,
        event=str(decision.transition.event),
        from_state=loaded.state,
        to_state=str(decision.transition.dest),
        opinion=decision.opinion,
        data=audit,
        at=at,
        data_json=audit_json,
    )


def notify(
    conn: Connection,
    noun: Noun[Any],
    loaded: Loaded[Any],
    decision: Decision,
    link: Link,
    now: dt.datetime,
) -> None:
    """The transition's declared notifications, into the outbox and inbox of this transaction."""
    for name in decision.transition.notifies:
        key = f"{noun.machine.name}:{loaded.id}:{link.seq}:{name}"
        outgoing, inbox = noun.messages(
            conn, loaded, decision.transition, name, key=key, opinion=decision.opinion, at=now
        )
        enqueue(conn, outgoing, now)
        post_to_inbox(conn, inbox, now)


# Built once per table: the SET clause comes from the parameters' keys (the engine's columns plus
# the effects' changes), so each combination is compiled once and then found in the compiled
# cache, instead of building and cache-keying a new UPDATE on every transition.
_writes: dict[Table, Any] = {}


def _update(conn: Connection, table: Table, statement: Any, params: dict[str, Any]) -> int:
    """The version-checked UPDATE. On SQLite it goes to the DB-API cursor as a prepared SQL
    string per set of columns (the columns' own bind processing applied, in the same
    transaction; SQLAlchemy's cursor events still fire): SQLAlchemy's per-statement work is
    most of a SQLite transition's cost. PostgreSQL: the compiled statement on psycopg's cursor
    (`driver_write`); a transition with an audit entry and no side records goes as
    `_update_with_entry` instead."""
    if conn.dialect.name != "sqlite":
        return driver_write(conn, statement, params)
    keys = tuple(k for k in params if not k.startswith("b_"))
    sql = _sqlite_updates.get((table, keys))
    if sql is None:
        name = conn.dialect.identifier_preparer.format_table(table)
        sets = ", ".join(f"{k} = ?" for k in keys)
        sql = _sqlite_updates[(table, keys)] = (
            f"UPDATE {name} SET {sets} WHERE id = ? AND version = ?"
        )
    (row,) = processed_rows(conn, table, keys, [params])
    return int(
        conn.exec_driver_sql(sql, (*row, params["b_id"], params["b_expected_version"])).rowcount
    )


_sqlite_updates: dict[tuple[Table, tuple[str, ...]], str] = {}


def _update_with_entry(
    conn: Connection,
    noun: Noun[Any],
    loaded: Loaded[Any],
    transition: Transition[Any, Any, Any],
    params: dict[str, Any],
    entry: Mapping[str, Any],
    *,
    alone: bool,
) -> int:
    """PostgreSQL: the version-checked UPDATE and the audit entry it chains as one statement
    (`WITH moved AS (UPDATE … RETURNING) INSERT … SELECT … FROM moved`): one round trip, and
    the entry is written only if the row was — 1 row, or 0 when a concurrent transition
    committed first (and then nothing was written). `alone`: with what the noun's `moved`
    writes (`moved_with`), sent as the unit of work's whole write (`driver_write`)."""
    table, audit_table = noun.table, noun.audit_table
    sets = tuple(k for k in params if not k.startswith("b_"))
    moved = _moved.get((table, sets))
    if moved is None:
        moved = _moved[(table, sets)] = (
            update(table)
            .where(
                table.c.id == bindparam("b_id"),
                table.c.version == bindparam("b_expected_version"),
            )
            .values({k: bindparam(k, type_=table.c[k].type) for k in sets})
            .returning(table.c.id)
            .cte("moved")
        )
    also = noun.moved_with(moved, loaded, transition) if alone else None
    also_cte, also_params = (None, {}) if also is None else also
    keys = tuple(entry)
    key = (moved, audit_table, keys, also_cte)
    statement = _updates_with_entry.get(key)
    if statement is None:
        chained = select(
            *(bindparam(f"e_{k}", type_=audit_table.c[k].type) for k in keys)
        ).select_from(moved)
        statement = insert(audit_table).from_select(list(keys), chained)
        if also_cte is not None:
            statement = statement.add_cte(also_cte)
        _updates_with_entry[key] = statement
    return driver_write(
        conn,
        statement,
        {**params, **{f"e_{k}": value for k, value in entry.items()}, **also_params},
        alone=alone,
    )


# One UPDATE per (table, columns set), one statement per (UPDATE, audit table, entry columns,
# the noun's part): a handful in all.
_moved: dict[tuple[Table, tuple[str, ...]], CTE] = {}
_updates_with_entry: dict[tuple[CTE, Table, tuple[str, ...], CTE | None], Any] = {}


def _write_statement(table: Table) -> Any:
    statement = _writes.get(table)
    if statement is None:
        statement = _writes[table] = update(table).where(
            table.c.id == bindparam("b_id"), table.c.version == bindparam("b_expected_version")
        )
    return statement


def _overrides(
    actor: Actor, transition: Transition[Any, Any, Any], data: Mapping[str, Any]
) -> tuple[frozenset[str], str | None]:
    spec = data.get(OVERRIDE_KEY)
    if spec is None:
        return frozenset(), None
    if not isinstance(spec, dict) or set(spec) - {"guards", "reason"}:
        raise ValidationFailed(
            'override 须为 {guards: [...], reason: "..."}',
            [{"field": "data.override", "code": "invalid", "message": "格式不正确"}],
        )
    if not actor.may(Grant.OVERRIDE_GUARD):
        raise PermissionDenied("只有管理人员可以特批越过办理条件")
    guards = spec.get("guards")
    reason = spec.get("reason")
    if not isinstance(guards, list) or not guards or not all(isinstance(g, str) for g in guards):
        raise ValidationFailed(
            "须列出要特批越过的条件",
            [{"field": "data.override.guards", "code": "missing", "message": "必填项缺失"}],
        )
    not_overridable = [g for g in guards if g not in transition.overridable]
    if not_overridable:
        raise ValidationFailed(
            f"这些条件不可特批：{', '.join(not_overridable)}",
            [
                {
                    "field": "data.override.guards",
                    "code": "not_overridable",
                    "message": f"不可特批：{', '.join(not_overridable)}",
                }
            ],
        )
    if not isinstance(reason, str) or not reason.strip():
        raise ValidationFailed(
            "特批须说明理由",
            [{"field": "data.override.reason", "code": "missing", "message": "特批须说明理由"}],
        )
    return frozenset(guards), reason.strip()
