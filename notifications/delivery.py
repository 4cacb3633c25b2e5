"""The outbox worker: claims a batch of due messages, sends them, records the outcomes.

A batch is claimed in one short transaction (a lease: `claimed_by`, `claimed_until`), sent with
nothing held in the database — its e-mails over one SMTP connection (channels.SmtpSession),
webhooks one by one, each checked again — and its outcomes recorded in one more: the sent ones
in one statement, each failure with its own backoff, the ones not tried given back. Retries
back off exponentially; after the last one the message is `failed`.

At least once: a worker that dies between sending and recording loses the outcomes of its
batches in hand (at most `batch` messages per connection); their lease runs out and they are sent again, with the same
idempotency key (e-mail Message-ID, webhook Idempotency-Key header) for the receiver to
recognise. A batch stops starting new messages `lease / 4` before its lease runs out and gives
the rest back, so no message is sent on a lease another worker may already have taken.

The caller gives the transactions (`Transaction`, e.g. workflow.db.transaction bound to an
engine): how a write starts (BEGIN IMMEDIATE on SQLite) is the database layer's, not this
package's, which knows nothing of the domain above it."""

from __future__ import annotations

import datetime as dt
import os
import socket
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection

from jinqiu.notifications.channels import BatchSender, DeliveryError, DeliveryRefused, Sender
from jinqiu.notifications.outbox import claim_due, mark_failed, mark_sent, release

Now = Callable[[], dt.datetime]
# One short write transaction: commits when the block ends, rolls back on any error.
Transaction = Callable[[], AbstractContextManager[Connection]]


@dataclass
class DeliveryReport:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass
class _Outcomes:
    """What happened to a claimed batch."""

    sent: list[int] = field(default_factory=list)
    failed: list[tuple[Any, DeliveryError]] = field(default_factory=list)
    untried: list[int] = field(default_factory=list)
    in_hand: int | None = None  # the message an unexpected error interrupted: outcome unknown


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
    worker: str | None = None,
    connections: int = 1,
) -> DeliveryReport:
    """Delivers due messages, `batch` at a time, until none is due (or `max_batches` each).
    `worker` names the lease holder (default: host and process id). `connections` > 1: that
    many threads claim and send batches side by side, each its own lease holder
    (`worker/1`, `worker/2`, …) on its own SMTP connection — while one waits for the mail
    server's answer, another writes; the leases keep them apart as they keep processes apart."""
    worker = worker or worker_name()
    if connections <= 1:
        return _deliver(transaction, now, senders, batch, lease, max_batches, worker)
    with ThreadPoolExecutor(max_workers=connections, thread_name_prefix="deliver") as pool:
        reports = list(
            pool.map(
                lambda i: _deliver(
                    transaction, now, senders, batch, lease, max_batches, f"{worker}/{i}"
                ),
                range(1, connections + 1),
            )
        )
    return DeliveryReport(
        sent=sum(r.sent for r in reports),
        retried=sum(r.retried for r in reports),
        failed=sum(r.failed for r in reports),
        errors=[e for r in reports for e in r.errors],
    )


def _deliver(
    transaction: Transaction,
    now: Now,
    senders: Mapping[str, Sender],
    batch: int,
    lease: dt.timedelta,
    max_batches: int,
    worker: str,
) -> DeliveryReport:
    """One lease holder's loop: claim a batch, send it, record it, until none is due."""
    report = DeliveryReport()
    for _ in range(max_batches):
        with transaction() as conn:
            claimed_at = now()
            claimed = claim_due(conn, worker=worker, now=claimed_at, lease=lease, limit=batch)
        if not claimed:
            break
        outcomes = _Outcomes()
        try:
            _send_batch(claimed, senders, outcomes, now, stop_at=claimed_at + lease * 3 / 4)
        finally:  # an unexpected error still records what was sent before it, then propagates
            with transaction() as conn:
                _record(conn, outcomes, worker, now(), report)
        if outcomes.untried and not outcomes.sent and not outcomes.failed:
            break  # nothing could start before the lease's margin: a clock or lease misfit
    return report


def _send_batch(
    claimed: Sequence[Any],
    senders: Mapping[str, Sender],
    outcomes: _Outcomes,
    now: Now,
    *,
    stop_at: dt.datetime,
) -> None:
    """Channel by channel (one session each: the e-mails share one SMTP connection), in the
    order claimed. A message is begun only before `stop_at`; the rest are left untried."""
    by_channel: dict[str, list[Any]] = {}
    for message in claimed:
        by_channel.setdefault(message.channel, []).append(message)
    pending = [m.id for m in claimed]
    done: set[int] = set()
    try:
        for channel, messages in by_channel.items():
            sender = senders.get(channel)
            with ExitStack() as stack:
                session = (
                    stack.enter_context(sender.session())
                    if isinstance(sender, BatchSender)
                    else sender
                )
                for message in messages:
                    if now() >= stop_at:
                        return
                    outcomes.in_hand = message.id
                    try:
                        if session is None:
                            raise DeliveryError(f"no sender configured for channel {channel}")
                        session.send(message)
                    except DeliveryError as exc:
                        outcomes.failed.append((message, exc))
                    else:
                        outcomes.sent.append(message.id)
                    outcomes.in_hand = None
                    done.add(message.id)
    finally:
        outcomes.untried = [i for i in pending if i not in done and i != outcomes.in_hand]


def _record(
    conn: Connection, outcomes: _Outcomes, worker: str, now: dt.datetime, report: DeliveryReport
) -> None:
    """One transaction: the sent in one statement, each failure with its backoff, the untried
    given back. A message an unexpected error interrupted keeps its lease: it may have gone."""
    mark_sent(conn, outcomes.sent, worker=worker, now=now)
    report.sent += len(outcomes.sent)
    for message, exc in outcomes.failed:
        final = mark_failed(
            conn,
            message,
            worker=worker,
            now=now,
            error=str(exc),
            permanent=isinstance(exc, DeliveryRefused),
        )
        report.failed += int(final)
        report.retried += int(not final)
        report.errors.append(str(exc))
    release(conn, outcomes.untried, worker=worker)
