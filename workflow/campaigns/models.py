"""A campaign (金秋助学活动) as its notice sets it: phases, deadlines, rules and funds."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from jinqiu.storage.sqltypes import JSONType, UTCDateTime


class Campaign(SQLModel, table=True):
    __tablename__ = "campaign"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    year: int
    organizer_unit_id: int = Field(foreign_key="unit.id", index=True)
    # Always 1: a loaded campaign is never edited (no command or endpoint changes the row; the
    # same name and year cannot be loaded twice). Caches key on rules_token, not on this.
    revision: int = 1
    # New and random whenever the row is written: processes cache compiled rules under it, so a
    # changed campaign, or a deleted one whose id SQLite hands out again, is never mistaken.
    rules_token: str = Field(default="", max_length=32)
    publicity_working_days: int = 5
    approval_levels: list[str] = Field(sa_column=Column(JSONType, nullable=False))
    reminders: dict[str, Any] = Field(sa_column=Column(JSONType, nullable=False))
    eligibility: dict[str, Any] = Field(sa_column=Column(JSONType, nullable=False))
    aid_rules: list[dict[str, Any]] = Field(sa_column=Column(JSONType, nullable=False))
    # The campaign file's categories and application types as loaded (null: loaded before 0019,
    # none declared).
    categories: list[dict[str, Any]] | None = Field(
        default=None, sa_column=Column(JSONType, nullable=True)
    )
    application_types: list[dict[str, Any]] | None = Field(
        default=None, sa_column=Column(JSONType, nullable=True)
    )
    # The campaign file's `opinions` and `aid_priority` (migration 0018; null: none asked).
    opinions: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONType, nullable=True))
    aid_priority: dict[str, Any] | None = Field(
        default=None, sa_column=Column(JSONType, nullable=True)
    )
    calendar: dict[str, Any] = Field(sa_column=Column(JSONType, nullable=False))
    # The follow-up rule (回访: visits before a case closes, and its source); None: a bare close.
    follow_up: dict[str, Any] | None = Field(
        default=None, sa_column=Column(JSONType, nullable=True)
    )
    # The printable forms its notice prescribes (schema.FormName), the first a case's own.
    forms: list[str] = Field(
        default_factory=list, sa_column=Column(JSONType, nullable=False, server_default="[]")
    )
    # The campaign file's `statistics` (its tables, cut-off date, source); None: loaded before
    # 0017, every table as before.
    statistics: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONType))
    created_at: dt.datetime = Field(sa_column=Column(UTCDateTime, nullable=False))


class CampaignPhase(SQLModel, table=True):
    __tablename__ = "campaign_phase"
    __table_args__ = (UniqueConstraint("campaign_id", "key"),)

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    position: int
    key: str = Field(max_length=64)
    name: str = Field(max_length=200)
    starts: dt.date
    ends: dt.date
    cases_leave: list[str] = Field(sa_column=Column(JSONType, nullable=False))


class CampaignStateDeadline(SQLModel, table=True):
    """By when cases must have left a state (from the phases' `cases_leave`): what "overdue" means."""

    __tablename__ = "campaign_state_deadline"
    __table_args__ = (UniqueConstraint("campaign_id", "state"),)

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id")
    state: str = Field(max_length=20)
    leave_by: dt.date


class CampaignDeadline(SQLModel, table=True):
    __tablename__ = "campaign_deadline"
    __table_args__ = (UniqueConstraint("campaign_id", "key"),)

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    key: str = Field(max_length=64)
    title: str = Field(max_length=300)
    due: dt.date
    # Either a level (every unit acting at it) or `responsible`, a set of units (the file's
    # Responsible: levels, parent, units, label).
    responsible_level: str | None = Field(default=None, max_length=20)
    responsible: dict[str, Any] | None = Field(
        default=None, sa_column=Column(JSONType, nullable=True)
    )
    done_when: dict[str, Any] = Field(sa_column=Column(JSONType, nullable=False))


class FundSource(SQLModel, table=True):
    """One budget line; a final approval reserves from it, a payment moves reserved to paid."""

    __tablename__ = "fund_source"
    __table_args__ = (
        UniqueConstraint("campaign_id", "source"),
        CheckConstraint("reserved_fen >= 0 AND paid_fen >= 0", name="fund_non_negative"),
        CheckConstraint("reserved_fen + paid_fen <= budget_fen", name="fund_not_overdrawn"),
    )

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    position: int
    source: str = Field(max_length=32)  # government / donation / union / other (附件1 A1..A4)
    # BIGINT: a province's budget line passes INTEGER's 21,474,836.47 yuan.
    budget_fen: int = Field(sa_column=Column(BigInteger, nullable=False))
    reserved_fen: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    paid_fen: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
