"""The reports units submit (a district's statistics table): the figures no case records."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from jinqiu.storage.sqltypes import JSONType, UTCDateTime


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
    figures: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSONType, nullable=False)
    )
    submitted_by: str = Field(max_length=64)
    submitted_at: dt.datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
