"""Recording donors (社会资源) and units' own funds (自筹), and reading them back.

A donor is written with its fund in one transaction: the donor row, then its `fund_source`
row (`donor:<id>`, budget = the donor's amount, after the campaign's own sources), then the
donor pointing at it. A unit named anywhere (the donor's unit, the intent's unit, the 自筹
unit) must lie in the campaign organiser's subtree and the caller's: otherwise it is "not
found" (422 naming the field), exactly as a code that does not exist."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import Connection, func, insert, select, update

from jinqiu.workflow.campaigns.models import Campaign, FundSource
from jinqiu.workflow.clock import Clock
from jinqiu.workflow.donors.intent import DonorIntent, Intent, donor_fund_name
from jinqiu.workflow.donors.models import Donor, UnitFund
from jinqiu.workflow.errors import PermissionDenied, ValidationFailed
from jinqiu.workflow.money import MAX_BUDGET_FEN, format_yuan, yuan_to_fen
from jinqiu.workflow.roles import Actor, Grant
from jinqiu.workflow.units.models import Unit, in_subtree

donor_t = Donor.__table__  # type: ignore[attr-defined]
unit_fund_t = UnitFund.__table__  # type: ignore[attr-defined]
fund_t = FundSource.__table__  # type: ignore[attr-defined]
campaign_t = Campaign.__table__  # type: ignore[attr-defined]
unit_t = Unit.__table__  # type: ignore[attr-defined]

MAX_DONORS = 500  # per campaign: listed whole, and each is a fund row the approval reads
MAX_UNIT_FUNDS = 10_000  # per campaign (a few per unit)
SOURCE_LABELS = {
    "government": "各级党政资金",
    "donation": "社会捐助",
    "union": "各级工会投入",
    "other": "其他方面筹集",
}


def _money(v: object) -> object:
    if isinstance(v, float):
        raise ValueError("金额须写成整数或字符串，不能是浮点数")
    money = isinstance(v, (int, str, Decimal)) and not isinstance(v, bool)
    if money and yuan_to_fen(v, max_fen=MAX_BUDGET_FEN) <= 0:  # type: ignore[arg-type]
        raise ValueError("金额须大于 0")
    return v


class DonorIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=200, description="单位名称")
    contact: str = Field(min_length=1, max_length=200, description="联系人及电话")
    amount: Decimal = Field(description="助学资金（元），整数或十进制字符串")
    intent: DonorIntent = Field(default_factory=DonorIntent)
    summary: str = Field(default="", max_length=2000, description="整合资源情况简介")
    unit: str | None = Field(
        default=None, min_length=1, max_length=64, description="动员该捐赠方的单位（默认主办单位）"
    )

    _exact = field_validator("amount", mode="before")(_money)


class UnitFundIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    unit: str = Field(min_length=1, max_length=64)
    source: Literal["government", "donation", "union", "other"]
    amount: Decimal = Field(description="元，整数或十进制字符串")
    note: str = Field(default="", max_length=500)

    _exact = field_validator("amount", mode="before")(_money)


def _unit_in_campaign(conn: Connection, code: str, campaign: Any, actor: Actor, field: str) -> Any:
    row = conn.execute(
        select(unit_t.c.id, unit_t.c.code, unit_t.c.name, unit_t.c.path).where(
            unit_t.c.code == code
        )
    ).first()
    if row is None or not (actor.sees(row.path) and row.path.startswith(campaign.organizer_path)):
        raise ValidationFailed(
            f"单位 {code} 不存在",
            [{"field": field, "code": "unknown_unit", "message": "单位不存在或不在本活动范围内"}],
        )
    return row


def _campaign(conn: Connection, campaign_id: int) -> Any:
    return conn.execute(
        select(
            campaign_t.c.id,
            campaign_t.c.organizer_unit_id,
            unit_t.c.code.label("organizer"),
            unit_t.c.path.label("organizer_path"),
        )
        .join(unit_t, unit_t.c.id == campaign_t.c.organizer_unit_id)
        .where(campaign_t.c.id == campaign_id)
    ).one()


def create_donor(
    conn: Connection, campaign_id: int, body: DonorIn, *, actor: Actor, clock: Clock
) -> int:
    """The donor and its fund; returns the donor's id."""
    if not actor.may(Grant.MANAGE_CAMPAIGN):
        raise PermissionDenied("只有活动管理者可以登记捐赠方")
    campaign = _campaign(conn, campaign_id)
    unit = _unit_in_campaign(conn, body.unit or campaign.organizer, campaign, actor, "unit")
    stored = body.intent.model_dump(mode="json", exclude_none=True)
    if body.intent.unit is not None:
        target = _unit_in_campaign(conn, body.intent.unit, campaign, actor, "intent.unit")
        stored.update(unit_path=target.path, unit_name=target.name)
    count = conn.execute(
        select(func.count()).select_from(donor_t).where(donor_t.c.campaign_id == campaign_id)
    ).scalar_one()
    if count >= MAX_DONORS:
        raise ValidationFailed(
            f"每个活动最多登记 {MAX_DONORS} 个捐赠方",
            [{"field": "name", "code": "too_many", "message": f"已达上限 {MAX_DONORS}"}],
        )
    amount_fen = yuan_to_fen(body.amount, max_fen=MAX_BUDGET_FEN)
    donor_id = conn.execute(
        insert(donor_t)
        .values(
            campaign_id=campaign_id,
            unit_id=unit.id,
            name=body.name,
            contact=body.contact,
            amount_fen=amount_fen,
            intent=stored,
            summary=body.summary,
            created_by=actor.username,
            created_at=clock.now(),
        )
        .returning(donor_t.c.id)
    ).scalar_one()
    position = conn.execute(
        select(func.coalesce(func.max(fund_t.c.position), -1)).where(
            fund_t.c.campaign_id == campaign_id
        )
    ).scalar_one()
    fund_id = conn.execute(
        insert(fund_t)
        .values(
            campaign_id=campaign_id,
            position=int(position) + 1,
            source=donor_fund_name(int(donor_id)),
            budget_fen=amount_fen,
            reserved_fen=0,
            paid_fen=0,
        )
        .returning(fund_t.c.id)
    ).scalar_one()
    conn.execute(update(donor_t).where(donor_t.c.id == donor_id).values(fund_source_id=fund_id))
    return int(donor_id)


