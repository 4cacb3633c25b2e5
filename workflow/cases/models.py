"""A case (one student's aid application) and the household it was surveyed from.

Worker and student rows belong to their case: they are the survey form (Weihai 附件3,
Dalian 附件1/2) as it was filed, so a later campaign never rewrites an earlier case.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Column, ColumnElement, Index, UniqueConstraint, literal_column, text
from sqlmodel import Field, SQLModel

from jinqiu.states import ENDED_WITHOUT_AID
from jinqiu.storage.sqltypes import JSONType, UTCDateTime

_ENDED = sorted(s.value for s in ENDED_WITHOUT_AID)
_ENDED_SQL = ", ".join(f"'{state}'" for state in _ENDED)


def still_open(state: ColumnElement[str]) -> ColumnElement[bool]:
    """`state NOT IN (…the ended states…)` as the one-application index's WHERE writes it: its
    literals, in its order. SQLite uses a partial index only for a query whose WHERE repeats the
    index's; with bound parameters it searched every case of the campaign instead (one lookup
    of an import's chunk grew with the campaign: ~4 ms a chunk at its start, ~75 ms at 100,000 cases)."""
    return state.not_in([literal_column(f"'{value}'") for value in _ENDED])


class Worker(SQLModel, table=True):
    """困难职工 / 农民工: the applicant household."""

    __tablename__ = "worker"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=50)
    id_number: str = Field(max_length=18, index=True)
    gender: str = Field(max_length=6)  # derived from the identity number
    birth_date: dt.date  # derived from the identity number
    phone: str | None = Field(default=None, max_length=30)
    work_unit: str | None = Field(default=None, max_length=200)
    address: str | None = Field(default=None, max_length=300)
    household_size: int | None = None
    monthly_income_per_capita_fen: int | None = None  # 家庭月人均收入
    employment_status: str | None = Field(default=None, max_length=50)
    hardship_cause: str | None = Field(default=None, max_length=500)  # 家庭致困原因
    archive_status: str = Field(default="none", max_length=10)  # deep / relative / accident / none
    archived_on: dt.date | None = None
    # 脱困退出: the day the family left the hardship archive, learnt on a follow-up visit; a
    # family that left is not renewed (workflow/followup/renewal.py).
    archive_exited_on: dt.date | None = None
    categories: list[str] = Field(default_factory=list, sa_column=Column(JSONType, nullable=False))
    bank_card_number: str | None = Field(default=None, max_length=32)
    # 户名: whose name the account is in (the worker's, the student's or the guardian's);
    # unset: the worker's. The bank's name comes from the card's issuer prefix.
    bank_card_holder: str | None = Field(default=None, max_length=50)
    bank_name: str | None = Field(default=None, max_length=50)


class Student(SQLModel, table=True):
    __tablename__ = "student"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=50)
    id_number: str = Field(max_length=18, index=True)
    gender: str = Field(max_length=6)
    birth_date: dt.date
    relation: str | None = Field(default=None, max_length=20)  # 与职工关系
    ethnicity: str | None = Field(default=None, max_length=20)  # 民族
    political_status: str | None = Field(default=None, max_length=20)  # 政治面貌
    hukou_type: str | None = Field(default=None, max_length=20)  # 户口类型
    health_status: str | None = Field(default=None, max_length=50)  # 健康状况
    medical_insurance: str | None = Field(default=None, max_length=50)  # 医保状况
    education_level: str = Field(max_length=20)  # 当前学历
    school: str | None = Field(default=None, max_length=200)
    major: str | None = Field(default=None, max_length=200)
    enrollment_year: int | None = None  # 入学年份 / 考取年度
    program_years: int | None = None  # 年制
    exam_score: int | None = None  # 中考/高考分数
    admitted_school: str | None = Field(default=None, max_length=200)  # 录取学校
    tier: str | None = Field(default=None, max_length=20)  # 一本 / 二本 / 三本 batch
    tuition_invoice_fen: int | None = None  # 学费发票: basis of tuition-based aid
    already_aided_by: str | None = Field(default=None, max_length=200)  # 已获政府或其他资助
    guardian_name: str | None = Field(default=None, max_length=50)  # 监护人 (may hold the card)


