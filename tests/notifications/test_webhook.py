"""The webhook channel against a receiver on loopback (http.server in a thread): it fails the
first two attempts with HTTP 500 and gets the message on the third, exactly once, in the
markdown shape WeCom / DingTalk group robots accept."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import Engine, select, update

from jinqiu.notifications.channels import WebhookSender
from jinqiu.notifications.delivery import deliver_due
from jinqiu.notifications.models import InboxMessage, OutboxMessage
from jinqiu.notifications.outbound import WebhookPolicy
from jinqiu.notifications.outbox import BACKOFF_BASE
from jinqiu.workflow.clock import ManualClock
from jinqiu.workflow.db import transaction
from jinqiu.workflow.deadlines.sweep import sweep
from jinqiu.workflow.units.models import Unit
from tests.factories import new_case, weihai_by_level

outbox_t = OutboxMessage.__table__  # type: ignore[attr-defined]
inbox_t = InboxMessage.__table__  # type: ignore[attr-defined]
unit_t = Unit.__table__  # type: ignore[attr-defined]
BASE_URL = "https://jinqiu.example.org"
SURVEY_TITLE = "报送新增困难职工档案申报材料和《困难职工子女金秋助学情况摸底表》"


@dataclass(frozen=True)
class Hit:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    answered: int


class Receiver:
    """Answers 500 to the first `failures` requests, then 200; records every request."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.hits: list[Hit] = []
        lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                with lock:
                    status = 500 if len(receiver.hits) < receiver.failures else 200
                    receiver.hits.append(
                        Hit(
                            self.path,
                            dict(self.headers.items()),
                            json.loads(raw.decode("utf-8")),
                            status,
                        )
                    )
                reply = b'{"errcode":0,"errmsg":"ok"}' if status == 200 else b'{"errcode":-1}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/robot/send?key=wh-hc-001"
        # shutdown() waits for the loop's next look at its flag: every 0.5 s by default.
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def delivered(self) -> list[Hit]:
        return [h for h in self.hits if h.answered == 200]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(failures=2)
    r.thread.start()
    yield r
    r.server.shutdown()
    r.server.server_close()


def outbox(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(select(outbox_t).order_by(outbox_t.c.id)))


def test_fails_twice_then_gets_the_message_on_the_third_attempt_exactly_once(
    db: Engine, clock: ManualClock, receiver: Receiver
) -> None:
    _tree, campaign = weihai_by_level(db, clock)
    new_case(db, clock, campaign, "WH-HC-001")
    new_case(db, clock, campaign, "WH-HC-001")
    with transaction(db) as conn:  # this union is told by its group robot only
        conn.execute(
            update(unit_t)
            .where(unit_t.c.code == "WH-HC-001")
            .values(webhook_url=receiver.url, contact_email=None)
        )
        name = conn.execute(select(unit_t.c.name).where(unit_t.c.code == "WH-HC-001")).scalar_one()
    clock.set(dt.datetime(2024, 7, 26, 8))
    sweep(db, clock, base_url=BASE_URL)
    [row] = outbox(db)
    assert (row.channel, row.recipient) == ("webhook", receiver.url)
    # The receiver is on loopback over http://: a test-only opt-in (SSRF checks: tests/security).
    local = WebhookPolicy(allow_http=True, allow_private=True)
    senders = {"webhook": WebhookSender(timeout=5, policy=local)}
    start = clock.now()

    first = deliver_due(partial(transaction, db), clock.now, senders)
    assert (first.sent, first.retried, len(receiver.hits)) == (0, 1, 1)
    assert "500" in first.errors[0]

    clock.set(start + BACKOFF_BASE - dt.timedelta(seconds=1))  # before the backoff: no attempt
    assert deliver_due(partial(transaction, db), clock.now, senders).retried == 0
    assert len(receiver.hits) == 1
    clock.set(start + BACKOFF_BASE)
    second = deliver_due(partial(transaction, db), clock.now, senders)
    assert (second.sent, second.retried, len(receiver.hits)) == (0, 1, 2)

    [row] = outbox(db)
    assert row.next_attempt_at == start + BACKOFF_BASE * 3  # 30 s, then 60 s more
    clock.set(start + BACKOFF_BASE * 3 - dt.timedelta(seconds=1))
    assert deliver_due(partial(transaction, db), clock.now, senders).sent == 0
    assert len(receiver.hits) == 2
    clock.set(start + BACKOFF_BASE * 3)
    third = deliver_due(partial(transaction, db), clock.now, senders)
    assert (third.sent, third.retried, third.failed) == (1, 0, 0)

    for later in (dt.timedelta(minutes=10), dt.timedelta(days=1)):
        clock.set(start + later)
        assert deliver_due(partial(transaction, db), clock.now, senders).sent == 0
    assert [h.answered for h in receiver.hits] == [500, 500, 200]
    [hit] = receiver.delivered
    [row] = outbox(db)
    assert (row.status, row.attempts, row.last_error) == ("sent", 3, None)
    assert {h.headers["Idempotency-Key"] for h in receiver.hits} == {row.idempotency_key}
    assert row.idempotency_key.endswith(":webhook")
    assert all(h.body == hit.body for h in receiver.hits)  # the same message every time
    assert hit.path == "/robot/send?key=wh-hc-001"
    assert hit.headers["Content-Type"].startswith("application/json")

    body = hit.body
    assert body["msgtype"] == "markdown"
    assert set(body["markdown"]) == {"title", "content"}
    title, content = body["markdown"]["title"], body["markdown"]["content"]
    assert title == row.subject == f"【还剩3个工作日】{SURVEY_TITLE}（{name}）"
    assert content.startswith(f"### {title}")
    assert f"- 单位：{name}" in content and f"- 事项：{SURVEY_TITLE}" in content
    assert "- 截止：2024-07-31" in content
    assert "摸底申报 2 件" in content and "合计 2 件" in content
    assert f"({BASE_URL}/queue?campaign={campaign}&unit=WH-HC-001)" in content
    assert body["data"]["unit"] == "WH-HC-001" and body["data"]["pending"] == {"survey": 2}
    with db.connect() as conn:  # and the in-app inbox has it too, once
        inbox = conn.execute(select(inbox_t.c.unit_code, inbox_t.c.title)).all()
    assert [tuple(r) for r in inbox] == [("WH-HC-001", title)]
