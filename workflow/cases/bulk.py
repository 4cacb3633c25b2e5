"""One event on many cases (批量办理), inside the caller's transaction, each case on its own.

    apply_bulk(conn, items=[BulkItem(id, version), …], event=…, actor=…, clock=…)
        → [BulkItemResult(id, ok, state, version, error), …]   in the order of `items`

Each item succeeds or is refused exactly as `apply_event` would decide for that case alone, in
the order given (the same id twice: the second sees the version the first wrote, so its stale
version is a conflict). A refused item writes nothing; the successes are written in the
caller's transaction and stored when the caller commits.

The cases go through the engine's set-based path (`workflow.engine.bulk.fire_many`: per chunk
one read, one UPDATE, one counter upsert, one audit INSERT), which gives each item what
`apply_event` would give and writes the same rows, byte for byte (tests/workflow/cases/
test_bulk.py, `python -m bench bulk`). `one_by_one` — every item `apply_event` in a savepoint
of its own — is the reference it is held to, and the way out when something unexpected
happens (below).

Locks (PostgreSQL): one transition takes its rows in the order case → fund → counters. A bulk
that locked as it went would hold the counter (and fund) rows of the cases done while it waits
for a later case's row, which a single request may hold while it waits for those very counters:
a deadlock (test_bulk.py). So the bulk first takes every row it may wait for, in that same
order (`CaseNoun.lock`: the case rows by id, then for a money-moving event their campaigns'
fund rows). SQLite needs none of this: a writer holds the whole database.

Failures that are no refusal (a bug, a row that breaks an assumption): fire_many makes one met
while deciding one item that item's `ItemFailed`; one it meets elsewhere (reading a chunk's
rows, a statement over many items) it raises. apply_bulk runs it in a savepoint: then nothing of
it stays, the failure is logged and the items are done again one by one, which pins the failure
on its item — refused with `ItemFailed` (code `internal_error`) while the others go on, as the
API has always answered.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection

from jinqiu.states import MACHINE, CaseEvent, CaseState
from jinqiu.workflow.cases.engine import CASES, apply_event, pass_publicity_at_once
from jinqiu.workflow.clock import Clock
from jinqiu.workflow.engine.bulk import Item, fire_many
from jinqiu.workflow.errors import DomainError, ItemFailed
from jinqiu.workflow.readonly import readonly
from jinqiu.workflow.roles import Actor

log = logging.getLogger("jinqiu.cases")


BulkItem = Item  # a case's id and the version the caller saw (optimistic lock)


@readonly()
class BulkItemResult:
    id: int
    ok: bool
    state: CaseState | None = None  # the new state when ok
    version: int | None = None  # the new version when ok
    # When not ok: VersionConflict, GuardFailed (.details has the reasons), InsufficientFunds,
    # EventNotAllowed, PermissionDenied, NotFound, ValidationFailed; ItemFailed (unexpected).
    error: DomainError | None = None


def apply_bulk(
    conn: Connection,
    *,
    items: Sequence[BulkItem],
    event: CaseEvent | str,
    actor: Actor,
    clock: Clock,
    opinion: str | None = None,
    data: dict[str, Any] | None = None,
) -> list[BulkItemResult]:
    """One event on many cases inside the caller's transaction; results in the order of `items`.
    Each item succeeds or is refused on its own; a refused item writes nothing."""
    try:
        with conn.begin_nested():  # an unexpected failure takes all of the call back
            done = fire_many(
                conn,
                CASES,
                items=items,
                event=str(event),
                actor=actor,
                clock=clock,
                opinion=opinion,
                data=data,
            )
            if str(event) == CaseEvent.VERIFY:  # no publicity asked: straight on
                moved = pass_publicity_at_once(conn, [r.fired for r in done if r.fired], clock)
                done = [dataclasses.replace(r, fired=moved.get(r.id, r.fired)) for r in done]
    except Exception:  # refusals come back as results: this is no item's refusal
        log.exception("bulk event %s on %d cases failed; going case by case", event, len(items))
        return one_by_one(
            conn, items=items, event=event, actor=actor, clock=clock, opinion=opinion, data=data
        )
    return [
        BulkItemResult(
            id=r.id,
            ok=r.ok,
            state=None if r.fired is None else MACHINE.state(r.fired.state).name,
            version=None if r.fired is None else r.fired.version,
            error=r.error,
        )
        for r in done
    ]


def one_by_one(
    conn: Connection,
    *,
    items: Sequence[BulkItem],
    event: CaseEvent | str,
    actor: Actor,
    clock: Clock,
    opinion: str | None = None,
    data: dict[str, Any] | None = None,
) -> list[BulkItemResult]:
    """The reference: each item `apply_event` in a savepoint of its own."""
    if conn.dialect.name == "postgresql":  # SQLite: the writer holds the whole database
        CASES.lock(conn, sorted({item.id for item in items}), str(event))
    results: list[BulkItemResult] = []
    for item in items:
        try:
            with conn.begin_nested():  # a refused item rolls back to here: it leaves nothing
                done = apply_event(
                    conn,
                    case_id=item.id,
                    event=event,
                    expected_version=item.version,
                    actor=actor,
                    clock=clock,
                    opinion=opinion,
                    data=data,
                )
        except DomainError as error:
            results.append(BulkItemResult(id=item.id, ok=False, error=error))
        except Exception:  # one broken item must not hide what happened to the others
            log.exception("bulk event %s on case %s failed", event, item.id)
            results.append(BulkItemResult(id=item.id, ok=False, error=ItemFailed()))
        else:
            results.append(
                BulkItemResult(
                    id=item.id, ok=True, state=CaseState(done.state), version=done.version
                )
            )
    return results
