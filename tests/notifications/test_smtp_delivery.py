"""Reminders over a REAL SMTP server: aiosmtpd on a loopback port, started by the tests.

What arrives names the unit, the deadline and the pending counts (subject, text and HTML parts);
a resend of the same message carries the same Message-ID; a server that is down is retried with
exponential backoff until it is up, and after the last attempt the message is `failed` and shown
to admins at GET /api/admin/outbox."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import itertools
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from functools import partial
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import Engine, select, update

from jinqiu.notifications.channels import SmtpSender
from jinqiu.notifications.delivery import deliver_due
from jinqiu.notifications.models import OutboxMessage
from jinqiu.notifications.outbox import BACKOFF_BASE, MAX_ATTEMPTS, message_id
from jinqiu.workflow.clock import ManualClock
from jinqiu.workflow.config import Settings
from jinqiu.workflow.db import transaction
from jinqiu.workflow.deadlines.sweep import sweep
from jinqiu.workflow.tick import tick
from jinqiu.workflow.units.models import Unit
from tests.api.conftest import World, username
from tests.api.conftest import world as world  # the HTTP fixture, on both databases
from tests.factories import new_case, weihai_by_level

outbox_t = OutboxMessage.__table__  # type: ignore[attr-defined]
unit_t = Unit.__table__  # type: ignore[attr-defined]
BASE_URL = "https://jinqiu.example.org"
SENDER = "jinqiu@weihai.example.org"
SURVEY_TITLE = "报送新增困难职工档案申报材料和《困难职工子女金秋助学情况摸底表》"
KEY_HEADER = "X-Jinqiu-Idempotency-Key"


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    peer: tuple[str, int] | None = None  # the client's address: one per SMTP connection
    raw: bytes = b""  # as it came over the wire

    @property
    def key(self) -> str:
        return str(self.message[KEY_HEADER])

    def text(self) -> str:
        part = self.message.get_body(("plain",))
        assert part is not None
        return str(part.get_content())  # type: ignore[attr-defined]

    def html(self) -> str:
        part = self.message.get_body(("html",))
        assert part is not None
        return str(part.get_content())  # type: ignore[attr-defined]


class Inbox:
    """The aiosmtpd handler: keeps every message it is given, parsed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._received: list[Received] = []
        self.connections = 0  # EHLO (or HELO) greetings: smtplib greets once per connection

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        with self._lock:
            self.connections += 1
        return responses

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.keep(session, envelope)
        return "250 Message accepted for delivery"

    def keep(self, session: Any, envelope: Any) -> Received:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        received = Received(
            envelope.mail_from,
            list(envelope.rcpt_tos),
            parsed,
            tuple(session.peer),
            bytes(envelope.original_content),
        )
        with self._lock:
            self._received.append(received)
        return received

    @property
    def received(self) -> list[Received]:
        with self._lock:
            return list(self._received)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SmtpServer:
    """A real SMTP server on 127.0.0.1:`port`, which can be started later than it is made."""

    def __init__(self, port: int | None = None, inbox: Inbox | None = None) -> None:
        self.port = port or free_port()
        self.inbox = inbox or Inbox()
        self._controller: Controller | None = None

    def start(self) -> SmtpServer:
        self._controller = Controller(
            self.inbox, hostname="127.0.0.1", port=self.port, server_hostname="smtp.jinqiu.test"
        )
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def received(self) -> list[Received]:
        return self.inbox.received

    @property
    def listener(self) -> Any:
        """The asyncio server accepting connections (closing it refuses new ones)."""
        assert self._controller is not None
        return self._controller.server


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


def settings_for(port: int) -> Settings:
    return Settings(smtp_host="127.0.0.1", smtp_port=port, smtp_from=SENDER, base_url=BASE_URL)


def outbox(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(select(outbox_t).order_by(outbox_t.c.id)))


def unit_name(engine: Engine, code: str) -> str:
    with engine.connect() as conn:
        return str(conn.execute(select(unit_t.c.name).where(unit_t.c.code == code)).scalar_one())


