"""The reminder ledger: what was sent, once (what units owe is read from cases and reports)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from jinqiu.storage.sqltypes import UTCDateTime


class ReminderLedger(SQLModel, table=True):
    """One row per reminder that exists: the unique key makes it exist at most once, whatever
    number of sweeps run at the same time, crash or catch up. Written in the same transaction
    as its outbox messages."""

    __tablename__ = "reminder_ledger"
    __table_args__ = (
        UniqueConstraint("deadline_id", "unit_id", "kind", "occurrence", name="uq_reminder_once"),
    )

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    deadline_id: int = Field(foreign_key="campaign_deadline.id")
    unit_id: int = Field(foreign_key="unit.id", index=True)  # the unit that owes the work
    kind: str = Field(max_length=12)  # before / overdue / escalation
    occurrence: int  # working days before the due date, or working days overdue
    notified_unit_id: int = Field(foreign_key="unit.id")  # the unit itself, or its parent
    pending_total: int
    created_at: dt.datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
