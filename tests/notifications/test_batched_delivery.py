"""Delivery per claimed batch, against a REAL SMTP server (aiosmtpd on loopback, started here).

A batch's e-mails go over one SMTP connection; their outcomes are recorded in one transaction.
What must still hold: a refused recipient fails only its own message; a connection dropped
mid-batch is opened again and the rest still go; a crash between sending and recording sends
the batch again, with the same Message-IDs, once the lease has run out; a batch stops sending
before its lease runs out; two workers never send the same message twice; a worker's connections
side by side (threads) send each message once."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import Connection, Engine, select

from jinqiu.notifications.channels import SmtpSender
from jinqiu.notifications.delivery import deliver_due
from jinqiu.notifications.models import Channel
from jinqiu.notifications.outbox import BACKOFF_BASE, Outgoing, enqueue, message_id
from jinqiu.workflow.clock import ManualClock
from jinqiu.workflow.config import Settings
from jinqiu.workflow.db import transaction
from jinqiu.workflow.tick import tick
from tests.notifications.test_smtp_delivery import (
    SENDER,
    Inbox,
    Received,
    SmtpServer,
    outbox,
    outbox_t,
)
from tests.notifications.test_smtp_delivery import smtp as smtp  # the fixture

LEASE = dt.timedelta(minutes=2)


def enqueue_mails(
    db: Engine, clock: ManualClock, n: int, *, to: dict[int, str] | None = None
) -> list[str]:
    """`n` e-mails due now, keyed test:0 … test:n-1; `to` gives some of them another address."""
    to = to or {}
    messages = [
        Outgoing(
            f"test:{i}",
            Channel.EMAIL.value,
            to.get(i, f"unit{i}@example.org"),
            f"【还剩3个工作日】提醒 {i}",
            f"贵单位尚未完成（{i}）。\n" * (1 + i % 5),
            f"<p>贵单位尚未完成（{i}）。</p>" * (1 + i % 5),
        )
        for i in range(n)
    ]
    with transaction(db) as conn:
        enqueue(conn, messages, clock.now())
    return [m.idempotency_key for m in messages]


def smtp_to(server: SmtpServer) -> dict[str, Any]:
    return {Channel.EMAIL.value: SmtpSender("127.0.0.1", server.port, SENDER, timeout=5)}


def assert_stable_ids(received: list[Received]) -> None:
    for mail in received:
        assert mail.message["Message-ID"] == message_id(mail.key)


class ScriptedInbox(Inbox):
    """An SMTP server that refuses some recipients, or drops the connection at the `drop_at`-th
    message (counted from 1) — at its MAIL command, or once its DATA has been received but
    before answering it."""

    def __init__(
        self,
        refuse: frozenset[str] = frozenset(),
        drop_at: int | None = None,
        drop_when: str = "mail",
        gone_for_good: bool = False,
    ) -> None:
        super().__init__()
        self.refuse, self.drop_at, self.drop_when = refuse, drop_at, drop_when
        self.gone_for_good = gone_for_good  # the drop also stops the server listening
        self.listener: Any = None  # the asyncio server, given by `running`
        self.mails = 0

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        self.mails += 1
        if self.drop_when == "mail" and self.mails == self.drop_at:
            if self.gone_for_good:
                self.listener.close()  # new connections are refused from now on
            server.transport.close()
            return "421 4.3.0 going away"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if address in self.refuse:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.keep(session, envelope)
        if self.drop_when == "data" and self.mails == self.drop_at:
            server.transport.close()  # it arrived, but the client never hears so
            return "421 4.3.0 going away"
        return "250 Message accepted for delivery"


@contextmanager
def running(inbox: Inbox) -> Iterator[SmtpServer]:
    server = SmtpServer(inbox=inbox).start()
    if isinstance(inbox, ScriptedInbox):
        inbox.listener = server.listener
    try:
        yield server
    finally:
        server.stop()


class TestOneConnectionPerBatch:
    def test_each_batch_goes_over_one_connection(
        self, db: Engine, clock: ManualClock, smtp: SmtpServer
    ) -> None:
        keys = enqueue_mails(db, clock, 7)
        report = deliver_due(partial(transaction, db), clock.now, smtp_to(smtp), batch=3)
        assert (report.sent, report.retried, report.failed) == (7, 0, 0)
        received = smtp.received
        assert sorted(r.key for r in received) == sorted(keys)
        assert smtp.inbox.connections == 3  # batches of 3, 3 and 1
        assert sorted(Counter(r.peer for r in received).values()) == [1, 3, 3]
        assert_stable_ids(received)
        rows = outbox(db)
        assert {(r.status, r.attempts, r.claimed_until) for r in rows} == {("sent", 1, None)}

    def test_a_single_message_still_goes_on_its_own(
        self, db: Engine, clock: ManualClock, smtp: SmtpServer
    ) -> None:
        [key] = enqueue_mails(db, clock, 1)
        assert deliver_due(partial(transaction, db), clock.now, smtp_to(smtp)).sent == 1
        [mail] = smtp.received
        assert mail.key == key and smtp.inbox.connections == 1


class TestRefusedRecipient:
    def test_a_refused_recipient_fails_only_its_own_message(
        self, db: Engine, clock: ManualClock
    ) -> None:
        keys = enqueue_mails(db, clock, 5, to={2: "nobody@example.org"})
        with running(ScriptedInbox(refuse=frozenset({"nobody@example.org"}))) as server:
            report = deliver_due(partial(transaction, db), clock.now, smtp_to(server))
            received = server.received
            assert server.inbox.connections == 1  # the refusal did not cost the connection
        assert (report.sent, report.retried, report.failed) == (4, 1, 0)
        assert "550" in report.errors[0]
        assert sorted(r.key for r in received) == sorted(k for k in keys if k != "test:2")
        rows = {r.idempotency_key: r for r in outbox(db)}
        refused = rows.pop("test:2")
        assert (refused.status, refused.attempts, refused.claimed_until) == ("pending", 1, None)
        assert refused.next_attempt_at == clock.now() + BACKOFF_BASE
        assert refused.last_error is not None and "550" in refused.last_error
        assert {(r.status, r.attempts) for r in rows.values()} == {("sent", 1)}


class TestDroppedConnection:
    def test_dropped_before_a_message_the_rest_go_over_a_new_connection(
        self, db: Engine, clock: ManualClock
    ) -> None:
        keys = enqueue_mails(db, clock, 6)
        with running(ScriptedInbox(drop_at=3, drop_when="mail")) as server:
            report = deliver_due(partial(transaction, db), clock.now, smtp_to(server))
            received = server.received
            assert server.inbox.connections == 2
        assert (report.sent, report.retried, report.failed) == (6, 0, 0)
        assert Counter(r.key for r in received) == Counter(keys)  # each exactly once
        assert_stable_ids(received)
        assert {(r.status, r.attempts) for r in outbox(db)} == {("sent", 1)}

    def test_dropped_after_a_message_arrived_it_is_sent_again_with_its_message_id(
        self, db: Engine, clock: ManualClock
    ) -> None:
        keys = enqueue_mails(db, clock, 6)
        with running(ScriptedInbox(drop_at=3, drop_when="data")) as server:
            report = deliver_due(partial(transaction, db), clock.now, smtp_to(server))
            received = server.received
            assert server.inbox.connections == 2
        assert (report.sent, report.retried, report.failed) == (6, 0, 0)
        # At least once: the third message arrived, the client never heard so, and sent it
        # again over the new connection with the same Message-ID; every other one once.
        assert Counter(r.key for r in received) == Counter([*keys, keys[2]])
        assert_stable_ids(received)
        assert {(r.status, r.attempts) for r in outbox(db)} == {("sent", 1)}

    def test_a_server_gone_for_good_mid_batch_leaves_the_rest_to_their_retry(
        self, db: Engine, clock: ManualClock
    ) -> None:
        keys = enqueue_mails(db, clock, 5)
        inbox = ScriptedInbox(drop_at=3, drop_when="mail", gone_for_good=True)
        with running(inbox) as server:
            report = deliver_due(partial(transaction, db), clock.now, smtp_to(server))
            received = server.received
        assert (report.sent, report.retried, report.failed) == (2, 3, 0)
        assert sorted(r.key for r in received) == keys[:2]
        rows = {r.idempotency_key: r for r in outbox(db)}
        for key in keys[2:]:
            row = rows[key]
            assert (row.status, row.attempts, row.claimed_until) == ("pending", 1, None)
            assert row.next_attempt_at == clock.now() + BACKOFF_BASE


class Crash(BaseException):
    """The process dies: here, just before it records what it sent."""


def crashing_at(db: Engine, call: int) -> Any:
    """`transaction` bound to `db`, except that its `call`-th use never begins: the worker
    dies between sending a batch and recording it."""
    calls = itertools.count(1)

    @contextmanager
    def begin() -> Iterator[Connection]:
        if next(calls) == call:
            raise Crash
        with transaction(db) as conn:
            yield conn

    return begin


class TestCrashBetweenSendingAndRecording:
    def test_the_batch_is_sent_again_after_the_lease_with_the_same_message_ids(
        self, db: Engine, clock: ManualClock, smtp: SmtpServer
    ) -> None:
        keys = enqueue_mails(db, clock, 4)
        with pytest.raises(Crash):  # claim (1st transaction), send, then die before the 2nd
            deliver_due(crashing_at(db, 2), clock.now, smtp_to(smtp), lease=LEASE)
        assert sorted(r.key for r in smtp.received) == keys
        assert {(r.status, r.attempts) for r in outbox(db)} == {("pending", 0)}
        # Within the lease nobody else may take them; once it has run out they go again.
        assert deliver_due(partial(transaction, db), clock.now, smtp_to(smtp)).sent == 0
        clock.advance(LEASE + dt.timedelta(seconds=1))
        assert deliver_due(partial(transaction, db), clock.now, smtp_to(smtp)).sent == 4
        received = smtp.received
        assert Counter(r.key for r in received) == Counter(keys * 2)
        assert_stable_ids(received)
        first, again = received[:4], received[4:]
        for a, b in zip(
            sorted(first, key=lambda r: r.key), sorted(again, key=lambda r: r.key), strict=True
        ):
            assert a.message["Message-ID"] == b.message["Message-ID"]
            assert a.raw == b.raw  # the same bytes: the multipart boundary comes from the key
        assert {(r.status, r.attempts) for r in outbox(db)} == {("sent", 1)}
        clock.advance(dt.timedelta(hours=1))
        assert deliver_due(partial(transaction, db), clock.now, smtp_to(smtp)).sent == 0
        assert len(smtp.received) == 8


class SlowInbox(Inbox):
    """Each message takes the server `takes` of the test's clock. On arrival, it notes whether
    the sending worker's lease on that message still held."""

    def __init__(self, db: Engine, clock: ManualClock, takes: dt.timedelta) -> None:
        super().__init__()
        self.db, self.clock, self.takes = db, clock, takes
        self.outside_lease: list[str] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        mail = self.keep(session, envelope)
        with self.db.connect() as conn:
            until = conn.execute(
                select(outbox_t.c.claimed_until).where(outbox_t.c.idempotency_key == mail.key)
            ).scalar_one()
        if until is None or until <= self.clock.now():
            self.outside_lease.append(mail.key)
        self.clock.advance(self.takes)
        return "250 Message accepted for delivery"


