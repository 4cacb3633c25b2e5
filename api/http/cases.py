"""Cases: create, list, read, correct, fire events (one or many), history."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from fastapi import Depends, Header, Query, Request, Response
from sqlalchemy import Connection

from jinqiu.api.case_events import fire_event
from jinqiu.api.deps import (
    CaseInScope,
    Conn,
    CurrentActor,
    RecordsFullReads,
    Services,
    ServicesDep,
    after_body,
    api_router,
    case_in_scope,
    declare_writes,
    in_handler,
    require,
)
from jinqiu.api.errors import ERROR_RESPONSES, ErrorBody
from jinqiu.api.http.schemas import (
    MAX_DB_INT,
    BulkEventIn,
    BulkOut,
    BulkResult,
    CaseCreateIn,
    CaseList,
    CaseOut,
    CasePatch,
    CaseSummary,
    EventIn,
    EventOut,
    HistoryItem,
    StudentOut,
    WorkerOut,
)
from jinqiu.states import CaseState
from jinqiu.workflow.cases.bulk import BulkItem, apply_bulk
from jinqiu.workflow.cases.engine import CASES
from jinqiu.workflow.cases.pii import view_case
from jinqiu.workflow.cases.reads import CaseFilter, list_cases
from jinqiu.workflow.cases.schema import CaseCreate
from jinqiu.workflow.cases.service import amend_case, create_case
from jinqiu.workflow.errors import ValidationFailed
from jinqiu.workflow.forms.exports import export_rows, workbook
from jinqiu.workflow.money import format_yuan
from jinqiu.workflow.roles import Actor, Grant

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
router = api_router(prefix="/api/cases", tags=["cases"], responses=ERROR_RESPONSES)
# Checked before the case is looked up: a role that may not correct learns nothing of it.
Correctors = Annotated[Actor, Depends(require(Grant.CREATE_CASE, "当前角色无权修改申请"))]
# The case a body is about: looked up only once the body is valid (422 before 404).
CaseToCorrect = Annotated[int, Depends(in_handler(case_in_scope))]
CaseToFire = Annotated[
    int, Depends(in_handler(case_in_scope, checked_by_engine="case_id", fired_on=CASES))
]


# OpenAPI links: where a case answer leads next, with the id and the version it carries — a
# client (and the stateful fuzzing) follows create → read / correct / fire an event → onward.
# `requestBody` holds runtime expressions inside the body: the event's `version` is the case's.
_CASE = "#/paths/~1api~1cases~1{case_id}"
_FROM_BODY = {"case_id": "$response.body#/id"}


def case_links() -> dict[str, Any]:
    return {
        "ReadCase": {
            "operationRef": f"{_CASE}/get",
            "parameters": _FROM_BODY,
            "description": "读取该案件",
        },
        "AmendCase": {
            "operationRef": f"{_CASE}/patch",
            "parameters": {**_FROM_BODY, "header.If-Match": 'W/"{$response.body#/version}"'},
            "description": "补正该案件（If-Match 为返回的版本号）",
        },
        "FireEvent": {
            "operationRef": f"{_CASE}~1events/post",
            "parameters": _FROM_BODY,
            "requestBody": {"version": "$response.body#/version"},
            "description": "对该案件办理事件（version 为返回的版本号）",
        },
        "ReadHistory": {
            "operationRef": f"{_CASE}~1history/get",
            "parameters": _FROM_BODY,
            "description": "该案件的办理记录",
        },
    }


def linked(status: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"links": case_links()}}


def money(fen: int | None) -> str | None:
    return None if fen is None else format_yuan(fen)


def shared_fields(case: Mapping[str, Any]) -> dict[str, Any]:
    """What a case's detail and its line in a list both show, from a row of either read
    (workflow.cases.reads: case_detail's "case", list_cases' rows)."""
    return {
        "id": case["id"],
        "campaign": case["campaign_id"],
        "unit": case["unit_code"],
        "unit_name": case["unit_name"],
        "state": CaseState(case["state"]),
        "version": case["version"],
        "approval_step": case["approval_step"],
        "objection_open": case["objection_open"],
        "return_reason": case["return_reason"],
        "publicity_ends_on": case["publicity_ends_on"],
        "approved_amount": money(case["approved_amount_fen"]),
        "updated_at": case["updated_at"],
    }


def case_out(detail: dict[str, Any], *, unmasked: bool) -> CaseOut:
    """The case as workflow.cases.pii showed it: numbers already masked unless `unmasked`."""
    case, worker, student = detail["case"], detail["worker"], detail["student"]
    return CaseOut(
        **shared_fields(case),
        approval_level=detail["approval_level"],
        publicity_started_on=case["publicity_started_on"],
        fund_source=detail["fund_source"],
        paid_on=case["paid_on"],
        payment_failures=case["payment_failures"],
        payment_batch=case.get("payment_batch_id"),
        follow_up_visits=case.get("follow_up_visits", 0),
        renewal_of=case.get("renewal_of"),
        application_type=case.get("application_type"),
        form=case.get("form") or {},
        allowed_events=detail["allowed_events"],
        pii_unmasked=unmasked,
        worker=WorkerOut(
            **{k: worker[k] for k in WorkerOut.model_fields if k in worker},
            monthly_income_per_capita=money(worker["monthly_income_per_capita_fen"]),
        ),
        student=StudentOut(
            **{k: student[k] for k in StudentOut.model_fields if k in student},
            tuition_invoice=money(student["tuition_invoice_fen"]),
        ),
        created_at=case["created_at"],
    )


def case_summary(row: Mapping[str, Any]) -> CaseSummary:
    """A case's line in a list: the shared fields, the two names and the school."""
    return CaseSummary(
        **shared_fields(row),
        worker_name=row["worker_name"],
        student_name=row["student_name"],
        education_level=row["education_level"],
        school=row["school"],
        priority=row["priority"],
    )


