"""Finding 8: SSRF through `webhook_url`. Only https:// (http:// when the operator allows it), no
userinfo, a host; never a private, loopback, link-local, multicast, reserved or unspecified
destination (IPv4 and IPv6, IPv4-mapped too). Checked where the URL comes in (unit create and
patch: 422 naming webhook_url) and again when the sweep sends, after DNS resolution, connecting
to the very address that was checked, following no redirect. A refused send is a delivery
failure with a reason, never a crash of the sweep and never retried."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, update

from jinqiu.api.app import create_app
from jinqiu.notifications.channels import WebhookSender
from jinqiu.notifications.delivery import deliver_due
from jinqiu.notifications.models import OutboxMessage
from jinqiu.notifications.outbound import (
    WebhookPolicy,
    WebhookRefused,
    check_address,
    check_webhook_url,
)
from jinqiu.workflow.clock import ManualClock
from jinqiu.workflow.config import Settings
from jinqiu.workflow.db import transaction
from jinqiu.workflow.deadlines.sweep import sweep
from jinqiu.workflow.tick import tick
from jinqiu.workflow.units.models import Unit
from tests.api.conftest import World
from tests.factories import new_case, weihai_by_level

outbox_t = OutboxMessage.__table__  # type: ignore[attr-defined]
unit_t = Unit.__table__  # type: ignore[attr-defined]
T_MINUS_3 = dt.datetime(2024, 7, 26, 8)  # Weihai's survey deadline 7/31: a reminder is due

# Refused whatever the operator allows for http://.
ALWAYS_REFUSED = [
    "file:///etc/passwd",
    "gopher://127.0.0.1:6379/_INFO",
    "http://169.254.169.254/latest/meta-data",
    "http://127.0.0.1/hook",
    "http://[::1]/hook",
    "http://10.0.0.1/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://localhost/hook",  # a name resolving to 127.0.0.1
    "https://127.0.0.1/hook",
    "https://localhost/hook",
    "https://169.254.169.254/latest/meta-data",
    "https://[::ffff:169.254.169.254]/",
    "https://[fe80::1]/",
    "https://[fc00::1]/",
    "https://0.0.0.0/",
    "https://[::]/",
    "https://224.0.0.1/",
    "https://100.64.0.1/",  # carrier-grade NAT: not a public destination
    "https://192.168.1.10/",
    "https://172.16.0.1/",
    "https://robot:secret@qyapi.weixin.qq.com/cgi-bin/webhook/send?key=x",  # userinfo
    "https://@1.1.1.1/",
    "https:///cgi-bin/webhook/send",  # no host
    "https://1.1.1.1:99999/",  # no such port
    "javascript:alert(1)",
]
HTTP_PUBLIC = "http://1.1.1.1/hook"  # refused unless JINQIU_WEBHOOK_ALLOW_HTTP=true
PUBLIC = "https://1.1.1.1/cgi-bin/webhook/send?key=wh-hc-001"
SECRET = "test-secret-key-0123456789abcdef"


# -- the checker, on its own --------------------------------------------------------------------


class TestTheChecker:
    @pytest.mark.parametrize("url", [*ALWAYS_REFUSED, HTTP_PUBLIC])
    def test_refused_by_default(self, url: str) -> None:
        with pytest.raises(WebhookRefused):
            check_webhook_url(url, WebhookPolicy())

    @pytest.mark.parametrize("url", ALWAYS_REFUSED)
    def test_refused_even_when_http_is_allowed(self, url: str) -> None:
        with pytest.raises(WebhookRefused):
            check_webhook_url(url, WebhookPolicy(allow_http=True))

    def test_a_public_https_url_passes_and_http_only_when_allowed(self) -> None:
        check_webhook_url(PUBLIC, WebhookPolicy())
        check_webhook_url(HTTP_PUBLIC, WebhookPolicy(allow_http=True))

    def test_the_allow_list_when_set_is_the_only_list_accepted(self) -> None:
        policy = WebhookPolicy(
            allowed_hosts=frozenset({"qyapi.weixin.qq.com", "oapi.dingtalk.com"})
        )
        with pytest.raises(WebhookRefused) as caught:
            check_webhook_url(PUBLIC, policy)
        assert caught.value.code == "webhook_host_not_allowed"
        check_webhook_url("https://OAPI.dingtalk.com/robot/send?access_token=x", policy)

    @pytest.mark.parametrize(
        "address",
        [
            "127.0.0.1",
            "10.1.2.3",
            "169.254.169.254",
            "0.0.0.0",
            "255.255.255.255",
            "240.0.0.1",
            "::1",
            "::",
            "fe80::1",
            "fc00::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "2002:7f00:1::1",
            "2001:db8::1",
        ],
    )
    def test_addresses_that_are_not_public_are_refused(self, address: str) -> None:
        with pytest.raises(WebhookRefused) as caught:
            check_address(address)
        assert caught.value.code == "webhook_address_not_allowed"

    @pytest.mark.parametrize("address", ["1.1.1.1", "203.119.129.1", "2400:3200::1"])
    def test_public_addresses_pass(self, address: str) -> None:
        check_address(address)


# -- at input: unit create and patch --------------------------------------------------------------


def client_with(world: World, **settings: Any) -> TestClient:
    """The same database and clock, another operator setting."""
    app = create_app(
        engine=world.engine,
        clock=world.clock,
        settings=Settings(secret_key=SECRET, token_minutes=60 * 24, **settings),
    )
    return TestClient(app, raise_server_exceptions=False)


def create_unit(client: TestClient, world: World, url: str) -> Any:
    return client.post(
        "/api/units",
        json={
            "code": "WH-HC-NEW",
            "name": "环翠区新基层工会",
            "level": "grassroots",
            "parent": "WH-HC",
            "webhook_url": url,
        },
        headers=world.as_("admin.wh-hc"),
    )


def patch_unit(client: TestClient, world: World, url: str) -> Any:
    return client.patch(
        "/api/units/WH-HC-001", json={"webhook_url": url}, headers=world.as_("admin.wh-hc")
    )


def assert_refused_naming_the_field(response: Any) -> None:
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["code"] == "validation_error"
    [problem] = body["details"]
    assert problem["field"] == "webhook_url"
    assert problem["code"].startswith("webhook_")


class TestAtInput:
    @pytest.mark.parametrize("url", [*ALWAYS_REFUSED, HTTP_PUBLIC])
    def test_create_and_patch_refuse(self, world: World, url: str) -> None:
        assert_refused_naming_the_field(create_unit(world.client, world, url))
        assert_refused_naming_the_field(patch_unit(world.client, world, url))
        unit = world.client.get("/api/units/WH-HC-001", headers=world.as_("admin.wh")).json()
        assert unit["webhook_url"] is None

    def test_allowing_http_refuses_the_same_destinations(self, world: World) -> None:
        with client_with(world, webhook_allow_http=True) as client:
            for url in ALWAYS_REFUSED:
                assert_refused_naming_the_field(patch_unit(client, world, url))
            assert patch_unit(client, world, HTTP_PUBLIC).status_code == 200

    def test_a_public_https_url_is_accepted_and_cleared(self, world: World) -> None:
        created = create_unit(world.client, world, PUBLIC)
        assert (created.status_code, created.json()["webhook_url"]) == (201, PUBLIC)
        patched = patch_unit(world.client, world, PUBLIC)
        assert (patched.status_code, patched.json()["webhook_url"]) == (200, PUBLIC)
        cleared = patch_unit_none(world)
        assert (cleared.status_code, cleared.json()["webhook_url"]) == (200, None)

    def test_the_allow_list_refuses_other_hosts(self, world: World) -> None:
        with client_with(
            world, webhook_allowed_hosts="qyapi.weixin.qq.com, oapi.dingtalk.com"
        ) as client:
            response = patch_unit(client, world, PUBLIC)
            assert_refused_naming_the_field(response)
            assert response.json()["details"][0]["code"] == "webhook_host_not_allowed"
            ok = patch_unit(client, world, "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=x")
            assert ok.status_code == 200, ok.text


def patch_unit_none(world: World) -> Any:
    return world.client.patch(
        "/api/units/WH-HC-001", json={"webhook_url": None}, headers=world.as_("admin.wh-hc")
    )


# -- at send time ---------------------------------------------------------------------------------


@dataclass
class Receiver:
    """A webhook receiver on loopback answering `status` (with `headers`); records each hit."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    hits: list[dict[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                receiver.hits.append({"path": self.path, **dict(self.headers.items())})
                self.send_response(receiver.status)
                for name, value in receiver.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_GET(self) -> None:  # where a followed 302 would land
                receiver.hits.append({"path": self.path, **dict(self.headers.items())})
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        # shutdown() waits for the loop's next look at its flag: every 0.5 s by default.
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def reminder_to(db: Engine, clock: ManualClock, url: str) -> None:
    """WH-HC-001 is told by its robot only; the sweep queues its T-3 reminder to `url`, which
    got into the table without the input check (an old row, or a direct edit)."""
    _tree, campaign = weihai_by_level(db, clock)
    new_case(db, clock, campaign, "WH-HC-001")
    with transaction(db) as conn:
        conn.execute(
            update(unit_t)
            .where(unit_t.c.code == "WH-HC-001")
            .values(webhook_url=url, contact_email=None)
        )
    clock.set(T_MINUS_3)
    sweep(db, clock, base_url="https://jinqiu.example.org")


