"""The outbox (messages waiting to leave) and the in-app inbox."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from sqlalchemy import Column, Index
from sqlmodel import Field, SQLModel

from jinqiu.storage.sqltypes import JSONType, UTCDateTime


class Channel(StrEnum):
    EMAIL = "email"
    WEBHOOK = "webhook"


class OutboxStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"  # gave up after the last retry; visible to admins


class OutboxMessage(SQLModel, table=True):
    """Written in the same transaction as what caused it; sent only after that commits.

    `idempotency_key` is unique: enqueueing the same message twice is a no-op, and the e-mail
    Message-ID is derived from it, so a resend after a crash is recognisable downstream."""

    __tablename__ = "outbox_message"
    __table_args__ = (Index("ix_outbox_due", "status", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    idempotency_key: str = Field(max_length=200, unique=True)
    channel: str = Field(max_length=16)
    recipient: str = Field(max_length=500)  # an e-mail address or a webhook URL
    unit_code: str | None = Field(default=None, max_length=64, index=True)  # whose contact it is
    subject: str = Field(max_length=300)
    body_text: str
    body_html: str | None = None
    payload: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSONType, nullable=False)
    )
    status: str = Field(default=OutboxStatus.PENDING.value, max_length=10)
    attempts: int = 0
    next_attempt_at: dt.datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    claimed_by: str | None = Field(default=None, max_length=100)
    claimed_until: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    last_error: str | None = None
    created_at: dt.datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    sent_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime))


class InboxMessage(SQLModel, table=True):
    """An in-app notification addressed to a unit: every user of that unit sees it, and reads it
    for themselves (an `InboxRead` each). `read_at`/`read_by` are the unit's first read: a
    manager sees that the unit has seen a reminder, and who saw it first."""

    __tablename__ = "inbox_message"

    id: int | None = Field(default=None, primary_key=True)
    idempotency_key: str = Field(max_length=200, unique=True)
    unit_code: str = Field(max_length=64, index=True)
    title: str = Field(max_length=300)
    body: str
    link: str | None = Field(default=None, max_length=500)
    created_at: dt.datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    read_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    read_by: str | None = Field(default=None, max_length=64)


class InboxRead(SQLModel, table=True):
    """One user's read of one inbox item, written once (INSERT … ON CONFLICT DO NOTHING: two tabs
    marking the same item give one row). Keyed by username as `read_by` and the tokens are; no
    foreign key to the users table, which lives above notifications/ (users are deactivated,
    never deleted)."""

    __tablename__ = "inbox_read"

    # The key leads with the user: a user's receipts are one range of it (the unread count
    # anti-joins the unit's items against them), and (user, item) is one lookup.
    username: str = Field(max_length=64, primary_key=True)
    inbox_message_id: int = Field(foreign_key="inbox_message.id", primary_key=True)
    read_at: dt.datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
