"""The employment register (阳光就业) and the work-study register (勤工俭学): the records of a
campaign in the user's subtree with a form to register a graduate; a record with its history,
the events the user may fire (buttons from the machine), and a form to record help; the posts
of a campaign with a form to open one; a post with its participants, add, remove, close. Every
form is validated by the API route's own body model and goes through the same service; a
refusal is an error page."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from jinqiu.api.deps import Conn, ServicesDep, unit_named
from jinqiu.api.http.employment import HelpIn, ParticipantIn, PostIn, RecordIn
from jinqiu.api.http.schemas import MAX_DB_INT
from jinqiu.api.pages import (
    OptionalCampaign,
    PageCase,
    PagePost,
    PageRecord,
    PageSession,
    Session,
    carried,
    check_csrf,
    form_int,
    form_model,
    pick_campaign,
    render,
    router,
    shown,
)
from jinqiu.states import Permission
from jinqiu.states.employment_record import MACHINE
from jinqiu.workflow.employment import reads, service
from jinqiu.workflow.employment.engine import RECORDS
from jinqiu.workflow.engine import fire
from jinqiu.workflow.errors import PermissionDenied, ValidationFailed
from jinqiu.workflow.money import yuan_to_fen

STATE_LABELS = {str(s): label for s, label in MACHINE.state_labels.items()}
HELP_LABELS = {kind: k.label for kind, k in service.HELP_KINDS.items()}
# The trail's entries as people read them: the machine's event labels, registering and help.
ENTRY_LABELS = {
    **{str(e): label for e, label in MACHINE.event_labels.items()},
    service.CREATE_EVENT: "登记",
    service.HELP_EVENT: "登记帮扶",
}
# The field an event's one piece of data is typed into on the page: its declared data key.
DESTINATION_KEYS = {str(t.event): t.data_keys[0] for t in MACHINE.transitions if t.data_keys}


def recorder(session: Session) -> None:
    if not session.actor.may(Permission.RECORD_EMPLOYMENT):
        raise PermissionDenied(
            "当前角色无权登记阳光就业和勤工俭学",
            {"permission": Permission.RECORD_EMPLOYMENT.value},
        )


def campaign_of_form(conn: Any, session: Session, campaign: str) -> Any:
    campaign_id = form_int(campaign)
    if not isinstance(campaign_id, int) or not 1 <= campaign_id <= MAX_DB_INT:
        raise ValidationFailed(
            "请选择活动", [{"field": "campaign", "code": "invalid", "message": "请选择活动"}]
        )
    chosen, _ = pick_campaign(conn, session.actor, campaign_id)
    return chosen


def to(url: str, svc: Any, session: Session, message: str) -> Response:
    return RedirectResponse(f"{url}?{carried(svc, session, 'flash', message)}", status_code=303)


# -- 阳光就业 ------------------------------------------------------------------------------------


@router.get("/employment", response_class=HTMLResponse)
def employment_page(
    request: Request,
    session: PageSession,
    svc: ServicesDep,
    conn: Conn,
    campaign: OptionalCampaign = None,
) -> HTMLResponse:
    chosen, campaigns = pick_campaign(conn, session.actor, campaign)
    unit = unit_named(conn, session.actor.unit_code, session.actor)
    return render(
        request,
        "employment.html",
        session,
        campaign=chosen,
        campaigns=campaigns,
        records=reads.list_records(conn, campaign_id=chosen.id, unit=unit, actor=session.actor),
        record_states=STATE_LABELS,
        may_record=session.actor.may(Permission.RECORD_EMPLOYMENT),
        flash=shown(request, svc, session, "flash"),
    )


@router.post("/employment")
def register_page(
    session: PageSession,
    svc: ServicesDep,
    conn: Conn,
    csrf_token: Annotated[str, Form()],
    campaign: Annotated[str, Form()],
    case_id: Annotated[str, Form()],
    graduation_year: Annotated[str, Form()],
    school: Annotated[str, Form()],
    major: Annotated[str, Form()] = "",
    studies_locally: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(session, csrf_token)
    recorder(session)
    fields: dict[str, Any] = {
        "case_id": form_int(case_id),
        "graduation_year": form_int(graduation_year),
        "school": school,
        "studies_locally": studies_locally == "on",
    }
    if major:
        fields["major"] = major
    body = form_model(RecordIn, fields)
    chosen = campaign_of_form(conn, session, campaign)
    record_id = service.register(
        conn,
        campaign=chosen,
        case_id=body.case_id,
        graduation_year=body.graduation_year,
        school=body.school,
        major=body.major,
        studies_locally=body.studies_locally,
        actor=session.actor,
        clock=svc.clock,
    )
    return to(f"/employment-records/{record_id}", svc, session, "已登记")


@router.get("/employment-records/{record_id}", response_class=HTMLResponse)
def record_page(
    request: Request, record_id: PageRecord, session: PageSession, svc: ServicesDep, conn: Conn
) -> HTMLResponse:
    view = reads.record_view(conn, record_id, actor=session.actor)
    return render(
        request,
        "employment_record.html",
        session,
        view=view,
        record_states=STATE_LABELS,
        help_labels=HELP_LABELS,
        entry_labels=ENTRY_LABELS,
        destination_keys=DESTINATION_KEYS,
        may_help=session.actor.may(Permission.RECORD_EMPLOYMENT)
        and view["state"] in MACHINE.open_states,
        flash=shown(request, svc, session, "flash"),
    )


@router.post("/employment-records/{record_id}/events")
def record_event_page(
    record_id: PageRecord,
    session: PageSession,
    svc: ServicesDep,
    conn: Conn,
    csrf_token: Annotated[str, Form()],
    event: Annotated[str, Form(max_length=32)],
    version: Annotated[str, Form()],
    opinion: Annotated[str, Form(max_length=2000)] = "",
    destination: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    check_csrf(session, csrf_token)
    expected = form_int(version)
    if not isinstance(expected, int) or not 1 <= expected <= MAX_DB_INT:
        raise ValidationFailed(
            "版本号无效", [{"field": "version", "code": "invalid", "message": "版本号无效"}]
        )
    key = DESTINATION_KEYS.get(event)
    fired = fire(
        conn,
        RECORDS,
        subject_id=record_id,
        event=event,
        expected_version=expected,
        actor=session.actor,
        clock=svc.clock,
        opinion=opinion or None,
        data={key: destination} if key and destination else {},
    )
    label = STATE_LABELS[fired.state]
    return to(f"/employment-records/{record_id}", svc, session, f"已更新：{label}")


@router.post("/employment-records/{record_id}/help")
def record_help_page(
    record_id: PageRecord,
    session: PageSession,
    svc: ServicesDep,
    conn: Conn,
    csrf_token: Annotated[str, Form()],
    kind: Annotated[str, Form()],
    given_on: Annotated[str, Form()] = "",
    text: Annotated[str, Form()] = "",
    amount: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(session, csrf_token)
    recorder(session)
    fields: dict[str, Any] = {"kind": kind}
    if given_on:
        fields["given_on"] = given_on
    if text:
        fields["text"] = text
    if amount:
        fields["amount"] = amount
    body = form_model(HelpIn, fields)
    service.record_help(
        conn,
        record_id,
        kind=str(body.kind),
        given_on=body.given_on,
        text=body.text,
        amount_fen=None if body.amount is None else yuan_to_fen(body.amount),
        actor=session.actor,
        clock=svc.clock,
    )
    return to(f"/employment-records/{record_id}", svc, session, "已登记帮扶")


# -- 勤工俭学 ------------------------------------------------------------------------------------


@router.get("/work-study", response_class=HTMLResponse)
def work_study_page(
    request: Request,
    session: PageSession,
    svc: ServicesDep,
    conn: Conn,
    campaign: OptionalCampaign = None,
) -> HTMLResponse:
    chosen, campaigns = pick_campaign(conn, session.actor, campaign)
    unit = unit_named(conn, session.actor.unit_code, session.actor)
    return render(
        request,
        "work_study.html",
        session,
        campaign=chosen,
        campaigns=campaigns,
        posts=reads.list_posts(conn, campaign_id=chosen.id, unit=unit),
        post_kinds=service.POST_KINDS,
        may_record=session.actor.may(Permission.RECORD_EMPLOYMENT),
        flash=shown(request, svc, session, "flash"),
    )


@router.post("/work-study")
def open_post_page(
    session: PageSession,
    svc: ServicesDep,
    conn: Conn,
    csrf_token: Annotated[str, Form()],
    campaign: Annotated[str, Form()],
    unit: Annotated[str, Form()],
    title: Annotated[str, Form()],
    employer: Annotated[str, Form()],
    kind: Annotated[str, Form()],
    hours_per_week: Annotated[str, Form()],
    hourly_pay: Annotated[str, Form()],
) -> Response:
    check_csrf(session, csrf_token)
    recorder(session)
    body = form_model(
        PostIn,
        {
            "unit": unit,
            "title": title,
            "employer": employer,
            "kind": kind,
            "hours_per_week": form_int(hours_per_week),
            "hourly_pay": hourly_pay,
        },
    )
    chosen = campaign_of_form(conn, session, campaign)
    post_id = service.open_post(
        conn,
        campaign_id=chosen.id,
        unit=unit_named(conn, body.unit, session.actor),
        title=body.title,
        employer=body.employer,
        kind=str(body.kind),
        hours_per_week=body.hours_per_week,
        hourly_pay_fen=yuan_to_fen(body.hourly_pay),
        actor=session.actor,
        clock=svc.clock,
    )
    return to(f"/work-study-posts/{post_id}", svc, session, "已发布岗位")


@router.get("/work-study-posts/{post_id}", response_class=HTMLResponse)
def post_page(
    request: Request, post_id: PagePost, session: PageSession, svc: ServicesDep, conn: Conn
) -> HTMLResponse:
    return render(
        request,
        "work_study_post.html",
        session,
        view=reads.post_view(conn, post_id, actor=session.actor),
        may_record=session.actor.may(Permission.RECORD_EMPLOYMENT),
        flash=shown(request, svc, session, "flash"),
    )


@router.post("/work-study-posts/{post_id}/participants")
def add_participant_page(
    post_id: PagePost,
    session: PageSession,
    svc: ServicesDep,
    conn: Conn,
    csrf_token: Annotated[str, Form()],
    case_id: Annotated[str, Form()],
) -> Response:
    check_csrf(session, csrf_token)
    recorder(session)
    body = form_model(ParticipantIn, {"case_id": form_int(case_id)})
    service.add_participant(
        conn, post_id, case_id=body.case_id, actor=session.actor, clock=svc.clock
    )
    return to(f"/work-study-posts/{post_id}", svc, session, "已添加")


@router.post("/work-study-posts/{post_id}/participants/{case_id}/remove")
def remove_participant_page(
    post_id: PagePost,
    case_id: PageCase,
    session: PageSession,
    svc: ServicesDep,
    conn: Conn,
    csrf_token: Annotated[str, Form()],
) -> Response:
    check_csrf(session, csrf_token)
    recorder(session)
    service.remove_participant(conn, post_id, case_id=case_id, actor=session.actor, clock=svc.clock)
    return to(f"/work-study-posts/{post_id}", svc, session, "已移出")


@router.post("/work-study-posts/{post_id}/close")
def close_post_page(
    post_id: PagePost,
    session: PageSession,
    svc: ServicesDep,
    conn: Conn,
    csrf_token: Annotated[str, Form()],
) -> Response:
    check_csrf(session, csrf_token)
    recorder(session)
    service.close_post(conn, post_id, actor=session.actor, clock=svc.clock)
    return to(f"/work-study-posts/{post_id}", svc, session, "岗位已关闭")
