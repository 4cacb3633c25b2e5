"""Donors (社会资源) and units' own funds (自筹) of a campaign.

Recording a donor is a campaign rule (its intent says whom its money pays): `campaign.manage`
(managers, admins), 403 first. Recording 自筹 is a unit's figure: `report.submit`, as filing
its report. Anyone the campaign concerns reads them; a list shows the caller's subtree."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import Depends
from pydantic import BaseModel, Field

from jinqiu.api.deps import (
    CampaignInScope,
    Conn,
    CurrentActor,
    QueriedUnit,
    ServicesDep,
    api_router,
    campaign_in_scope,
    in_handler,
    require,
)
from jinqiu.api.errors import ERROR_RESPONSES
from jinqiu.workflow.donors.service import DonorIn, UnitFundIn, create_donor, record_unit_fund
from jinqiu.workflow.donors.service import unit_funds as unit_funds_of
from jinqiu.workflow.payments.reconcile import donor_funds
from jinqiu.workflow.roles import Grant

router = api_router(tags=["donors"], responses=ERROR_RESPONSES)
ManageCampaign = Depends(require(Grant.MANAGE_CAMPAIGN, "只有活动管理者可以登记捐赠方"))
SubmitReport = Depends(require(Grant.SUBMIT_REPORT, "当前角色无权登记自筹资金"))


class DonorOut(BaseModel):
    id: int
    name: str = Field(description="单位名称")
    contact: str
    unit: str = Field(description="动员该捐赠方的单位")
    amount: str = Field(description="助学资金（元）")
    intent: dict[str, Any] = Field(description="资助意愿：education_levels, categories, unit, …")
    summary: str = Field(description="整合资源情况简介")
    fund_source: str = Field(description="its fund: `donor:<id>`, chosen by approve's fund_source")
    budget: str
    free: str
    reserved: str
    paid: str
    aided: int = Field(description="students its fund actually aided (paid cases)")


class UnitFundOut(BaseModel):
    id: int
    unit: str
    source: str
    source_label: str
    amount: str
    note: str
    recorded_by: str
    recorded_at: dt.datetime


@router.post(
    "/api/campaigns/{campaign_id}/donors",
    status_code=201,
    response_model=DonorOut,
    dependencies=[ManageCampaign],
)
def add_donor(
    campaign: Annotated[Any, Depends(in_handler(campaign_in_scope))],
    body: DonorIn,
    actor: CurrentActor,
    svc: ServicesDep,
    conn: Conn,
) -> DonorOut:
    """Records a donor and opens its fund (`donor:<id>`, its budget the donor's amount)."""
    donor_id = create_donor(conn, campaign.id, body, actor=actor, clock=svc.clock)
    return DonorOut(**donor_funds(conn, campaign.id, donor_id=donor_id)[0])


@router.get("/api/campaigns/{campaign_id}/donors", response_model=list[DonorOut])
def list_donors(campaign: CampaignInScope, unit: QueriedUnit, conn: Conn) -> list[DonorOut]:
    """The donors brought in by the units of the caller's subtree (or `unit`'s)."""
    return [DonorOut(**d) for d in donor_funds(conn, campaign.id, path=unit.path)]


@router.post(
    "/api/campaigns/{campaign_id}/unit-funds",
    status_code=201,
    response_model=UnitFundOut,
    dependencies=[SubmitReport],
)
def add_unit_fund(
    campaign: Annotated[Any, Depends(in_handler(campaign_in_scope))],
    body: UnitFundIn,
    actor: CurrentActor,
    svc: ServicesDep,
    conn: Conn,
) -> UnitFundOut:
    """Records money a unit raised itself (自筹), by source (附件1 A1…A4)."""
    return UnitFundOut(**record_unit_fund(conn, campaign.id, body, actor=actor, clock=svc.clock))


@router.get("/api/campaigns/{campaign_id}/unit-funds", response_model=list[UnitFundOut])
def list_unit_funds(campaign: CampaignInScope, unit: QueriedUnit, conn: Conn) -> list[UnitFundOut]:
    """自筹 records of the units of the caller's subtree (or `unit`'s), newest first."""
    return [UnitFundOut(**f) for f in unit_funds_of(conn, campaign.id, path=unit.path)]