def the_message(db: Engine) -> Any:
    with db.connect() as conn:
        [row] = conn.execute(select(outbox_t).where(outbox_t.c.channel == "webhook")).all()
    return row


class TestAtSendTime:
    @pytest.mark.parametrize(
        "template",
        [
            "http://127.0.0.1:{port}/hook",
            "http://localhost:{port}/hook",
            "http://[::ffff:127.0.0.1]:{port}/hook",
            "http://[::1]:{port}/hook",
            "https://localhost:{port}/hook",
        ],
    )
    def test_loopback_is_refused_without_a_request_and_not_retried(
        self, db: Engine, clock: ManualClock, receiver: Receiver, template: str
    ) -> None:
        reminder_to(db, clock, template.format(port=receiver.port))
        report = deliver_due(
            partial(transaction, db),
            clock.now,
            {"webhook": WebhookSender(timeout=5, policy=WebhookPolicy(allow_http=True))},
        )
        assert (report.sent, report.retried, report.failed) == (0, 0, 1)
        assert receiver.hits == []
        row = the_message(db)
        assert (row.status, row.attempts) == ("failed", 1)
        assert "refused" in row.last_error

    @pytest.mark.parametrize("url", [*ALWAYS_REFUSED, HTTP_PUBLIC])
    def test_every_target_of_the_list_is_a_failed_delivery_through_tick(
        self, db: Engine, clock: ManualClock, url: str
    ) -> None:
        reminder_to(db, clock, url)
        report = tick(db, clock, Settings(secret_key=SECRET))  # the operator's default settings
        assert (report.delivery.sent, report.delivery.failed) == (0, 1)
        row = the_message(db)
        assert (row.status, row.attempts) == ("failed", 1)
        assert "refused" in row.last_error
        clock.set(T_MINUS_3 + dt.timedelta(days=1))  # and it is not tried again
        assert tick(db, clock, Settings(secret_key=SECRET)).delivery.failed == 0
        assert the_message(db).attempts == 1

    def test_the_sender_connects_to_the_address_it_checked(
        self, db: Engine, clock: ManualClock, receiver: Receiver
    ) -> None:
        # The name resolves once; the request goes to that address (no second lookup a DNS
        # rebinding could answer differently), with the name kept in the Host header.
        lookups: list[str] = []

        def resolve(host: str, port: int) -> list[str]:
            lookups.append(host)
            return ["127.0.0.1"]

        reminder_to(db, clock, f"http://robot.example.test:{receiver.port}/hook?key=1")
        sender = WebhookSender(
            timeout=5, resolve=resolve, policy=WebhookPolicy(allow_http=True, allow_private=True)
        )
        assert deliver_due(partial(transaction, db), clock.now, {"webhook": sender}).sent == 1
        assert lookups == ["robot.example.test"]
        [hit] = receiver.hits
        assert hit["path"] == "/hook?key=1"
        assert hit["Host"] == f"robot.example.test:{receiver.port}"

    def test_a_name_with_one_private_address_among_public_ones_is_refused(
        self, db: Engine, clock: ManualClock
    ) -> None:
        reminder_to(db, clock, "https://robot.example.test/hook")
        sender = WebhookSender(timeout=5, resolve=lambda _h, _p: ["1.1.1.1", "127.0.0.1"])
        assert deliver_due(partial(transaction, db), clock.now, {"webhook": sender}).failed == 1
        assert "127.0.0.1" in the_message(db).last_error

    def test_a_redirect_is_not_followed(
        self, db: Engine, clock: ManualClock, receiver: Receiver
    ) -> None:
        receiver.status = 302
        receiver.headers = {"Location": f"http://127.0.0.1:{receiver.port}/elsewhere"}
        reminder_to(db, clock, f"http://127.0.0.1:{receiver.port}/hook")
        sender = WebhookSender(timeout=5, policy=WebhookPolicy(allow_http=True, allow_private=True))
        report = deliver_due(partial(transaction, db), clock.now, {"webhook": sender})
        assert (report.sent, report.retried) == (0, 1)
        assert [h["path"] for h in receiver.hits] == ["/hook"]
        assert "302" in the_message(db).last_error
