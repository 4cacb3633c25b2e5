"""阳光就业 and 勤工俭学: an employment record (a noun on the engine) with its help and its audit
chain; work-study posts and their participants.

A record is one graduate of an aided family (a case of the campaign whose aid was paid) in one
campaign: at most one per case (a unique constraint). Help offered is a row of its own (the
statistics count it in SQL) and an entry on the record's chain (who, when, what). A participant
is a case on a post; removing one keeps the row (`active` false, who and when), and a partial
unique index keeps a case on a post at most once while active.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import BigInteger, Column, Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from jinqiu.storage.sqltypes import JSONType, UTCDateTime


class EmploymentRecord(SQLModel, table=True):
    __tablename__ = "employment_record"
    __table_args__ = (
        UniqueConstraint("campaign_id", "case_id", name="uq_employment_record_campaign_case"),
        Index("ix_employment_record_campaign_unit_state", "campaign_id", "unit_id", "state"),
    )

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id")
    case_id: int = Field(foreign_key="aid_case.id", index=True)
    unit_id: int = Field(foreign_key="unit.id")  # the case's unit: scope and statistics
    state: str = Field(max_length=20)
    version: int = 1
    audit_seq: int = 0
    audit_head: str = Field(default="", max_length=64)
    graduation_year: int  # 毕业年份: this campaign's year = 应届, earlier = 往届
    school: str = Field(max_length=200)  # 毕业院校
    major: str | None = Field(default=None, max_length=200)
    studies_locally: bool = False  # 在本地就读 (Dalian 15A, Qingpu 10A)
    destination: str | None = Field(default=None, max_length=200)  # employer or school
    created_by: str = Field(max_length=64)
    created_at: dt.datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    updated_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime))


class EmploymentHelp(SQLModel, table=True):
    """One piece of help offered to a graduate (帮扶): its kind, when, what (a plan's text), and
    for a loan or a job-seeking subsidy the amount."""

    __tablename__ = "employment_help"

    id: int | None = Field(default=None, primary_key=True)
    record_id: int = Field(foreign_key="employment_record.id", index=True)
    kind: str = Field(max_length=32)
    given_on: dt.date
    text: str | None = Field(default=None, max_length=2000)
    amount_fen: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    recorded_by: str = Field(max_length=64)
    recorded_at: dt.datetime = Field(sa_column=Column(UTCDateTime, nullable=False))


class EmploymentRecordAudit(SQLModel, table=True):
    __tablename__ = "employment_record_audit"
    __table_args__ = (UniqueConstraint("record_id", "seq"),)

    id: int | None = Field(default=None, primary_key=True)
    record_id: int = Field(foreign_key="employment_record.id")
    seq: int
    actor: str = Field(max_length=64)
    actor_unit: str | None = Field(default=None, max_length=64)
    event: str = Field(max_length=32)
    from_state: str | None = Field(default=None, max_length=20)
    to_state: str = Field(max_length=20)
    opinion: str | None = None
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType, nullable=False))
    at: dt.datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


class WorkStudyPost(SQLModel, table=True):
    """勤工俭学岗位: offered by `employer` through a union (`unit_id`) in a campaign."""

    __tablename__ = "work_study_post"
    __table_args__ = (Index("ix_work_study_post_campaign_unit", "campaign_id", "unit_id"),)

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id")
    unit_id: int = Field(foreign_key="unit.id")
    title: str = Field(max_length=100)  # 岗位名称
    employer: str = Field(max_length=200)  # 用工单位
    kind: str = Field(max_length=20)  # workflow.employment.service.POST_KINDS
    hours_per_week: int
    hourly_pay_fen: int  # 每小时报酬
    is_open: bool = True
    created_by: str = Field(max_length=64)
    created_at: dt.datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    closed_by: str | None = Field(default=None, max_length=64)
    closed_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime))


class WorkStudyParticipant(SQLModel, table=True):
    __tablename__ = "work_study_participant"
    __table_args__ = (
        Index(
            "uq_work_study_participant_active",
            "post_id",
            "case_id",
            unique=True,
            sqlite_where=text("active"),
            postgresql_where=text("active"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    post_id: int = Field(foreign_key="work_study_post.id", index=True)
    case_id: int = Field(foreign_key="aid_case.id", index=True)
    active: bool = True
    added_by: str = Field(max_length=64)
    added_at: dt.datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    removed_by: str | None = Field(default=None, max_length=64)
    removed_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