def read_case(conn: Connection, svc: Services, case_id: int, actor: Actor, purpose: str) -> CaseOut:
    """One case for the caller; a full-number read by a PII holder is recorded in the same
    transaction (the route writes for them: RecordsFullReads, or it is a write anyway)."""
    view = view_case(conn, case_id, actor, purpose=purpose, clock=svc.clock)
    assert view.detail is not None
    return case_out(view.detail, unmasked=view.in_full)


@router.post("", status_code=201, response_model=CaseOut, responses=linked(201))
def create(body: CaseCreateIn, actor: CurrentActor, svc: ServicesDep, conn: Conn) -> CaseOut:
    case_id = create_case(
        conn, CaseCreate.model_validate(body.model_dump()), actor=actor, clock=svc.clock
    )
    return read_case(conn, svc, case_id, actor, "POST /api/cases")


async def export_records_full_reads(
    request: Request,
    actor: CurrentActor,
    format: Annotated[Literal["json", "xlsx"], Query()] = "json",
) -> None:
    """A workbook export by a pii.read holder shows identity numbers in full and records it: a
    write transaction; every other list stays a read."""
    declare_writes(request, format == "xlsx" and actor.may(Grant.READ_PII))


@router.get(
    "",
    response_model=CaseList,
    responses={200: {"content": {XLSX: {}}}},
    dependencies=[Depends(export_records_full_reads)],
)
def list_(
    actor: CurrentActor,
    svc: ServicesDep,
    conn: Conn,
    campaign: Annotated[int | None, Query(ge=1, le=MAX_DB_INT)] = None,
    state: CaseState | None = None,
    unit: Annotated[str | None, Query(max_length=64)] = None,
    overdue: bool | None = None,
    q: Annotated[str | None, Query(max_length=50)] = None,
    approval_step: Annotated[int | None, Query(ge=0, le=10)] = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=500)] = 50,
    format: Annotated[Literal["json", "xlsx"], Query()] = "json",
) -> Any:
    # Scoped by the read itself (workflow.cases.reads.list_cases): only the caller's subtree,
    # and `unit` outside it is 404 there.
    flt = CaseFilter(
        campaign=campaign,
        state=state,
        unit=unit,
        overdue=overdue,
        q=q,
        approval_step=approval_step,
        page=page,
        page_size=page_size,
    )
    if format == "xlsx":
        # The same filter and page as the JSON list; identity numbers as pii.read allows.
        out, total = export_rows(conn, actor, flt, clock=svc.clock)
        return Response(
            workbook(out, total=total, page=page, title="金秋助学案件清单"),
            media_type=XLSX,
            headers={"Content-Disposition": 'attachment; filename="cases.xlsx"'},
        )
    rows, total = list_cases(conn, actor, flt, today=svc.clock.now().date())
    items = [case_summary(r) for r in rows]
    return CaseList(items=items, total=total, page=page, page_size=page_size)


