"""The e-mail bytes written directly (notifications/mime.py) are the bytes the `email` package
gives for the same message (SmtpSender.build, flattened as smtplib's send_message does), or the
message is left to the package. Held over generated messages — CJK and ASCII, spaces, long
lines, empty and missing HTML, many dates — and over the sweep's own reminders."""

from __future__ import annotations

import datetime as dt
import io
from email.generator import BytesGenerator
from types import SimpleNamespace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from jinqiu.notifications.channels import SmtpSender
from jinqiu.notifications.mime import boundary, wire
from jinqiu.notifications.outbox import message_id

SENDER = SmtpSender("127.0.0.1", 25, "jinqiu@weihai.example.org")


def flattened(message: Any) -> bytes:
    """As smtplib.SMTP.send_message flattens a message with ASCII addresses."""
    with io.BytesIO() as out:
        BytesGenerator(out).flatten(SENDER.build(message), linesep="\r\n")
        return out.getvalue()


def direct(message: Any) -> bytes | None:
    return wire(SENDER.sender, message, message_id(message.idempotency_key))


def row(**fields: Any) -> Any:
    base: dict[str, Any] = {
        "idempotency_key": "reminder:1:42:before:3:email",
        "recipient": "wh-hc-001@example.org",
        "subject": "【还剩3个工作日】报送材料（威海市环翠区总工会）",
        "body_text": "威海市环翠区总工会：\n\n请于2024-07-31前完成。\n",
        "body_html": "<p>请于 <strong>2024-07-31</strong> 前完成。</p>\n",
        "created_at": dt.datetime(2024, 7, 26, 0, 0, tzinfo=dt.UTC),
    }
    return SimpleNamespace(**{**base, **fields})


TEXT = st.text(
    alphabet=st.sampled_from(
        [*"金秋助学威海环翠区工会【】（）：，。 abcXYZ019-_=.?<>&\"'\t", "\n"]
    ),
    max_size=400,
)
LONG_LINES = st.builds(
    lambda n, c: c * n, st.integers(0, 300), st.sampled_from(["a", "金", "a b ", "="])
)


class TestSameBytes:
    def test_a_reminder_goes_the_direct_way_with_the_package_s_bytes(self) -> None:
        message = row()
        raw = direct(message)
        assert raw is not None and raw == flattened(message)
        assert boundary(message.idempotency_key).encode() in raw

    @settings(max_examples=300)
    @given(
        subject=TEXT.filter(lambda s: "\n" not in s and s.strip() != ""),
        text=st.one_of(TEXT, LONG_LINES),
        html=st.one_of(st.none(), st.just(""), TEXT, LONG_LINES),
        key=st.from_regex(r"[a-z]{1,8}:[0-9]{1,6}(:[a-z]{1,9}){0,3}", fullmatch=True),
        at=st.datetimes(
            min_value=dt.datetime(2000, 1, 1),
            max_value=dt.datetime(2099, 12, 31),
            timezones=st.sampled_from([dt.UTC, dt.timezone(dt.timedelta(hours=8))]),
        ),
    )
    def test_generated_messages_are_the_same_bytes_or_left_to_the_package(
        self, subject: str, text: str, html: str | None, key: str, at: dt.datetime
    ) -> None:
        message = row(
            subject=subject, body_text=text, body_html=html, idempotency_key=key, created_at=at
        )
        raw = direct(message)
        assert raw is None or raw == flattened(message)

    @settings(max_examples=300)
    @given(
        st.text(
            alphabet=st.sampled_from(
                list("金秋助学威海环翠区工会【】（）：，。《》“”abcXYZ019-_=?.<>&\"'()!*+/%")
            ),
            min_size=1,
            max_size=300,
        )
    )
    def test_subjects_without_white_space_fold_as_the_package_folds_them(
        self, subject: str
    ) -> None:
        message = row(subject=subject)
        assert direct(message) == flattened(message)

    def test_what_is_not_plain_is_left_to_the_package(self) -> None:
        for message in (
            row(recipient="张三 <wh@example.org>"),
            row(recipient="用户@example.org"),
            row(subject="两行\n主题"),
            row(idempotency_key="k" * 100),
            row(idempotency_key="=?utf-8?q?x?="),
        ):
            assert direct(message) is None

    def test_a_resend_is_the_same_bytes_either_way(self) -> None:
        message = row(recipient="张三 <wh@example.org>")
        assert flattened(message) == flattened(message)
        assert direct(row()) == direct(row())
