"""A payment batch, its rows (one per case, the card and amount as the bank file gave them) and
its audit trail (the engine's audit columns, the batch's id in `batch_id`)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import BigInteger, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from jinqiu.storage.sqltypes import JSONType, UTCDateTime

MAX_BATCH_CASES = 20_000  # a county's or city's round; the bank takes files of this size


class PaymentBatch(SQLModel, table=True):
    __tablename__ = "payment_batch"

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    unit_id: int = Field(foreign_key="unit.id", index=True)  # whose cases (its subtree)
    fund_source_id: int = Field(foreign_key="fund_source.id")
    retry_of: int | None = Field(default=None, foreign_key="payment_batch.id")
    state: str = Field(max_length=20)
    version: int = 1
    rows: int
    total_fen: int = Field(sa_column=Column(BigInteger, nullable=False))
    purpose: str = Field(max_length=100)  # 用途/附言 on every row of the bank file
    csv_sha256: str | None = Field(default=None, max_length=64)
    xlsx_sha256: str | None = Field(default=None, max_length=64)
    result_sha256: str | None = Field(default=None, max_length=64)
    paid: int | None = None
    failed: int | None = None
    audit_seq: int = 0
    audit_head: str = Field(default="", max_length=64)
    created_by: str = Field(max_length=64)
    created_at: dt.datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    updated_at: dt.datetime = Field(sa_column=Column(UTCDateTime, nullable=False))


class PaymentBatchItem(SQLModel, table=True):
    """One row of the bank file: 序号, 户名, 卡号, 开户行, 金额 — and the bank's answer."""

    __tablename__ = "payment_batch_item"
    __table_args__ = (
        UniqueConstraint("batch_id", "position"),
        UniqueConstraint("batch_id", "case_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    batch_id: int = Field(foreign_key="payment_batch.id")
    position: int  # 序号, from 1
    case_id: int = Field(foreign_key="aid_case.id", index=True)
    holder: str = Field(max_length=50)
    card_number: str = Field(max_length=19)
    bank_name: str = Field(max_length=50)
    amount_fen: int
    outcome: str | None = Field(default=None, max_length=10)  # paid / failed, once imported
    failure_reason: str | None = Field(default=None, max_length=200)


class PaymentBatchAudit(SQLModel, table=True):
    __tablename__ = "payment_batch_audit"
    __table_args__ = (UniqueConstraint("batch_id", "seq"),)

    id: int | None = Field(default=None, primary_key=True)
    batch_id: int = Field(foreign_key="payment_batch.id")
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
