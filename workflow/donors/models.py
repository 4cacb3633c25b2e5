"""Donors (社会资源) and the funds units raised themselves (自筹): records of a campaign.

A donor's money is a fund of its own: a `fund_source` row named `donor:<id>` beside the
campaign's four sources, reserved and paid by the same conditional UPDATEs, so that
budget = free + reserved + paid holds for it as for every source. A unit's 自筹 is a figure
for the statistics (A1…A4 at every level), not money the campaign pays from."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, Column
from sqlmodel import Field, SQLModel

from jinqiu.storage.sqltypes import JSONType, UTCDateTime


class Donor(SQLModel, table=True):
    """爱心企业、社会机构、公益慈善组织: who gave, how much, and for whom (the intent)."""

    __tablename__ = "donor"
    __table_args__ = (CheckConstraint("amount_fen > 0", name="donor_amount_positive"),)

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    # The unit that brought the donor in: its figures count in that unit's subtree (附件2).
    unit_id: int = Field(foreign_key="unit.id", index=True)
    name: str = Field(max_length=200)  # 单位名称
    contact: str = Field(max_length=200)
    amount_fen: int = Field(sa_column=Column(BigInteger, nullable=False))
    # The intent as rules (workflow.donors.intent.DonorIntent), as the donor stated it.
    intent: dict[str, Any] = Field(sa_column=Column(JSONType, nullable=False))
    summary: str = Field(default="", max_length=2000)  # 整合资源情况简介
    fund_source_id: int | None = Field(default=None, foreign_key="fund_source.id", unique=True)
    created_by: str = Field(max_length=64)
    created_at: dt.datetime = Field(sa_column=Column(UTCDateTime, nullable=False))


class UnitFund(SQLModel, table=True):
    """自筹: money a unit raised itself for the campaign, by source (附件1 A1…A4)."""

    __tablename__ = "unit_fund"
    __table_args__ = (CheckConstraint("amount_fen > 0", name="unit_fund_amount_positive"),)

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    unit_id: int = Field(foreign_key="unit.id", index=True)
    source: str = Field(max_length=32)  # government / donation / union / other
    amount_fen: int = Field(sa_column=Column(BigInteger, nullable=False))
    note: str = Field(default="", max_length=500)
    recorded_by: str = Field(max_length=64)
    recorded_at: dt.datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