class Case(SQLModel, table=True):
    __tablename__ = "aid_case"
    __table_args__ = (
        # One student, one application per campaign (unless rejected or withdrawn) — the
        # database enforces it under races.
        Index(
            "uq_active_case_per_student",
            "campaign_id",
            "student_id_number",
            unique=True,
            sqlite_where=text(f"state NOT IN ({_ENDED_SQL})"),
            postgresql_where=text(f"state NOT IN ({_ENDED_SQL})"),
        ),
        Index("ix_case_campaign_unit_state", "campaign_id", "unit_id", "state"),
        # The sweep's "publicity over?" query reads only the cases whose period has ended.
        Index("ix_case_state_publicity_end", "state", "publicity_ends_on"),
        # Renewals (续助) only: the dashboard counts them per campaign and subtree through this
        # index, never scanning the campaign's other cases.
        Index(
            "ix_case_renewals",
            "campaign_id",
            "unit_id",
            sqlite_where=text("renewal_of IS NOT NULL"),
            postgresql_where=text("renewal_of IS NOT NULL"),
        ),
        # Cases holding money only, with what the funds reconciliation adds up (covering): the
        # dashboard's and the funds page's per-fund sums cost the funded cases, not the campaign.
        Index(
            "ix_case_funded",
            "campaign_id",
            "fund_source_id",
            "state",
            "paid_on",
            "approved_amount_fen",
            sqlite_where=text("fund_source_id IS NOT NULL"),
            postgresql_where=text("fund_source_id IS NOT NULL"),
        ),
        UniqueConstraint("worker_id"),
        UniqueConstraint("student_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id")
    unit_id: int = Field(foreign_key="unit.id", index=True)
    worker_id: int = Field(foreign_key="worker.id")
    student_id: int = Field(foreign_key="student.id")
    student_id_number: str = Field(max_length=18)
    # No index on the state alone: ix_case_state_publicity_end leads with it (migration 0032).
    state: str = Field(max_length=20)
    version: int = 1
    # Index into the campaign's approval levels of the one the case waits at; the levels before
    # it were approved or are not on the unit's path (skipped, audited).
    approval_step: int = 0
    objection_open: bool = False
    return_reason: str | None = None  # kept when a case is returned for correction (补正)
    publicity_started_on: dt.date | None = None
    publicity_ends_on: dt.date | None = Field(default=None, index=True)
    approved_amount_fen: int | None = None
    fund_source_id: int | None = Field(default=None, foreign_key="fund_source.id")
    paid_on: dt.date | None = None
    payment_failures: int = 0
    # The payment batch whose bank file holds the case, until the bank's result is applied:
    # the case is paid (or found failed) through that batch only, and cannot be cancelled.
    # (No foreign key: the batch's rows point at cases, and tables are not built in a cycle.)
    payment_batch_id: int | None = Field(default=None, index=True)
    # Follow-up visits (回访) recorded while in follow_up: what the close guard counts.
    follow_up_visits: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    # 续助: the earlier case this one continues (the same student, a later campaign). No
    # foreign key, as payment_batch_id: the column is added to a table SQLite cannot alter so.
    renewal_of: int | None = Field(default=None, index=True)
    audit_seq: int = 0  # number of audit entries: the chain's length
    audit_head: str = Field(default="", max_length=64)  # hash of the latest audit entry
    # The campaign's application type and the answers on its form (null: none declared).
    application_type: str | None = Field(default=None, max_length=32)
    form: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONType, nullable=True))
    created_by: str = Field(max_length=64)
    created_at: dt.datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    updated_at: dt.datetime = Field(sa_column=Column(UTCDateTime, nullable=False))


class Attachment(SQLModel, table=True):
    """A document attached to a case (workflow/attachments/ writes and reads them; here, below
    the engine, so submit can ask which kinds a case has)."""

    __tablename__ = "attachment"
    # The same content attached twice as the same kind is one attachment.
    __table_args__ = (UniqueConstraint("case_id", "kind", "sha256", name="uq_attachment_content"),)

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="aid_case.id", index=True)
    kind: str = Field(max_length=32)
    filename: str = Field(max_length=200)  # as uploaded, cleaned: shown, never used as a path
    media_type: str = Field(max_length=32)  # sniffed from the content
    size: int
    sha256: str = Field(max_length=64)
    uploaded_by: str = Field(max_length=64)
    uploaded_at: dt.datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
