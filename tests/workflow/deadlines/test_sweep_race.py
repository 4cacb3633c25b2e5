"""Two sweeps racing on PostgreSQL, in threads released together, over chunks big enough for
the outbox's COPY path: every reminder is claimed by one of them, its e-mail and inbox item
written once — and the tables hold what one sweep alone writes, byte for byte."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import pytest
from sqlalchemy import Engine, Text, cast, delete, select

from jinqiu.notifications.models import InboxMessage, OutboxMessage
from jinqiu.notifications.outbox import BULK_FROM
from jinqiu.workflow.clock import ManualClock
from jinqiu.workflow.db import transaction
from jinqiu.workflow.deadlines.models import ReminderLedger
from jinqiu.workflow.deadlines.sweep import SweepReport, sweep
from tests.workflow.deadlines.test_exactly_once import seed

pytestmark = pytest.mark.postgres

ledger_t = ReminderLedger.__table__  # type: ignore[attr-defined]
outbox_t = OutboxMessage.__table__  # type: ignore[attr-defined]
inbox_t = InboxMessage.__table__  # type: ignore[attr-defined]
UNITS = 420
CHUNK = 2 * BULK_FROM  # reminders per transaction: each chunk's messages go by COPY
T_MINUS_3 = dt.datetime(2024, 7, 26, 0, 0, tzinfo=dt.UTC)


def tables(pg: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Ledger, outbox and inbox by key, without ids (JSON as its stored text)."""
    out = {}
    with pg.connect() as conn:
        for table, key in (
            (ledger_t, (ledger_t.c.unit_id, ledger_t.c.kind, ledger_t.c.occurrence)),
            (outbox_t, (outbox_t.c.idempotency_key,)),
            (inbox_t, (inbox_t.c.idempotency_key,)),
        ):
            columns = [
                cast(c, Text()) if c.name == "payload" else c for c in table.c if c.name != "id"
            ]
            out[table.name] = [tuple(r) for r in conn.execute(select(*columns).order_by(*key))]
    return out


def test_two_sweeps_racing_write_every_reminder_once(pg: Engine) -> None:
    codes = seed(pg, UNITS)
    barrier = threading.Barrier(2)
    reports: list[SweepReport | BaseException] = []

    def one() -> None:
        barrier.wait()
        try:
            reports.append(
                sweep(pg, ManualClock(T_MINUS_3), base_url="https://x.example.org", chunk=CHUNK)
            )
        except BaseException as exc:  # reported below, not lost in the thread
            reports.append(exc)

    threads = [threading.Thread(target=one) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert all(isinstance(r, SweepReport) for r in reports), reports
    done = [r for r in reports if isinstance(r, SweepReport)]
    assert len(done) == 2 and not any(r.failures for r in done)
    # Each reminder claimed by exactly one sweep; the other saw it already sent.
    sent = [(r.unit_code, r.kind, r.occurrence) for rep in done for r in rep.reminders]
    assert len(sent) == len(set(sent)) == len(codes)
    assert sum(r.already_sent for r in done) == len(codes)
    raced = tables(pg)
    assert len(raced["reminder_ledger"]) == len(codes)
    keys = [r[0] for r in raced["outbox_message"]]
    assert len(keys) == len(set(keys)) == len(codes)  # every unit has an e-mail address
    assert len(raced["inbox_message"]) == len(codes)

    with transaction(pg) as conn:  # the same day once more, one sweep alone on empty tables
        for table in (inbox_t, outbox_t, ledger_t):
            conn.execute(delete(table))
    alone = sweep(pg, ManualClock(T_MINUS_3), base_url="https://x.example.org", chunk=CHUNK)
    assert len(alone.reminders) == len(codes)
    assert tables(pg) == raced