def record_unit_fund(
    conn: Connection, campaign_id: int, body: UnitFundIn, *, actor: Actor, clock: Clock
) -> dict[str, Any]:
    """自筹: what a unit raised itself, by source; each record adds to the unit's figures."""
    if not actor.may(Grant.SUBMIT_REPORT):
        raise PermissionDenied("当前角色无权登记自筹资金")
    campaign = _campaign(conn, campaign_id)
    unit = _unit_in_campaign(conn, body.unit, campaign, actor, "unit")
    count = conn.execute(
        select(func.count())
        .select_from(unit_fund_t)
        .where(unit_fund_t.c.campaign_id == campaign_id)
    ).scalar_one()
    if count >= MAX_UNIT_FUNDS:
        raise ValidationFailed(
            f"每个活动最多登记 {MAX_UNIT_FUNDS} 笔自筹资金",
            [{"field": "amount", "code": "too_many", "message": f"已达上限 {MAX_UNIT_FUNDS}"}],
        )
    row_id = conn.execute(
        insert(unit_fund_t)
        .values(
            campaign_id=campaign_id,
            unit_id=unit.id,
            source=body.source,
            amount_fen=yuan_to_fen(body.amount, max_fen=MAX_BUDGET_FEN),
            note=body.note,
            recorded_by=actor.username,
            recorded_at=clock.now(),
        )
        .returning(unit_fund_t.c.id)
    ).scalar_one()
    return unit_funds(conn, campaign_id, path=unit.path, fund_id=int(row_id))[0]


def unit_funds(
    conn: Connection, campaign_id: int, *, path: str, fund_id: int | None = None
) -> list[dict[str, Any]]:
    """自筹 records of the units of the subtree at `path`, newest first."""
    query = (
        select(unit_fund_t, unit_t.c.code.label("unit_code"))
        .join(unit_t, unit_t.c.id == unit_fund_t.c.unit_id)
        .where(unit_fund_t.c.campaign_id == campaign_id, in_subtree(unit_t.c.path, path))
        .order_by(unit_fund_t.c.id.desc())
    )
    if fund_id is not None:
        query = query.where(unit_fund_t.c.id == fund_id)
    return [
        {
            "id": r.id,
            "unit": r.unit_code,
            "source": r.source,
            "source_label": SOURCE_LABELS[r.source],
            "amount": format_yuan(int(r.amount_fen)),
            "note": r.note,
            "recorded_by": r.recorded_by,
            "recorded_at": r.recorded_at,
        }
        for r in conn.execute(query.limit(MAX_UNIT_FUNDS))
    ]


def intent_of_fund(conn: Connection, campaign_id: int, fund_source: str) -> Intent | None:
    """The intent of the donor whose fund is `fund_source` in this campaign, or None."""
    row = conn.execute(
        select(donor_t.c.id, donor_t.c.name, donor_t.c.intent)
        .join(fund_t, fund_t.c.id == donor_t.c.fund_source_id)
        .where(fund_t.c.campaign_id == campaign_id, fund_t.c.source == fund_source)
    ).first()
    return None if row is None else Intent.from_stored(int(row.id), row.name, row.intent or {})