@router.get(
    "/{case_id}", response_model=CaseOut, responses=linked(200), dependencies=[RecordsFullReads]
)
def read(
    case_id: CaseInScope, actor: CurrentActor, svc: ServicesDep, conn: Conn, response: Response
) -> CaseOut:
    out = read_case(conn, svc, case_id, actor, "GET /api/cases/{id}")
    response.headers["ETag"] = f'W/"{out.version}"'
    return out


def parse_if_match(value: str | None) -> int | None:
    if value is None:
        return None
    raw = value.strip().removeprefix("W/").strip('"')
    # ASCII digits, at most ten: str.isdigit() would pass "²" and int() choke on 5,000 digits.
    if not re.fullmatch(r"[0-9]{1,10}", raw, re.ASCII) or not 1 <= int(raw) <= MAX_DB_INT:
        raise ValidationFailed(
            "If-Match 须为案件版本号",
            [{"field": "If-Match", "code": "invalid", "message": "须为案件版本号"}],
        )
    return int(raw)


async def expected_version(
    if_match: Annotated[str | None, Header(description='the version read, e.g. W/"3"')] = None,
) -> int | None:
    return parse_if_match(if_match)


@router.patch("/{case_id}", response_model=CaseOut, responses=linked(200))
def patch(
    actor: Correctors,
    expected: Annotated[int | None, Depends(after_body(expected_version, CasePatch))],
    case_id: CaseToCorrect,
    body: CasePatch,
    svc: ServicesDep,
    conn: Conn,
    response: Response,
) -> CaseOut:
    amend_case(
        conn,
        case_id,
        worker_changes=body.worker.model_dump(exclude_unset=True) if body.worker else {},
        student_changes=body.student.model_dump(exclude_unset=True) if body.student else {},
        expected_version=expected,
        actor=actor,
        clock=svc.clock,
    )
    out = read_case(conn, svc, case_id, actor, "PATCH /api/cases/{id}")
    response.headers["ETag"] = f'W/"{out.version}"'
    return out


@router.post("/{case_id}/events", response_model=EventOut, responses=linked(200))
def fire(
    case_id: CaseToFire, body: EventIn, actor: CurrentActor, svc: ServicesDep, conn: Conn
) -> EventOut:
    result = fire_event(conn, case_id, body.version, body, actor, svc.clock)
    return EventOut(id=result.id, state=result.state, version=result.version)


@router.post("/bulk-events", response_model=BulkOut)
def fire_many(body: BulkEventIn, actor: CurrentActor, svc: ServicesDep, conn: Conn) -> BulkOut:
    """One event with one opinion on many cases; each case succeeds or is refused on its own
    (a result per case), and the successes are stored together."""
    # Scope is the engine's, case by case (a case outside the subtree is that item's 404); a
    # case that failed unexpectedly is that item's internal_error (apply_bulk logs it).
    done = apply_bulk(
        conn,
        items=[BulkItem(id=item.id, version=item.version) for item in body.cases],
        event=body.event,
        actor=actor,
        clock=svc.clock,
        opinion=body.opinion,
        data=body.data,
    )
    results = [
        BulkResult(
            id=r.id,
            ok=r.ok,
            state=r.state,
            version=r.version,
            error=None if r.error is None else ErrorBody(**r.error.body()),
        )
        for r in done
    ]
    ok = sum(1 for r in results if r.ok)
    return BulkOut(succeeded=ok, failed=len(results) - ok, results=results)


@router.get("/{case_id}/history", response_model=list[HistoryItem], dependencies=[RecordsFullReads])
def history(
    case_id: CaseInScope, actor: CurrentActor, svc: ServicesDep, conn: Conn
) -> list[dict[str, Any]]:
    """The audit trail of the case; identity and card numbers in it masked unless the caller
    holds pii.read (and then the read is recorded)."""
    view = view_case(
        conn,
        case_id,
        actor,
        purpose="GET /api/cases/{id}/history",
        clock=svc.clock,
        detail=False,
        history=True,
    )
    return view.history or []
