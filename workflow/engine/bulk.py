"""One event on many subjects of a noun, set-based, inside the caller's transaction.

Per chunk of subjects, a few statements instead of a transaction each:

    one read of every subject's facts (on PostgreSQL every subject's row — and a money-moving
    noun's fund rows — were locked before the first chunk, in the single path's lock order, so
    no version moves under us; SQLite's writer already holds the database) → per item in Python, the single path's own
    `decide` (versions, selection, roles, opinion, overrides, every guard, effects) → the noun
    plans its side records for all items at once (a fund's free money read once, locked, and
    shared out in item order: exact, never overdrawn) → each item's audit entry chained on its
    head → one version-checked multi-row UPDATE from a VALUES list that RETURNs the rows it won →
    the side records of the winners → counters in one upsert → every audit entry in one insert →
    the declared notifications.

Each item's result is what the single path would have given (a won transition with the same
audit entry bytes, or the same typed refusal); a refused item writes nothing. A subject
named again after an item that moved it is refused as a version conflict (after an item that
was refused, it is decided on its own). An unexpected error met while deciding one item is that item's `ItemFailed` (logged); one in a statement over many
items propagates, and the caller's transaction must roll back.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Table

from jinqiu.workflow.audit.chain import Link, append_entries
from jinqiu.workflow.clock import Clock
from jinqiu.workflow.driver import canonical_json, processed_rows, unnest
from jinqiu.workflow.engine.core import (
    Decision,
    Fired,
    Route,
    checked_event,
    combined,
    decide,
    entry_for,
    notify,
)
from jinqiu.workflow.engine.noun import Loaded, Noun
from jinqiu.workflow.errors import DomainError, ItemFailed, NotFound, VersionConflict
from jinqiu.workflow.readonly import readonly
from jinqiu.workflow.roles import Actor

log = logging.getLogger("jinqiu.engine")
CHUNK = 1000  # subjects per statement: ~10 parameters each, far below both drivers' limits


@readonly()
class Item:
    id: int
    version: int  # the version the caller saw


@readonly()
class ItemResult:
    id: int
    fired: Fired | None = None
    error: DomainError | None = None

    @property
    def ok(self) -> bool:
        return self.fired is not None


def fire_many(
    conn: Connection,
    noun: Noun[Any],
    *,
    items: Sequence[Item],
    event: str,
    actor: Actor,
    clock: Clock,
    opinion: str | None = None,
    data: Mapping[str, Any] | None = None,
    chunk: int = CHUNK,
) -> list[ItemResult]:
    """Results in the order of `items`. Raises only for what is no item's fault (a database
    error): the caller's transaction then holds nothing of the call."""
    data = dict(data or {})
    try:
        event = checked_event(noun, str(event), data)
    except DomainError as refused:  # the same refusal for every item, as the single path gives
        return [ItemResult(item.id, error=refused) for item in items]
    now = clock.now()
    if conn.dialect.name == "postgresql":  # SQLite: the writer holds the whole database already
        noun.lock(conn, sorted({item.id for item in items}), event)
    results: list[ItemResult] = []
    seen: set[int] = set()
    for start in range(0, len(items), chunk):
        part = items[start : start + chunk]
        results.extend(_fire_chunk(conn, noun, part, seen, event, actor, now, opinion, data))
    return results


