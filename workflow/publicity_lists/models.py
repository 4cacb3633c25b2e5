"""A publicity list (公示名单), the cases it names, and the objections (异议) raised against it.

The list row carries what the engine needs of any noun (state, version, audit head); its audit
table has the columns of `audit_entry` with the list's id in `list_id`. A case is on at most one
live (draft or published) list at a time: a partial unique index on the members that are
`active`, so two lists built at once cannot both take it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Column, Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from jinqiu.storage.sqltypes import JSONType, UTCDateTime


class PublicityList(SQLModel, table=True):
    __tablename__ = "publicity_list"
    __table_args__ = (Index("ix_publicity_list_state_ends_on", "state", "ends_on"),)

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    unit_id: int = Field(foreign_key="unit.id", index=True)
    state: str = Field(max_length=20)
    version: int = 1
    audit_seq: int = 0
    audit_head: str = Field(default="", max_length=64)
    # The start asked for (None: the day it is published) and the length in working days.
    requested_starts_on: dt.date | None = None
    working_days: int
    starts_on: dt.date | None = None  # fixed when published
    ends_on: dt.date | None = None  # the last day of publicity, inclusive
    created_by: str = Field(max_length=64)
    created_at: dt.datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    updated_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime))


class PublicityListMember(SQLModel, table=True):
    __tablename__ = "publicity_list_member"
    __table_args__ = (
        UniqueConstraint("list_id", "case_id"),
        Index(
            "uq_publicity_member_live_case",
            "case_id",
            unique=True,
            sqlite_where=text("active"),
            postgresql_where=text("active"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    list_id: int = Field(foreign_key="publicity_list.id", index=True)
    case_id: int = Field(foreign_key="aid_case.id")
    active: bool = True  # the list is a draft or published and the case is still on it


class PublicityListAudit(SQLModel, table=True):
    __tablename__ = "publicity_list_audit"
    __table_args__ = (UniqueConstraint("list_id", "seq"),)

    id: int | None = Field(default=None, primary_key=True)
    list_id: int = Field(foreign_key="publicity_list.id")
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


class Objection(SQLModel, table=True):
    """异议: who objected to which case of which list, how to reach them, what they said; how
    it was resolved (upheld: the case is rejected; dismissed: it goes on), by whom and when."""

    __tablename__ = "objection"
    __table_args__ = (
        # One open objection per case at a time: the case's own flag says "held" or not.
        Index(
            "uq_objection_open_case",
            "case_id",
            unique=True,
            sqlite_where=text("status = 'open'"),
            postgresql_where=text("status = 'open'"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    list_id: int = Field(foreign_key="publicity_list.id", index=True)
    case_id: int = Field(foreign_key="aid_case.id", index=True)
    objector: str = Field(max_length=50)
    contact: str = Field(max_length=100)
    content: str = Field(max_length=2000)
    received_on: dt.date
    status: str = Field(max_length=10)  # open / upheld / dismissed
    reason: str | None = Field(default=None, max_length=2000)
    recorded_by: str = Field(max_length=64)
    recorded_at: dt.datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    resolved_by: str | None = Field(default=None, max_length=64)
    resolved_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