class TestRemindersArrive:
    def test_subjects_and_both_bodies_name_the_unit_deadline_and_pending_counts(
        self, db: Engine, clock: ManualClock, smtp: SmtpServer
    ) -> None:
        _tree, campaign = weihai_by_level(db, clock)
        for code in ("WH-HC-001", "WH-HC-001", "WH-WD-002"):
            new_case(db, clock, campaign, code)
        clock.set(dt.datetime(2024, 7, 26, 8))  # Fri: T-3 for Wed 7/31
        report = tick(db, clock, settings_for(smtp.port))
        assert (report.delivery.sent, report.delivery.retried, report.delivery.failed) == (2, 0, 0)

        got = {r.rcpt_tos[0]: r for r in smtp.received}
        assert sorted(got) == ["wh-hc-001@example.org", "wh-wd-002@example.org"]
        for address, code, count in (
            ("wh-hc-001@example.org", "WH-HC-001", 2),
            ("wh-wd-002@example.org", "WH-WD-002", 1),
        ):
            mail = got[address]
            name = unit_name(db, code)
            assert mail.mail_from == SENDER and mail.message["To"] == address
            subject = str(mail.message["Subject"])
            assert subject == f"【还剩3个工作日】{SURVEY_TITLE}（{name}）"
            text, html = mail.text(), mail.html()
            for body in (text, html):
                assert name in body and SURVEY_TITLE in body and "2024-07-31" in body
                assert "2024年度金秋助学活动" in body
            assert f"待办案件共{count}件" in text and f"摸底申报：{count}件" in text
            assert f'>摸底申报</td><td style="text-align:right;">{count}</td>' in html
            assert f"{BASE_URL}/queue?campaign={campaign}&unit={code}" in text
            assert f"{BASE_URL}/queue?campaign={campaign}&amp;unit={code}" in html
            assert mail.message.get_content_type() == "multipart/alternative"

        for row in outbox(db):
            mail = got[row.recipient]
            assert mail.key == row.idempotency_key
            assert mail.message["Message-ID"] == message_id(row.idempotency_key)
            assert (row.status, row.attempts) == ("sent", 1)
        assert len({r.message["Message-ID"] for r in smtp.received}) == 2

    def test_a_second_tick_the_same_day_delivers_nothing_more(
        self, db: Engine, clock: ManualClock, smtp: SmtpServer
    ) -> None:
        _tree, campaign = weihai_by_level(db, clock)
        new_case(db, clock, campaign, "WH-RS-003")
        clock.set(dt.datetime(2024, 7, 30, 8))
        tick(db, clock, settings_for(smtp.port))
        clock.set(dt.datetime(2024, 7, 30, 16))
        again = tick(db, clock, settings_for(smtp.port))
        assert (again.sweep.reminders, again.delivery.sent) == ([], 0)
        assert [r.key for r in smtp.received] == [outbox(db)[0].idempotency_key]


class Crash(BaseException):
    """The process dies right after the SMTP server took the message (before mark_sent)."""


@dataclass
class SendThenCrash:
    inner: SmtpSender

    def send(self, message: Any) -> None:
        self.inner.send(message)
        raise Crash


class TestResend:
    def test_a_resend_of_the_same_key_carries_the_same_message_id(
        self, db: Engine, clock: ManualClock, smtp: SmtpServer
    ) -> None:
        _tree, campaign = weihai_by_level(db, clock)
        new_case(db, clock, campaign, "WH-GQ-002")
        clock.set(dt.datetime(2024, 7, 31, 8))
        sweep(db, clock, base_url=BASE_URL)
        sender = SmtpSender("127.0.0.1", smtp.port, SENDER)
        with pytest.raises(Crash):
            deliver_due(partial(transaction, db), clock.now, {"email": SendThenCrash(sender)})
        [row] = outbox(db)
        assert (row.status, row.attempts) == ("pending", 0)  # the outcome was lost in the crash
        # Within the lease nobody else may take it; once the lease has run out it goes again.
        assert deliver_due(partial(transaction, db), clock.now, {"email": sender}).sent == 0
        clock.advance(dt.timedelta(minutes=3))
        assert deliver_due(partial(transaction, db), clock.now, {"email": sender}).sent == 1
        first, second = smtp.received
        assert first.key == second.key == row.idempotency_key
        assert (
            first.message["Message-ID"]
            == second.message["Message-ID"]
            == message_id(row.idempotency_key)
        )
        assert str(first.message["Subject"]) == str(second.message["Subject"])
        [row] = outbox(db)
        assert (row.status, row.attempts) == ("sent", 1)
        clock.advance(dt.timedelta(hours=1))
        assert deliver_due(partial(transaction, db), clock.now, {"email": sender}).sent == 0
        assert len(smtp.received) == 2