class TestLease:
    def test_a_slow_batch_stops_before_its_lease_runs_out_and_the_rest_go_later(
        self, db: Engine, clock: ManualClock
    ) -> None:
        keys = enqueue_mails(db, clock, 10)
        inbox = SlowInbox(db, clock, takes=dt.timedelta(seconds=20))
        with running(inbox) as server:
            report = deliver_due(partial(transaction, db), clock.now, smtp_to(server), lease=LEASE)
            received = server.received
        assert report.sent == 10
        assert Counter(r.key for r in received) == Counter(keys)
        assert inbox.outside_lease == []  # nothing was sent on a lease that had run out
        assert server.inbox.connections >= 2  # the batch stopped, and a new claim went on
        assert {(r.status, r.attempts) for r in outbox(db)} == {("sent", 1)}


class TestTwoWorkers:
    def test_two_workers_side_by_side_send_each_message_once(
        self, db: Engine, clock: ManualClock, smtp: SmtpServer
    ) -> None:
        keys = enqueue_mails(db, clock, 240)
        start = threading.Barrier(2)
        reports: dict[str, Any] = {}
        errors: list[BaseException] = []

        def work(name: str) -> None:
            try:
                start.wait()
                reports[name] = deliver_due(
                    partial(transaction, db), clock.now, smtp_to(smtp), batch=20, worker=name
                )
            except BaseException as exc:  # shown by the assertion below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(f"worker-{i}",)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert sum(r.sent for r in reports.values()) == 240
        assert Counter(r.key for r in smtp.received) == Counter(keys)  # none twice, none lost
        assert_stable_ids(smtp.received)
        rows = outbox(db)
        assert {(r.status, r.attempts) for r in rows} == {("sent", 1)}
        by_worker = Counter(r.claimed_by for r in rows)
        assert set(by_worker) <= {"worker-0", "worker-1"}
        for name, report in reports.items():
            assert report.sent == by_worker[name]  # each recorded only what it sent


