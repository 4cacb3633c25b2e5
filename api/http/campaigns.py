"""Campaigns: created from a campaign file, read by everyone they concern."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends
from sqlalchemy import Connection, select

from jinqiu.api.deps import (
    CampaignInScope,
    Conn,
    CurrentActor,
    ServicesDep,
    api_router,
    campaign_of,
    require,
)
from jinqiu.api.errors import ERROR_RESPONSES
from jinqiu.api.http.schemas import CampaignOut, CampaignSummary, FundOut
from jinqiu.workflow.campaigns.checks import campaign_warnings
from jinqiu.workflow.campaigns.models import Campaign, CampaignDeadline, CampaignPhase, FundSource
from jinqiu.workflow.campaigns.schema import CampaignFile
from jinqiu.workflow.campaigns.service import load_campaign
from jinqiu.workflow.errors import ValidationFailed
from jinqiu.workflow.money import format_yuan
from jinqiu.workflow.roles import Actor, Grant
from jinqiu.workflow.statistics.tables import check_campaign_tables
from jinqiu.workflow.units.models import Unit

router = api_router(prefix="/api/campaigns", tags=["campaigns"], responses=ERROR_RESPONSES)
campaign_t = Campaign.__table__  # type: ignore[attr-defined]
phase_t = CampaignPhase.__table__  # type: ignore[attr-defined]
deadline_t = CampaignDeadline.__table__  # type: ignore[attr-defined]
fund_t = FundSource.__table__  # type: ignore[attr-defined]
unit_t = Unit.__table__  # type: ignore[attr-defined]
ManageCampaigns = Annotated[Actor, Depends(require(Grant.MANAGE_CAMPAIGN))]


def campaign_out(conn: Connection, row: Any) -> CampaignOut:
    phases = conn.execute(
        select(phase_t).where(phase_t.c.campaign_id == row.id).order_by(phase_t.c.position)
    ).all()
    deadlines = conn.execute(
        select(deadline_t).where(deadline_t.c.campaign_id == row.id).order_by(deadline_t.c.due)
    ).all()
    funds = conn.execute(
        select(fund_t).where(fund_t.c.campaign_id == row.id).order_by(fund_t.c.position)
    ).all()
    return CampaignOut(
        id=row.id,
        name=row.name,
        year=row.year,
        organizer=row.organizer,
        publicity_working_days=row.publicity_working_days,
        approval_levels=row.approval_levels,
        phases=[
            {
                "key": p.key,
                "name": p.name,
                "starts": p.starts.isoformat(),
                "ends": p.ends.isoformat(),
                "cases_leave": p.cases_leave,
            }
            for p in phases
        ],
        deadlines=[
            {
                "key": d.key,
                "title": d.title,
                "due": d.due.isoformat(),
                "responsible_level": d.responsible_level,
                "responsible": d.responsible,
                "done_when": d.done_when,
            }
            for d in deadlines
        ],
        reminders=row.reminders,
        eligibility=row.eligibility,
        categories=row.categories or [],
        application_types=row.application_types or [],
        aid_rules=row.aid_rules,
        funds=[
            FundOut(
                source=f.source,
                budget=format_yuan(f.budget_fen),
                reserved=format_yuan(f.reserved_fen),
                paid=format_yuan(f.paid_fen),
                available=format_yuan(f.budget_fen - f.reserved_fen - f.paid_fen),
            )
            for f in funds
        ],
        calendar=row.calendar,
        follow_up=row.follow_up,
    )


@router.post("", status_code=201, response_model=CampaignOut)
def create(body: CampaignFile, actor: ManageCampaigns, svc: ServicesDep, conn: Conn) -> CampaignOut:
    organizer = conn.execute(select(unit_t.c.path).where(unit_t.c.code == body.organizer)).first()
    if organizer is None or not actor.sees(organizer.path):
        raise ValidationFailed(
            f"主办单位 {body.organizer} 不存在",
            [{"field": "organizer", "code": "unknown_unit", "message": "主办单位不存在"}],
        )
    check_campaign_tables(body)
    campaign_id = load_campaign(conn, body, svc.clock)
    out = campaign_out(conn, campaign_of(conn, campaign_id, actor))
    out.warnings = campaign_warnings(body)
    return out


@router.get("", response_model=list[CampaignSummary])
def list_campaigns(actor: CurrentActor, conn: Conn) -> list[CampaignSummary]:
    rows = conn.execute(
        select(
            campaign_t.c.id,
            campaign_t.c.name,
            campaign_t.c.year,
            unit_t.c.code.label("organizer"),
            unit_t.c.path,
        )
        .join(unit_t, unit_t.c.id == campaign_t.c.organizer_unit_id)
        .order_by(campaign_t.c.year.desc(), campaign_t.c.id)
    ).all()
    return [
        CampaignSummary(id=r.id, name=r.name, year=r.year, organizer=r.organizer)
        for r in rows
        if actor.concerned_by(r.path)
    ]


@router.get("/{campaign_id}", response_model=CampaignOut)
def read(campaign: CampaignInScope, conn: Conn) -> CampaignOut:
    return campaign_out(conn, campaign)
