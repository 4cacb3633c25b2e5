"""The reports deadlines wait for: filed by a unit for a campaign, each filing of the same kind
its next revision (the latest counts); read back revision by revision."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import Depends, Query
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
)
from jinqiu.api.errors import ERROR_RESPONSES
from jinqiu.api.http.schemas import Strict
from jinqiu.workflow.statistics.reports import report_revisions, submit_report

router = api_router(tags=["reports"], responses=ERROR_RESPONSES)


class ReportIn(Strict):
    unit: str = Field(min_length=1, max_length=64)
    kind: str = Field(
        default="statistics",
        pattern=r"^[a-z_]{1,32}$",
        description="statistics, demand_summary, interim, or a report the campaign's deadlines name",
    )
    note: str | None = Field(default=None, max_length=2000)
    # Checked item by item against the kind's declaration (workflow.statistics.reports), so each
    # refusal names its item: unknown items, wrong types and out-of-range values are 422.
    figures: dict[str, Any] = Field(
        default_factory=dict,
        description="figures no case records, by item code (e.g. H, I; employment.06A or "
        '{"employment": {"06A": …}}): counts as integers 0…10,000,000, money (万元, 元) '
        "as decimal strings or integers, not negative",
    )


class ReportOut(BaseModel):
    id: int
    campaign: int
    unit: str
    kind: str
    revision: int = Field(description="1 for the first filing; each resubmission is the next")


class ReportRevisionOut(BaseModel):
    id: int
    unit: str
    kind: str
    revision: int
    latest: bool
    note: str | None
    figures: dict[str, Any]
    submitted_by: str
    submitted_at: dt.datetime


@router.post("/api/campaigns/{campaign_id}/reports", status_code=201, response_model=ReportOut)
def report(
    campaign: Annotated[Any, Depends(in_handler(campaign_in_scope))],
    body: ReportIn,
    actor: CurrentActor,
    svc: ServicesDep,
    conn: Conn,
) -> ReportOut:
    """Files a report; filing the same kind again is its next revision (the latest counts)."""
    filed = submit_report(
        conn,
        campaign_id=campaign.id,
        unit_code=body.unit,
        kind=body.kind,
        note=body.note,
        actor=actor,
        clock=svc.clock,
        figures=body.figures,
    )
    return ReportOut(
        id=filed.id, campaign=campaign.id, unit=body.unit, kind=body.kind, revision=filed.revision
    )


@router.get("/api/campaigns/{campaign_id}/reports", response_model=list[ReportRevisionOut])
def reports(
    campaign: CampaignInScope,
    unit: QueriedUnit,
    conn: Conn,
    kind: Annotated[str | None, Query(pattern=r"^[a-z_]{1,32}$")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[ReportRevisionOut]:
    """Every revision of the reports of the caller's subtree (or of `unit`'s), newest first."""
    rows = report_revisions(conn, campaign.id, unit.path, kind=kind, limit=limit)
    return [ReportRevisionOut(**r) for r in rows]