class OverlapInbox(Inbox):
    """Takes `delay` seconds over each DATA, and counts how many DATAs it was taking at once."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay, self.in_data, self.most_in_data = delay, 0, 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.in_data += 1  # the server's one event loop: no lock needed
        self.most_in_data = max(self.most_in_data, self.in_data)
        try:
            await asyncio.sleep(self.delay)
            self.keep(session, envelope)
        finally:
            self.in_data -= 1
        return "250 Message accepted for delivery"


class TestConnectionsSideBySide:
    @pytest.mark.parametrize("connections", [1, 2])
    def test_each_message_goes_once_and_connections_overlap_only_when_asked(
        self, db: Engine, clock: ManualClock, connections: int
    ) -> None:
        keys = enqueue_mails(db, clock, 24)
        with running(OverlapInbox(delay=0.02)) as server:
            report = deliver_due(
                partial(transaction, db),
                clock.now,
                smtp_to(server),
                batch=4,
                worker="w",
                connections=connections,
            )
            inbox = server.inbox
            assert isinstance(inbox, OverlapInbox)
            assert (report.sent, report.retried, report.failed) == (24, 0, 0)
            assert Counter(r.key for r in server.received) == Counter(keys)  # each once
            assert inbox.connections == 6  # one per batch of 4, whoever claimed it
            # One connection: a message at a time. Two: both were inside a DATA at once.
            assert inbox.most_in_data == connections
        rows = outbox(db)
        assert {(r.status, r.attempts) for r in rows} == {("sent", 1)}
        holders = {r.claimed_by for r in rows}
        assert holders == ({"w"} if connections == 1 else {"w/1", "w/2"})

    def test_a_tick_uses_the_connections_its_settings_give(
        self, db: Engine, clock: ManualClock
    ) -> None:
        enqueue_mails(db, clock, 250)  # three of the tick's batches of 100
        with running(OverlapInbox(delay=0.005)) as server:
            settings = Settings(
                secret_key="k" * 32,
                smtp_port=server.port,
                smtp_from=SENDER,
                delivery_connections=3,
            )
            report = tick(db, clock, settings)
            inbox = server.inbox
            assert isinstance(inbox, OverlapInbox)
            assert report.delivery.sent == 250
            assert inbox.most_in_data >= 2
        assert len({r.claimed_by for r in outbox(db)}) == 3


def test_delivery_connections_are_bounded() -> None:
    for wrong in (0, 17, -1):
        with pytest.raises(ValidationError, match="delivery_connections"):
            Settings(delivery_connections=wrong)
