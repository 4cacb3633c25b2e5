"""The reminder ledger (what was sent, once) and the reports units submit."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from jinqiu.workflow.sqltypes import JSONType, UTCDateTime


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


class ReportSubmission(SQLModel, table=True):
    """A unit's report (e.g. its statistics table) — what `report_submitted` deadlines wait for.
    Filing it again adds the next revision; the latest counts, none is overwritten."""

    __tablename__ = "report_submission"
    __table_args__ = (
        UniqueConstraint("campaign_id", "unit_id", "kind", "revision", name="uq_report_revision"),
    )

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id")
    unit_id: int = Field(foreign_key="unit.id", index=True)
    kind: str = Field(max_length=32)
    revision: int = Field(default=1, sa_column_kwargs={"server_default": "1"})
    note: str | None = None
    # Figures no case records (work-study posts, graduates helped into jobs, donors), by item code.
    figures: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType, nullable=False))
    submitted_by: str = Field(max_length=64)
    submitted_at: dt.datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
