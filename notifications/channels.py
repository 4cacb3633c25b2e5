"""Where messages go: e-mail over SMTP (text + HTML) and webhooks (JSON POST, with the markdown
shape WeCom and DingTalk group robots accept). The inbox needs no channel: it is a table."""

from __future__ import annotations

import json
import smtplib
import urllib.request
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any, Protocol

from notifications.outbox import message_id


class DeliveryError(Exception):
    """The channel could not deliver this time; the outbox retries with backoff."""


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


@dataclass(frozen=True)
class WebhookSender:
    timeout: float = 10.0

    def send(self, message: Any) -> None:
        body = json.dumps(message.payload, ensure_ascii=False).encode("utf-8")
        request = urllib.request.Request(
            message.recipient,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json; charset=utf-8",
                "Idempotency-Key": message.idempotency_key,
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                if not 200 <= response.status < 300:
                    raise DeliveryError(f"webhook answered {response.status}")
        except DeliveryError:
            raise
        except Exception as exc:  # URLError, HTTPError, timeouts: all mean "try again later"
            raise DeliveryError(f"webhook {message.recipient}: {exc}") from exc


def robot_payload(title: str, markdown: str, data: dict[str, Any]) -> dict[str, Any]:
    """One JSON body that WeCom/DingTalk robots (msgtype markdown) and plain receivers can read."""
    return {"msgtype": "markdown", "markdown": {"title": title, "content": markdown}, "data": data}
