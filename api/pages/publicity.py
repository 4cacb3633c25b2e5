"""The publicity list pages (公示名单): the lists of a campaign in the user's subtree with a
form to build one from a unit's cases waiting for publicity; a list with its rows (given names
masked), publish / withdraw, the printable notice (HTML, PDF), and objections — recorded
against a row, resolved with a reason. Every form is validated by the API route's own body
model and goes through the same service; a refusal is an error page."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from jinqiu.api.deps import Conn, ServicesDep, api_router, unit_named
from jinqiu.api.http.publicity_lists import ListIn, ObjectionIn, ResolveIn, WithdrawIn
from jinqiu.api.http.schemas import MAX_DB_INT
from jinqiu.api.pages import (
    OptionalCampaign,
    PageList,
    PageObjection,
    PageSession,
    Session,
    carried,
    check_csrf,
    form_int,
    form_model,
    pick_campaign,
    render,
    shown,
)
from jinqiu.api.printing import notice_html, notice_pdf
from jinqiu.states import Permission
from jinqiu.states.publicity_list import MACHINE as LIST_MACHINE
from jinqiu.states.publicity_list import ListState
from jinqiu.workflow.errors import PermissionDenied, ValidationFailed
from jinqiu.workflow.publicity_lists import service
from jinqiu.workflow.publicity_lists.engine import OPEN
from jinqiu.workflow.publicity_lists.reads import list_view, lists_of

router = api_router(include_in_schema=False)
LIST_LABELS = {s.value: label for s, label in LIST_MACHINE.state_labels.items()}
OBJECTION_LABELS = {
    OPEN: "待处理",
    service.UPHELD: "异议成立",
    service.DISMISSED: "异议不成立",
}


def reviewer(session: Session) -> None:
    if not session.actor.may(Permission.REVIEW_CASE):
        raise PermissionDenied("当前角色无权办理公示", {"permission": Permission.REVIEW_CASE.value})


def back_to(list_id: int, svc: Any, session: Session, message: str) -> Response:
    return RedirectResponse(
        f"/publicity-lists/{list_id}?{carried(svc, session, 'flash', message)}", status_code=303
    )


@router.get("/publicity-lists", response_class=HTMLResponse)
def lists_page(
    request: Request,
    session: PageSession,
    conn: Conn,
    campaign: OptionalCampaign = None,
) -> HTMLResponse:
    chosen, campaigns = pick_campaign(conn, session.actor, campaign)
    return render(
        request,
        "publicity_lists.html",
        session,
        lists=lists_of(conn, chosen.id, session.actor.unit_path),
        campaigns=campaigns,
        campaign=chosen,
        list_labels=LIST_LABELS,
        may_review=session.actor.may(Permission.REVIEW_CASE),
    )


@router.post("/publicity-lists")
def build_page(
    session: PageSession,
    svc: ServicesDep,
    conn: Conn,
    csrf_token: Annotated[str, Form()],
    campaign: Annotated[str, Form()],
    unit: Annotated[str, Form()],
    starts_on: Annotated[str, Form()] = "",
    working_days: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(session, csrf_token)
    reviewer(session)
    fields: dict[str, Any] = {"unit": unit}
    if starts_on:
        fields["starts_on"] = starts_on
    if working_days:
        fields["working_days"] = form_int(working_days)
    body = form_model(ListIn, fields)
    campaign_id = form_int(campaign)
    if not isinstance(campaign_id, int) or not 1 <= campaign_id <= MAX_DB_INT:
        raise ValidationFailed(
            "请选择活动", [{"field": "campaign", "code": "invalid", "message": "请选择活动"}]
        )
    chosen, _ = pick_campaign(conn, session.actor, campaign_id)
    list_id = service.build_list(
        conn,
        campaign_id=chosen.id,
        unit=unit_named(conn, body.unit, session.actor),
        actor=session.actor,
        clock=svc.clock,
        starts_on=body.starts_on,
        working_days=body.working_days,
    )
    return back_to(list_id, svc, session, "已生成公示名单（草拟）")


@router.get("/publicity-lists/{list_id}", response_class=HTMLResponse)
def list_page(
    request: Request, list_id: PageList, session: PageSession, svc: ServicesDep, conn: Conn
) -> HTMLResponse:
    view = list_view(conn, list_id, today=svc.clock.now().date())
    return render(
        request,
        "publicity_list.html",
        session,
        view=view,
        list_labels=LIST_LABELS,
        objection_labels=OBJECTION_LABELS,
        draft=view["status"] == ListState.DRAFT,
        published=view["status"] == ListState.PUBLISHED,
        open_cases={o["case_id"] for o in view["objections"] if o["status"] == OPEN},
        may_review=session.actor.may(Permission.REVIEW_CASE),
        flash=shown(request, svc, session, "flash"),
    )


@router.get("/publicity-lists/{list_id}/notice", response_class=HTMLResponse)
def notice_page(list_id: PageList, svc: ServicesDep, conn: Conn) -> HTMLResponse:
    today = svc.clock.now().date()
    return HTMLResponse(notice_html(list_view(conn, list_id, today=today), today))


@router.get("/publicity-lists/{list_id}/notice.pdf")
def notice_pdf_page(list_id: PageList, svc: ServicesDep, conn: Conn) -> Response:
    today = svc.clock.now().date()
    return Response(
        notice_pdf(list_view(conn, list_id, today=today), today),
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="publicity-list-{list_id}.pdf"'},
    )


@router.post("/publicity-lists/{list_id}/publish")
def publish_page(
    list_id: PageList,
    session: PageSession,
    svc: ServicesDep,
    conn: Conn,
    csrf_token: Annotated[str, Form()],
) -> Response:
    check_csrf(session, csrf_token)
    reviewer(session)
    published = service.publish_list(conn, list_id, actor=session.actor, clock=svc.clock)
    return back_to(list_id, svc, session, f"已发布，公示至 {published.ends_on.isoformat()}")


@router.post("/publicity-lists/{list_id}/withdraw")
def withdraw_page(
    list_id: PageList,
    session: PageSession,
    svc: ServicesDep,
    conn: Conn,
    csrf_token: Annotated[str, Form()],
    reason: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(session, csrf_token)
    reviewer(session)
    body = form_model(WithdrawIn, {"reason": reason})
    service.withdraw_list(conn, list_id, reason=body.reason, actor=session.actor, clock=svc.clock)
    return back_to(list_id, svc, session, "名单已撤回")


@router.post("/publicity-lists/{list_id}/objections")
def objection_page(
    list_id: PageList,
    session: PageSession,
    svc: ServicesDep,
    conn: Conn,
    csrf_token: Annotated[str, Form()],
    case_id: Annotated[str, Form()],
    objector: Annotated[str, Form()] = "",
    contact: Annotated[str, Form()] = "",
    content: Annotated[str, Form()] = "",
    received_on: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(session, csrf_token)
    reviewer(session)
    fields: dict[str, Any] = {"case_id": form_int(case_id), "objector": objector,
                              "contact": contact, "content": content}  # fmt: skip
    if received_on:
        fields["received_on"] = received_on
    body = form_model(ObjectionIn, fields)
    service.record_objection(
        conn, list_id, case_id=body.case_id, objector=body.objector, contact=body.contact,
        content=body.content, received_on=body.received_on, actor=session.actor, clock=svc.clock,
    )  # fmt: skip
    return back_to(list_id, svc, session, f"已登记对案件 {body.case_id} 的异议")


@router.post("/objections/{objection_id}/resolve")
def resolve_page(
    objection_id: PageObjection,
    session: PageSession,
    svc: ServicesDep,
    conn: Conn,
    csrf_token: Annotated[str, Form()],
    outcome: Annotated[str, Form()] = "",
    reason: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(session, csrf_token)
    reviewer(session)
    body = form_model(ResolveIn, {"outcome": outcome, "reason": reason})
    found = service.objection_in_scope(conn, objection_id, session.actor)
    service.resolve_objection(conn, objection_id, outcome=body.outcome, reason=body.reason,
                              actor=session.actor, clock=svc.clock)  # fmt: skip
    return back_to(found.list_id, svc, session, f"异议已处理：{OBJECTION_LABELS[body.outcome]}")