class TestServerDown:
    def test_retried_with_backoff_then_delivered_once_the_server_is_up(
        self, db: Engine, clock: ManualClock
    ) -> None:
        _tree, campaign = weihai_by_level(db, clock)
        new_case(db, clock, campaign, "WH-WD-003")
        clock.set(dt.datetime(2024, 7, 26, 8))
        server = SmtpServer()  # its port is free: nothing listens yet
        settings = settings_for(server.port)
        first = tick(db, clock, settings)
        assert (first.delivery.sent, first.delivery.retried, first.delivery.failed) == (0, 1, 0)
        assert "SMTP 127.0.0.1" in first.delivery.errors[0]
        waits = []
        for attempt in (1, 2, 3):
            [row] = outbox(db)
            assert (row.status, row.attempts) == ("pending", attempt)
            wait = row.next_attempt_at - clock.now()
            waits.append(wait)
            clock.set(row.next_attempt_at - dt.timedelta(seconds=1))  # not yet due: no attempt
            assert tick(db, clock, settings).delivery == type(first.delivery)()
            clock.set(row.next_attempt_at)
            if attempt < 3:
                assert tick(db, clock, settings).delivery.retried == 1
        assert waits == [BACKOFF_BASE, BACKOFF_BASE * 2, BACKOFF_BASE * 4]
        server.start()
        try:
            up = tick(db, clock, settings)
            assert (up.delivery.sent, up.delivery.retried, up.delivery.failed) == (1, 0, 0)
            clock.advance(dt.timedelta(hours=2))
            assert tick(db, clock, settings).delivery.sent == 0
            [mail] = server.received
        finally:
            server.stop()
        [row] = outbox(db)
        assert (row.status, row.attempts, row.last_error) == ("sent", 4, None)
        assert mail.key == row.idempotency_key
        assert unit_name(db, "WH-WD-003") in str(mail.message["Subject"])

    def test_after_the_last_attempt_it_is_failed_and_admins_see_it(self, world: World) -> None:
        db, clock = world.engine, world.clock
        new_case(db, clock, world.campaign, "WH-HC-002")
        with transaction(db) as conn:
            conn.execute(
                update(unit_t)
                .where(unit_t.c.code == "WH-HC-002")
                .values(contact_email="clerk@hc-002.example.org")
            )
        clock.set(dt.datetime(2024, 7, 26, 8))
        sweep(db, clock, base_url=BASE_URL)
        dead = SmtpSender("127.0.0.1", free_port(), SENDER, timeout=5)
        attempts_at = []
        for _ in range(MAX_ATTEMPTS):
            [row] = outbox(db)
            assert row.status == "pending"
            clock.set(row.next_attempt_at)
            attempts_at.append(clock.now())
            deliver_due(partial(transaction, db), clock.now, {"email": dead})
        [row] = outbox(db)
        assert (row.status, row.attempts) == ("failed", MAX_ATTEMPTS)
        gaps = [(b - a) / BACKOFF_BASE for a, b in itertools.pairwise(attempts_at)]
        assert gaps == [1, 2, 4, 8, 16]
        # Failed is final: even with a server up, nothing more is sent.
        server = SmtpServer().start()
        try:
            clock.advance(dt.timedelta(days=2))
            report = deliver_due(
                partial(transaction, db),
                clock.now,
                {"email": SmtpSender("127.0.0.1", server.port, SENDER)},
            )
            assert (report.sent, report.retried, report.failed) == (0, 0, 0)
            assert server.received == []
        finally:
            server.stop()

        response = world.client.get("/api/admin/outbox", headers=world.as_(username("admin", "WH")))
        assert response.status_code == 200, response.text
        [item] = response.json()
        assert item["idempotency_key"] == row.idempotency_key
        assert (item["status"], item["attempts"], item["recipient"]) == (
            "failed",
            MAX_ATTEMPTS,
            "clerk@hc-002.example.org",
        )
        assert item["channel"] == "email" and unit_name(db, "WH-HC-002") in item["subject"]
        assert "SMTP 127.0.0.1" in item["last_error"]
        pending = world.client.get(
            "/api/admin/outbox?status=pending", headers=world.as_(username("admin", "WH"))
        )
        assert pending.status_code == 200 and pending.json() == []
        refused = world.client.get(
            "/api/admin/outbox", headers=world.as_(username("clerk", "WH-HC-002"))
        )
        assert refused.status_code == 403
