"""The case page's follow-up forms: record a visit (回访) and renew a paid case (续助) into a
later campaign. Each form is validated by the API route's own body model and goes through the
same service; a refusal comes back on the case page, each problem on its line."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Form
from fastapi.responses import RedirectResponse, Response

from jinqiu.api.deps import Conn, ServicesDep, api_router
from jinqiu.api.http.followup import RenewalIn
from jinqiu.api.pages import (
    PageCase,
    PageSession,
    Session,
    carried,
    check_csrf,
    form_int,
    form_model,
)
from jinqiu.workflow.errors import DomainError, GuardFailed
from jinqiu.workflow.followup.renewal import renew_case
from jinqiu.workflow.followup.visits import VisitIn, record_visit

router = api_router(include_in_schema=False)


def refused(case_id: int, svc: Any, session: Session, error: DomainError) -> Response:
    """Back to the case page with every problem named: a guard's reasons, or each field."""
    if isinstance(error, GuardFailed):
        lines = [r.message for r in error.reasons]
    elif isinstance(error.details, list) and error.details:
        lines = [f"{d.get('field', '')}：{d.get('message', '')}" for d in error.details]
    else:
        lines = [error.message]
    text = "\n".join(lines)
    return RedirectResponse(
        f"/cases/{case_id}?{carried(svc, session, 'refusal', text)}", status_code=303
    )


@router.post("/cases/{case_id}/visits")
def case_visit(
    case_id: PageCase,
    session: PageSession,
    svc: ServicesDep,
    conn: Conn,
    csrf_token: Annotated[str, Form()],
    date: Annotated[str, Form(max_length=20)],
    kind: Annotated[str, Form(max_length=20)],
    visitor: Annotated[str, Form(max_length=200)],
    situation: Annotated[str, Form(max_length=20)] = "studying",
    notes: Annotated[str, Form(max_length=4000)] = "",
    archive_exited_on: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    check_csrf(session, csrf_token)
    fields: dict[str, Any] = {"date": date, "kind": kind, "visitor": visitor,
                              "situation": situation, "notes": notes}  # fmt: skip
    if archive_exited_on:
        fields["archive_exited_on"] = archive_exited_on
    try:
        with conn.begin_nested():  # a refusal takes back whatever it had written
            body = form_model(VisitIn, fields)
            done = record_visit(conn, case_id, body, actor=session.actor, clock=svc.clock)
    except DomainError as error:
        return refused(case_id, svc, session, error)
    message = f"已登记{done.visit.date}的回访"
    if done.visits_required and done.visits >= done.visits_required:
        message += f"；已回访{done.visits}次，达到回访要求，案件办结"
    return RedirectResponse(
        f"/cases/{case_id}?{carried(svc, session, 'flash', message)}", status_code=303
    )


@router.post("/cases/{case_id}/renewal")
def case_renewal(
    case_id: PageCase,
    session: PageSession,
    svc: ServicesDep,
    conn: Conn,
    csrf_token: Annotated[str, Form()],
    campaign: Annotated[str, Form(max_length=20)],
) -> Response:
    check_csrf(session, csrf_token)
    try:
        with conn.begin_nested():
            body = form_model(RenewalIn, {"campaign": form_int(campaign)})
            new_id = renew_case(
                conn, case_id, campaign_id=body.campaign, actor=session.actor, clock=svc.clock
            )
    except DomainError as error:
        return refused(case_id, svc, session, error)
    message = f"已续助：新案件 {new_id}（摸底申报），请上传本年度在读证明并重新核查档案"
    return RedirectResponse(
        f"/cases/{new_id}?{carried(svc, session, 'flash', message)}", status_code=303
    )
