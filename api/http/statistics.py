"""The phase dashboard and the official statistics tables (JSON and .xlsx)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Query
from fastapi.responses import Response

from jinqiu.api.deps import (
    CampaignInScope,
    Conn,
    CurrentActor,
    QueriedUnit,
    ServicesDep,
    api_router,
)
from jinqiu.api.errors import ERROR_RESPONSES
from jinqiu.api.http.schemas import QueryId
from jinqiu.workflow.dashboard.service import DashboardQuery, dashboard
from jinqiu.workflow.errors import ValidationFailed
from jinqiu.workflow.statistics.compute import campaign_tables, statistics
from jinqiu.workflow.statistics.tables import BY_KEY
from jinqiu.workflow.statistics.xlsx import workbook

router = api_router(tags=["dashboard"], responses=ERROR_RESPONSES)
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@router.get("/api/dashboard")
def get_dashboard(
    campaign: QueryId,
    actor: CurrentActor,
    svc: ServicesDep,
    conn: Conn,
    unit: Annotated[str | None, Query(max_length=64)] = None,
) -> dict[str, Any]:
    """Cases per state for the unit's subtree, one row per child unit, funds and deadlines."""
    # Scoped by the dashboard itself (the pages show the same): a campaign that does not concern
    # the caller, or a unit outside their subtree, is 404 there.
    return dashboard(conn, DashboardQuery(campaign, unit), actor, today=svc.clock.now().date())


async def known_tables(table: Annotated[list[str] | None, Query()] = None) -> list[str] | None:
    """?table=: the tables asked for, each one of statistics.tables (checked before anything
    is looked up)."""
    for key in table or ():
        if key not in BY_KEY:
            raise ValidationFailed(
                f"未知的统计表 {key}",
                [
                    {
                        "field": "table",
                        "code": "unknown_table",
                        "message": f"可选：{', '.join(BY_KEY)}",
                    }
                ],
            )
    return table


@router.get(
    "/api/campaigns/{campaign_id}/statistics",
    responses={200: {"content": {"application/json": {}, XLSX: {}}}},
)
def get_statistics(
    table: Annotated[list[str] | None, Depends(known_tables)],
    campaign: CampaignInScope,
    unit: QueriedUnit,
    svc: ServicesDep,
    conn: Conn,
    format: Annotated[str, Query(pattern="^(json|xlsx)$")] = "json",
) -> Any:
    """The campaign's statistics tables (those its file names; `?table=` picks among them) for
    the unit's subtree (default: the caller's unit), with the cut-off date applied."""
    own = campaign_tables(conn, campaign.id)
    foreign = [key for key in table or () if key not in own]
    if foreign:
        raise ValidationFailed(
            f"统计表 {foreign[0]} 不属于本活动",
            [
                {
                    "field": "table",
                    "code": "table_not_in_campaign",
                    "message": f"本活动的统计表：{', '.join(own)}",
                }
            ],
        )
    stats = statistics(conn, campaign.id, unit, table)
    if format == "xlsx":
        content = workbook(stats, today=svc.clock.now().date())
        filename = f"statistics-{campaign.id}-{unit.code}.xlsx"
        return Response(
            content,
            media_type=XLSX,
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )
    return stats
