"""Where messages go: e-mail over SMTP (text + HTML) and webhooks (JSON POST, with the markdown
shape WeCom and DingTalk group robots accept). The inbox needs no channel: it is a table."""

from __future__ import annotations

import http.client
import json
import smtplib
import socket
import ssl
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any, Protocol, runtime_checkable

from jinqiu.notifications.mime import boundary, wire
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


@runtime_checkable
class BatchSender(Sender, Protocol):
    """A sender that can carry many messages over one connection: `session()` gives a Sender
    for a batch, whose resources (the connection) are released when the block ends."""

    def session(self) -> AbstractContextManager[Sender]: ...


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
            mail.set_boundary(boundary(message.idempotency_key))  # a resend: the same bytes
        return mail

    def wire(self, message: Any) -> tuple[bytes | None, EmailMessage | None]:
        """What goes over SMTP: the bytes written directly (notifications/mime.py), or, for a
        message that is not plain enough for that, the `email` package's message."""
        raw = wire(self.sender, message, message_id(message.idempotency_key))
        return (raw, None) if raw is not None else (None, self.build(message))

    def send(self, message: Any) -> None:
        """One message on a connection of its own."""
        with self.session() as session:
            session.send(message)

    @contextmanager
    def session(self) -> Iterator[SmtpSession]:
        """One SMTP connection for a batch, opened at its first message, closed (QUIT) at the
        end of the block."""
        session = SmtpSession(self)
        try:
            yield session
        finally:
            session.close()


class _Dropped(Exception):
    """The connection is gone (or could not be opened) after `cause`; it had delivered
    `carried` messages before."""

    def __init__(self, cause: BaseException, carried: int) -> None:
        super().__init__(cause)
        self.cause, self.carried = cause, carried


class SmtpSession:
    """Many messages over one SMTP connection (MAIL, RCPT, DATA each; RSET after a refusal).

    A failure of one message (a refused sender or recipient, a refused DATA) fails only that
    message and keeps the connection. A connection that drops after it has carried messages
    (the server closed it, answered 421, or the socket broke) is opened again once and the
    message in hand sent again — at least once: if the server had taken it before the drop,
    it arrives twice with the same Message-ID. A connection that cannot be opened, or fails
    before carrying anything, means the server is down for this batch: the message and every
    later one of the session fail at once (retried with backoff) without trying again."""

    def __init__(self, sender: SmtpSender) -> None:
        self.sender = sender
        self._smtp: smtplib.SMTP | None = None
        self._carried = 0  # messages the open connection has delivered
        self._down: DeliveryError | None = None
        self.connections = 0

    def send(self, message: Any) -> None:
        if self._down is not None:
            raise DeliveryError(str(self._down))
        mail = self.sender.wire(message)
        try:
            self._send(mail, message.recipient)
            return
        except _Dropped as exc:
            if not exc.carried:  # a new connection failed: the server is down for this batch
                raise self._gone(exc) from exc.cause
        try:  # it had carried messages: open a new one and send this one again
            self._send(mail, message.recipient)
        except _Dropped as exc:
            raise self._gone(exc) from exc.cause

    def _gone(self, dropped: _Dropped) -> DeliveryError:
        self._down = DeliveryError(self._describe(dropped.cause))
        return self._down

    def _send(self, mail: tuple[bytes | None, EmailMessage | None], recipient: str) -> None:
        smtp = self._smtp or self._connect()
        carried = self._carried
        raw, built = mail
        try:
            if raw is not None:  # what send_message would send, from its own headers
                smtp.sendmail(self.sender.sender, [recipient], raw)
            else:
                assert built is not None
                smtp.send_message(built)
        except (
            smtplib.SMTPRecipientsRefused,
            smtplib.SMTPSenderRefused,
            smtplib.SMTPDataError,
            smtplib.SMTPNotSupportedError,
        ) as exc:
            if smtp.sock is None:  # a 421: smtplib closed the connection
                self._smtp = None
                raise _Dropped(exc, carried) from exc
            raise DeliveryError(self._describe(exc)) from exc  # this message only
        except (OSError, smtplib.SMTPException) as exc:  # disconnected, reset, timed out
            self._discard()
            raise _Dropped(exc, carried) from exc
        self._carried += 1

    def _connect(self) -> smtplib.SMTP:
        try:
            smtp = smtplib.SMTP(self.sender.host, self.sender.port, timeout=self.sender.timeout)
        except (OSError, smtplib.SMTPException) as exc:
            raise _Dropped(exc, 0) from exc
        self._smtp, self._carried = smtp, 0
        self.connections += 1
        return smtp

    def _describe(self, exc: BaseException) -> str:
        return f"SMTP {self.sender.host}:{self.sender.port}: {exc}"

    def _discard(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            smtp.close()

    def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        try:
            smtp.quit()
        except (OSError, smtplib.SMTPException):
            smtp.close()  # everything was already sent and answered: nothing is lost


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
