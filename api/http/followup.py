"""Follow-up visits (回访) of a case and its renewal (续助) into a later campaign."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import Depends
from pydantic import BaseModel

from jinqiu.api.deps import (
    CaseInScope,
    Conn,
    CurrentActor,
    ServicesDep,
    api_router,
    case_in_scope,
    in_handler,
)
from jinqiu.api.errors import ERROR_RESPONSES
from jinqiu.api.http.cases import read_case
from jinqiu.api.http.schemas import CaseOut, Strict
from jinqiu.workflow.followup.renewal import renew_case
from jinqiu.workflow.followup.visits import VisitIn, VisitOut, list_visits, record_visit
from jinqiu.workflow.validation import DbId

router = api_router(prefix="/api/cases", tags=["follow-up"], responses=ERROR_RESPONSES)


class VisitInfo(BaseModel):
    id: int
    date: dt.date
    kind: str
    kind_label: str
    visitor: str
    situation: str
    situation_label: str
    notes: str
    recorded_by: str
    recorded_at: dt.datetime


class VisitRecorded(VisitInfo):
    case_state: str  # `closed` when this visit met the campaign's follow-up rule
    case_version: int
    visits: int
    visits_required: int  # the campaign's rule; 0: none (the case is closed by hand)


class RenewalIn(Strict):
    campaign: DbId


def _info(out: VisitOut) -> VisitInfo:
    return VisitInfo(**out.as_dict())


@router.post("/{case_id}/visits", status_code=201, response_model=VisitRecorded)
def record(
    case_id: Annotated[int, Depends(in_handler(case_in_scope))],
    body: VisitIn,
    actor: CurrentActor,
    svc: ServicesDep,
    conn: Conn,
) -> VisitRecorded:
    """Records a follow-up visit of a case in follow-up, on its audit chain; the visit that
    meets the campaign's follow-up rule closes the case in the same transaction."""
    done = record_visit(conn, case_id, body, actor=actor, clock=svc.clock)
    return VisitRecorded(
        **done.visit.as_dict(),
        case_state=done.case_state,
        case_version=done.case_version,
        visits=done.visits,
        visits_required=done.visits_required,
    )


@router.get("/{case_id}/visits", response_model=list[VisitInfo])
def visits(case_id: CaseInScope, actor: CurrentActor, conn: Conn) -> list[VisitInfo]:
    return [_info(v) for v in list_visits(conn, case_id, actor)]


@router.post("/{case_id}/renewal", status_code=201, response_model=CaseOut)
def renewal(
    case_id: Annotated[int, Depends(in_handler(case_in_scope))],
    body: RenewalIn,
    actor: CurrentActor,
    svc: ServicesDep,
    conn: Conn,
) -> CaseOut:
    """A renewal case (续助) in `survey` for a later campaign: the family and the student
    carried, `renewal_of` the paid case; refused after graduation or the archive exit."""
    new_id = renew_case(conn, case_id, campaign_id=body.campaign, actor=actor, clock=svc.clock)
    return read_case(conn, svc, new_id, actor, "POST /api/cases/{id}/renewal")
