"""Where messages go: e-mail over SMTP (text + HTML) and webhooks (JSON POST, with the markdown
shape WeCom and DingTalk group robots accept). The inbox needs no channel: it is a table."""

from __future__ import annotations

import http.client
import json
import smtplib
import socket
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any, Protocol

from jinqiu.notifications.outbound import (
    Resolver,
    WebhookPolicy,
    WebhookRefused,
    WebhookTarget,
    checked_addresses,
    parse_target,
    resolve_host,
)
from jinqiu.notifications.outbox import message_id


class DeliveryError(Exception):
    """The channel could not deliver this time; the outbox retries with backoff."""


class DeliveryRefused(DeliveryError):
    """The message may never be delivered as addressed (an unsafe webhook URL): failed at
    once, with the reason, not retried."""


class Sender(Protocol):
    def send(self, message: Any) -> None:
        """Delivers one outbox row or raises DeliveryError."""
        ...


@dataclass(frozen=True)
class SmtpSender:
    host: str
    port: int
    sender: str
    timeout: float = 10.0

    def build(self, message: Any) -> EmailMessage:
        mail = EmailMessage()
        mail["From"] = self.sender
        mail["To"] = message.recipient
        mail["Subject"] = message.subject
        mail["Message-ID"] = message_id(message.idempotency_key)
        mail["X-Jinqiu-Idempotency-Key"] = message.idempotency_key
        mail["Date"] = format_datetime(message.created_at)
        mail.set_content(message.body_text)
        if message.body_html:
            mail.add_alternative(message.body_html, subtype="html")
        return mail

    def send(self, message: Any) -> None:
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                smtp.send_message(self.build(message))
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryError(f"SMTP {self.host}:{self.port}: {exc}") from exc


class _PinnedConnection(http.client.HTTPConnection):
    """HTTP or HTTPS to one given address: the host name is used only for the Host header and
    TLS (SNI and the certificate check), never looked up again."""

    def __init__(
        self, target: WebhookTarget, address: str, tls: ssl.SSLContext | None, timeout: float
    ) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self.address, self.tls = address, tls
        self.default_port = 443 if tls else 80  # no ":443" in the Host header

    def connect(self) -> None:
        sock = socket.create_connection((self.address, self.port), self.timeout)
        self.sock = self.tls.wrap_socket(sock, server_hostname=self.host) if self.tls else sock


@dataclass(frozen=True)
class WebhookSender:
    """POSTs the message's JSON payload to its URL: checked again here, after DNS resolution,
    and sent to an address that passed the check. Redirects are not followed (any answer
    outside 2xx is a failure)."""

    timeout: float = 10.0
    policy: WebhookPolicy = field(default_factory=WebhookPolicy)
    resolve: Resolver = resolve_host

    def send(self, message: Any) -> None:
        try:
            target = parse_target(message.recipient, self.policy)
            addresses = checked_addresses(target, self.policy, self.resolve)
        except WebhookRefused as exc:
            raise DeliveryRefused(f"webhook refused ({exc.code}): {exc.message}") from exc
        except (OSError, UnicodeError) as exc:  # DNS down or the name unknown: try again later
            raise DeliveryError(f"webhook {message.recipient}: cannot resolve: {exc}") from exc
        body = json.dumps(message.payload, ensure_ascii=False).encode("utf-8")
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Idempotency-Key": message.idempotency_key,
        }
        try:
            status = self._post(target, addresses, body, headers)
        except Exception as exc:  # refused connections, TLS errors, timeouts: try again later
            raise DeliveryError(f"webhook {message.recipient}: {exc}") from exc
        if not 200 <= status < 300:
            raise DeliveryError(f"webhook answered {status}")

    def _post(
        self, target: WebhookTarget, addresses: list[str], body: bytes, headers: dict[str, str]
    ) -> int:
        tls = ssl.create_default_context() if target.scheme == "https" else None
        failure: OSError = OSError(f"no address for {target.host}")
        for address in addresses:  # each one checked; the next one only if this cannot connect
            conn = _PinnedConnection(target, address, tls, self.timeout)
            try:
                conn.connect()
            except OSError as exc:
                conn.close()
                failure = exc
                continue
            try:
                conn.request("POST", target.path, body=body, headers=headers)
                return conn.getresponse().status
            finally:
                conn.close()
        raise failure


def robot_payload(title: str, markdown: str, data: dict[str, Any]) -> dict[str, Any]:
    """One JSON body that WeCom/DingTalk robots (msgtype markdown) and plain receivers can read."""
    return {"msgtype": "markdown", "markdown": {"title": title, "content": markdown}, "data": data}
