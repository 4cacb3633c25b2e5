"""An outbox e-mail's bytes on the wire, written directly: the same bytes the `email` package
gives for `SmtpSender.build`'s message flattened as `smtplib.SMTP.send_message` flattens it
(policy.default, CRLF), at a fraction of its cost (it parses every header it is given back).

Only what is plain goes this way — ASCII addresses, key and sender, and no line break in the
subject; anything else returns None and is built by the `email` package as before. The one
header folded by the package here is the Subject (RFC 2047 encoded words). Each part's body is
encoded by the package's own choice (`email.contentmanager`: 7bit, base64 or quoted-printable).
tests/notifications/test_mime.py holds the two to the same bytes."""

from __future__ import annotations

import base64
import hashlib
import re
import string
from email import _encoded_words, contentmanager, policy  # type: ignore[attr-defined]
from email.utils import format_datetime
from typing import Any

# The package's multipart boundary has this shape (15 "=", 19 digits, "=="); its digits are
# random there, derived from the idempotency key here: a resend is the same bytes.
_BOUNDARY_DIGITS = 19
_ATOM = r"[A-Za-z0-9_%+\-]+"
_PLAIN = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*")
_TOKEN = re.compile(r"[!-~]+")  # printable ASCII, no space
_NL = re.compile(r"\r\n|\r|\n")  # email.generator.NLCRE
_SMTP = policy.default.clone(linesep="\r\n")
_MAX = _SMTP.max_line_length or 78
CRLF = "\r\n"


def boundary(idempotency_key: str) -> str:
    digits = int(hashlib.sha256(idempotency_key.encode()).hexdigest(), 16) % 10**_BOUNDARY_DIGITS
    return "=" * 15 + f"{digits:0{_BOUNDARY_DIGITS}d}" + "=="


def _short(name: str, value: str) -> str | None:
    """`name: value` when the package would write it as it is (one short ASCII token)."""
    line = f"{name}: {value}"
    plain = _TOKEN.fullmatch(value) and "=?" not in value and len(line) <= _MAX
    return line + CRLF if plain else None


_Q_SAFE = b"-!*+/ " + string.ascii_letters.encode() + string.digits.encode()
_CHROME = len("=?utf-8?b??=")  # the RFC 2047 chrome around an encoded word's text


def _encoded_word(text: str) -> str:
    """email._encoded_words.encode(text, "utf-8"): Q unless it is 5 or more longer than B."""
    raw = text.encode("utf-8")
    q_len = len(raw) + 2 * len(raw.translate(None, _Q_SAFE))  # =XX for each unsafe byte
    b_len = (len(raw) + 2) // 3 * 4
    if q_len - b_len < 5:
        return f"=?utf-8?q?{_encoded_words.encode_q(raw)}?="
    return f"=?utf-8?b?{base64.b64encode(raw).decode('ascii')}?="


def _subject(subject: str) -> str:
    """The Subject line as the package folds it. Written here for one word of text that must
    be encoded (no white space, not ASCII): the package's `_fold_as_ew` — on each line the
    longest head that fits, as one encoded word — with each word's length found in C, not by
    a loop over its bytes for every character dropped. Anything else: the package folds it."""
    if (
        subject.isascii()
        or not subject.isprintable()
        or any(c.isspace() for c in subject)
        or "=?" in subject
    ):
        return str(_SMTP.header_factory("Subject", subject).fold(policy=_SMTP))
    lines = ["Subject: "]
    rest = subject
    while rest:
        room = _MAX - len(lines[-1])
        take = room - _CHROME
        if take <= 0:
            lines.append(" ")
            continue
        word_text = rest[:take]
        word = _encoded_word(word_text)
        while len(word) > room:
            word_text = word_text[:-1]
            word = _encoded_word(word_text)
        lines[-1] += word
        rest = rest[len(word_text) :]
        if rest:
            lines.append(" ")
    return CRLF.join(lines) + CRLF


def _part(text: str, subtype: str) -> tuple[str, str]:
    """A text part's Content-Type and Content-Transfer-Encoding lines, and its body (CRLF)."""
    cte, payload = contentmanager._encode_text(text, "utf-8", None, policy.default)  # type: ignore[attr-defined]
    head = (
        f'Content-Type: text/{subtype}; charset="utf-8"{CRLF}Content-Transfer-Encoding: {cte}{CRLF}'
    )
    return head, CRLF.join(_NL.split(payload))


def wire(sender: str, message: Any, message_id: str) -> bytes | None:
    """The message's bytes as send_message sends them, or None: not plain enough for this path."""
    subject = message.subject
    if (
        not _PLAIN.fullmatch(sender)
        or not _PLAIN.fullmatch(message.recipient)
        or "\r" in subject
        or "\n" in subject
    ):
        return None
    fixed = [
        _short("From", sender),
        _short("To", message.recipient),
        _short("Message-ID", message_id),
        _short("X-Jinqiu-Idempotency-Key", message.idempotency_key),
    ]
    if any(line is None for line in fixed):
        return None
    from_, to, mid, key = fixed
    date = f"Date: {format_datetime(message.created_at)}{CRLF}"
    subject_line = _subject(subject)
    head = f"{from_}{to}{subject_line}{mid}{key}{date}"
    text_head, text_body = _part(message.body_text, "plain")
    if not message.body_html:
        out = f"{head}{text_head}MIME-Version: 1.0{CRLF}{CRLF}{text_body}"
    else:
        html_head, html_body = _part(message.body_html, "html")
        b = boundary(message.idempotency_key)
        if b in text_body or b in html_body:
            return None
        out = (
            f"{head}MIME-Version: 1.0{CRLF}Content-Type: multipart/alternative;{CRLF}"
            f' boundary="{b}"{CRLF}{CRLF}'
            f"--{b}{CRLF}{text_head}{CRLF}{text_body}"
            f"{CRLF}--{b}{CRLF}{html_head}MIME-Version: 1.0{CRLF}{CRLF}{html_body}"
            f"{CRLF}--{b}--{CRLF}"
        )
    return out.encode("ascii", "surrogateescape")
