"""The phase dashboard and the official statistics tables (JSON and .xlsx)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response
from sqlalchemy import select

from jinqiu.api.deps import CurrentActor, ServicesDep
from jinqiu.api.errors import ERROR_RESPONSES
from jinqiu.api.http.campaigns import campaign_in_scope
from jinqiu.api.http.schemas import PathId, QueryId
from jinqiu.workflow.dashboard.service import DashboardQuery, dashboard
from jinqiu.workflow.errors import NotFound, ValidationFailed
from jinqiu.workflow.statistics.compute import statistics
from jinqiu.workflow.statistics.tables import BY_KEY
from jinqiu.workflow.statistics.xlsx import workbook
from jinqiu.workflow.units.models import Unit

router = APIRouter(tags=["dashboard"], responses=ERROR_RESPONSES)
unit_t = Unit.__table__  # type: ignore[attr-defined]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@router.get("/api/dashboard")
def get_dashboard(
    campaign: QueryId, actor: CurrentActor, svc: ServicesDep,
    unit: Annotated[str | None, Query(max_length=64)] = None,
) -> dict[str, Any]:
    """Cases per state for the unit's subtree, one row per child unit, funds and deadlines."""
    with svc.engine.connect() as conn:
        return dashboard(conn, DashboardQuery(campaign, unit), actor, today=svc.clock.now().date())


@router.get(
    "/api/campaigns/{campaign_id}/statistics",
    responses={200: {"content": {"application/json": {}, XLSX: {}}}},
)
def get_statistics(
    campaign_id: PathId, actor: CurrentActor, svc: ServicesDep,
    unit: Annotated[str | None, Query(max_length=64)] = None,
    format: Annotated[str, Query(pattern="^(json|xlsx)$")] = "json",
    table: Annotated[list[str] | None, Query()] = None,
) -> Any:
    """The statistics tables for the unit's subtree (default: the caller's unit)."""
    for key in table or ():
        if key not in BY_KEY:
            raise ValidationFailed(f"未知的统计表 {key}", [
                {"field": "table", "code": "unknown_table", "message": f"可选：{', '.join(BY_KEY)}"}])
    code = unit or actor.unit_code
    with svc.engine.connect() as conn:
        campaign_in_scope(conn, campaign_id, actor)
        row = conn.execute(select(unit_t).where(unit_t.c.code == code)).first() if code else None
        if row is None or not actor.sees(row.path):
            raise NotFound(f"单位 {code} 不存在")
        stats = statistics(conn, campaign_id, row, table)
    if format == "xlsx":
        content = workbook(stats, today=svc.clock.now().date())
        filename = f"statistics-{campaign_id}-{row.code}.xlsx"
        return Response(content, media_type=XLSX,
                        headers={"Content-Disposition": f'attachment; filename="{filename}"'})
    return stats