def _fire_chunk(
    conn: Connection,
    noun: Noun[Any],
    items: Sequence[Item],
    seen: set[int],
    event: str,
    actor: Actor,
    now: dt.datetime,
    opinion: str | None,
    data: dict[str, Any],
) -> list[ItemResult]:
    loaded = noun.load_many(
        conn,
        sorted({i.id for i in items}),
        today=now.date(),
        data=data,
        lock=False,  # held since fire_many began
    )
    outcome: dict[int, ItemResult] = {}  # by position in `items`
    routes: dict[Hashable, Route] = {}  # select and refusal, once per route (one actor, event)
    decided: list[tuple[int, Loaded[Any], Decision]] = []
    for position, item in enumerate(items):
        subject = loaded.get(item.id)
        try:
            if subject is None or not noun.visible(actor, subject):
                raise NotFound(f"{noun.label} {item.id} 不存在")
            if item.id in seen:  # moved by an earlier item of this call
                raise VersionConflict(
                    f"{noun.label}已被他人修改，请刷新后重试",
                    {"expected_version": item.version},
                )
            decision = decide(
                noun,
                subject,
                event=event,
                expected_version=item.version,
                actor=actor,
                opinion=opinion,
                data=data,
                routes=routes,
            )
        except DomainError as refused:
            outcome[position] = ItemResult(item.id, error=refused)
            continue
        except Exception:  # a bug met by one item's facts must not hide the others' results
            log.exception("bulk %s on %s %s failed", event, noun.machine.name, item.id)
            outcome[position] = ItemResult(item.id, error=ItemFailed(noun.label))
            continue
        seen.add(item.id)  # a refused item wrote nothing: a later one may still move the subject
        decided.append((position, subject, decision))

    plan = noun.plan_records(conn, [(s, d.outcome.records) for _, s, d in decided])
    rows: list[dict[str, Any]] = []
    links: dict[int, Link] = {}
    going: list[tuple[int, Loaded[Any], Decision, int]] = []  # (position, subject, decision, k)
    same_audit: dict[str, Any] | None = None
    same_json = ""
    for k, (position, subject, decision) in enumerate(decided):
        planned = plan.outcomes[k]
        if isinstance(planned, DomainError):
            outcome[position] = ItemResult(subject.id, error=planned)
            continue
        changes = decision.outcome.changes
        audit = decision.audit
        if planned.changes or planned.audit:  # the money a record moved (most events: none)
            changes = {**changes, **combined([planned]).changes}
            audit = {**audit, **planned.audit}
        if audit == same_audit:  # one object for equal entries: encoded, hashed and bound once
            audit = same_audit
        else:
            same_audit, same_json = audit, canonical_json(audit)
        link = entry_for(
            noun, subject, decision, actor=actor, audit=audit, at=now, audit_json=same_json
        )
        links[subject.id] = link
        row = {
            "id": subject.id,
            "expected": subject.version,
            "version": subject.version + 1,
            "audit_seq": link.seq,
            "audit_head": link.hash,
            "updated_at": now,
        }
        if decision.transition.dest != subject.state:  # as `state_written` says
            row["state"] = decision.transition.dest
        row.update(changes)
        rows.append(row)
        going.append((position, subject, decision, k))

    won = update_versioned(conn, noun.table, rows)
    plan.write(conn, [k for _, s, _, k in going if s.id in won])
    winners = [(p, s, d) for p, s, d, _ in going if s.id in won]
    noun.moved_many(conn, [(s, d.transition) for _, s, d in winners])
    append_entries(conn, noun.audit_table, [links[s.id] for _, s, _ in winners])
    for position, subject, decision in winners:
        link = links[subject.id]
        if decision.transition.notifies:
            notify(conn, noun, subject, decision, link, now)
        outcome[position] = ItemResult(
            subject.id,
            Fired(
                subject.id,
                decision.transition.event,
                noun.machine.state(subject.state).name,
                decision.transition.dest,
                subject.version + 1,
                link.seq,
                subject.facts,
            ),
        )
    for position, subject, _decision, _k in going:
        if subject.id not in won:  # a concurrent writer got there between our read and write
            outcome[position] = ItemResult(
                subject.id,
                error=VersionConflict(
                    f"{noun.label}已被他人修改，请刷新后重试",
                    {"expected_version": subject.version},
                ),
            )
    return [outcome[p] for p in range(len(items))]


def update_versioned(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> set[int]:
    """One `UPDATE … FROM (VALUES …) WHERE id = v.id AND version = v.expected RETURNING id` (on
    PostgreSQL FROM unnest of one array per column) per set of columns written (items whose effects change the same columns go together); returns
    the ids whose row was at the expected version, i.e. the rows written."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(row), []).append(row)
    won: set[int] = set()
    for keys, group in groups.items():
        won.update(_update_group(conn, table, keys, group))
    return won


def _update_group(
    conn: Connection, table: Table, keys: tuple[str, ...], rows: list[dict[str, Any]]
) -> list[int]:
    preparer = conn.dialect.identifier_preparer
    name = preparer.format_table(table)
    written = [k for k in keys if k not in {"id", "expected"}]
    keys = ("id", "expected", *written)
    columns = ", ".join(preparer.quote(k) for k in keys)
    sets = ", ".join(f"{preparer.quote(k)} = v.{preparer.quote(k)}" for k in written)
    if conn.dialect.name == "postgresql":  # one typed array per column
        source, arrays = unnest(conn, table, keys, rows)
        sql = (
            f"UPDATE {name} SET {sets} FROM {source} AS v ({columns}) "
            f"WHERE {name}.id = v.id AND {name}.version = v.expected RETURNING {name}.id"
        )
        return [r[0] for r in conn.exec_driver_sql(sql, arrays)]
    # SQLite: a VALUES list (SQLite types by value, so no casts are needed).
    params = [value for row in processed_rows(conn, table, keys, rows) for value in row]
    one_row = "(" + ", ".join(["?"] * len(keys)) + ")"
    sql = (
        f"WITH v ({columns}) AS (VALUES {', '.join([one_row] * len(rows))}) "
        f"UPDATE {name} SET {sets} FROM v "
        f"WHERE {name}.id = v.id AND {name}.version = v.expected "
        f"RETURNING {name}.id"
    )
    return [r[0] for r in conn.exec_driver_sql(sql, tuple(params))]
