"""The outbox worker: claims due messages, sends them, records the outcome.

Each claim and each outcome is its own short transaction, so a crash loses at most the
outcome of the message in flight: its lease runs out and it is sent again with the same
idempotency key (e-mail Message-ID, webhook Idempotency-Key header) for the receiver to
recognise. Retries back off exponentially; after the last one the message is `failed`.

The caller gives the transactions (`Transaction`, e.g. workflow.db.transaction bound to an
engine): how a write starts (BEGIN IMMEDIATE on SQLite) is the database layer's, not this
package's, which knows nothing of the domain above it."""

from __future__ import annotations

import datetime as dt
import os
import socket
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

from sqlalchemy import Connection

from jinqiu.notifications.channels import DeliveryError, DeliveryRefused, Sender
from jinqiu.notifications.outbox import claim_due, mark_failed, mark_sent

Now = Callable[[], dt.datetime]
# One short write transaction: commits when the block ends, rolls back on any error.
Transaction = Callable[[], AbstractContextManager[Connection]]


@dataclass
class DeliveryReport:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def deliver_due(
    transaction: Transaction,
    now: Now,
    senders: Mapping[str, Sender],
    *,
    batch: int = 100,
    lease: dt.timedelta = dt.timedelta(minutes=2),
    max_batches: int = 1000,
) -> DeliveryReport:
    report = DeliveryReport()
    worker = worker_name()
    for _ in range(max_batches):
        with transaction() as conn:
            claimed = claim_due(conn, worker=worker, now=now(), lease=lease, limit=batch)
        if not claimed:
            break
        for message in claimed:
            sender = senders.get(message.channel)
            try:
                if sender is None:
                    raise DeliveryError(f"no sender configured for channel {message.channel}")
                sender.send(message)
            except DeliveryError as exc:
                with transaction() as conn:
                    final = mark_failed(
                        conn,
                        message,
                        worker=worker,
                        now=now(),
                        error=str(exc),
                        permanent=isinstance(exc, DeliveryRefused),
                    )
                report.failed += int(final)
                report.retried += int(not final)
                report.errors.append(str(exc))
                continue
            with transaction() as conn:
                mark_sent(conn, message.id, worker=worker, now=now())
            report.sent += 1
    return report
