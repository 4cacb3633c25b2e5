"""The audit trail: one row per transition or override, chained by hash per case."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import CheckConstraint, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from jinqiu.storage.sqltypes import JSONType, UTCDateTime


class AuditEntry(SQLModel, table=True):
    __tablename__ = "audit_entry"
    __table_args__ = (UniqueConstraint("case_id", "seq"),)

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="aid_case.id")
    seq: int  # 1, 2, 3 … within the case
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


class PiiAccess(SQLModel, table=True):
    """Every read of a full identity or bank-card number: who, of which case — or of which survey
    register row, for a family surveyed without a case — which fields, when."""

    __tablename__ = "pii_access"
    __table_args__ = (
        CheckConstraint(
            "(case_id IS NULL) <> (survey_entry_id IS NULL)", name="ck_pii_access_one_subject"
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    case_id: int | None = Field(default=None, foreign_key="aid_case.id", index=True)
    survey_entry_id: int | None = Field(default=None, foreign_key="survey_entry.id", index=True)
    actor: str = Field(max_length=64)
    actor_unit: str | None = Field(default=None, max_length=64)
    fields: list[str] = Field(default_factory=list, sa_column=Column(JSONType, nullable=False))
    purpose: str = Field(max_length=64)  # e.g. "GET /api/cases/{id}"
    at: dt.datetime = Field(sa_column=Column(UTCDateTime, nullable=False, index=True))
