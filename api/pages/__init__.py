"""The HTML pages: sign-in, the phase dashboard, the reviewer's work queue, a case with its
timeline, the state machine. Server-rendered Jinja2; a signed cookie session whose CSRF secret
every form echoes back; the same services the JSON API uses."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Annotated, Any, TypeVar
from urllib.parse import quote, urlencode

from fastapi import Depends, Form, Query, Request, UploadFile
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, ValidationError
from sqlalchemy import Connection, select

from jinqiu.api.case_events import fire_or_refuse
from jinqiu.api.deps import (
    Conn,
    Services,
    ServicesDep,
    actor_of,
    api_router,
    attachment_of,
    case_of,
    declare_writes,
    employment_record_of,
    inbox_item_of,
    objection_of,
    publicity_list_of,
    unit_named,
    user_in_scope,
    work_study_post_of,
)
from jinqiu.api.errors import TooManyAttempts, Unauthorized
from jinqiu.api.http.schemas import MAX_DB_INT, BulkEventIn, EventIn, PathId, QueryId
from jinqiu.api.pages.flash import read_message, sign_message
from jinqiu.api.security import (
    client_address,
    read_session,
    session_token,
    sign_in,
    throttle_keys,
)
from jinqiu.notifications import inbox as inbox_reads
from jinqiu.states import MACHINE, CaseEvent, CaseState
from jinqiu.states.diagram import to_svg
from jinqiu.workflow.attachments.content import MAX_BYTES
from jinqiu.workflow.attachments.models import DOCUMENT_LABELS
from jinqiu.workflow.attachments.service import (
    ATTACH_EVENT,
    attach,
    list_attachments,
    may_attach,
    may_read_documents,
    read_attachment,
)
from jinqiu.workflow.attachments.store import store_of
from jinqiu.workflow.campaigns.models import Campaign
from jinqiu.workflow.cases.bulk import BulkItem, apply_bulk
from jinqiu.workflow.cases.pii import view_case
from jinqiu.workflow.cases.reads import CaseFilter, list_cases
from jinqiu.workflow.cases.service import AMEND_EVENT, CREATE_EVENT
from jinqiu.workflow.clock import Clock, as_china
from jinqiu.workflow.dashboard.service import DashboardQuery, dashboard
from jinqiu.workflow.db import reading
from jinqiu.workflow.errors import DomainError, GuardFailed, NotFound
from jinqiu.workflow.followup.models import (
    NOTES_MAX,
    SITUATION_LABELS,
    VISIT_KIND_LABELS,
    VISITOR_MAX,
)
from jinqiu.workflow.followup.renewal import PAID_STATES, RENEW_EVENT
from jinqiu.workflow.followup.visits import VISIT_EVENT, list_visits, may_visit
from jinqiu.workflow.money import format_yuan
from jinqiu.workflow.payments.reconcile import fund_rows
from jinqiu.workflow.payments.service import batch_in_scope as batch_of
from jinqiu.workflow.payments.service import may_pay
from jinqiu.workflow.roles import Actor, Grant
from jinqiu.workflow.statistics.compute import statistics
from jinqiu.workflow.statistics.xlsx import workbook
from jinqiu.workflow.units.models import ACTS_AS, Unit, UnitLevel
from jinqiu.workflow.users.models import Role
from jinqiu.workflow.users.service import revoke_sessions
from jinqiu.workflow.validation import validation_failed

COOKIE = "jinqiu_session"
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
router = api_router(include_in_schema=False)
campaign_t = Campaign.__table__  # type: ignore[attr-defined]
unit_t = Unit.__table__  # type: ignore[attr-defined]

# The lifecycle's labels (states/), plus the audit entries that are not transitions.
EVENT_LABELS = {
    CREATE_EVENT: "新建",
    AMEND_EVENT: "修改",
    ATTACH_EVENT: "上传材料",
    VISIT_EVENT: "回访",
    RENEW_EVENT: "续助",
    **{e.value: label for e, label in MACHINE.event_labels.items()},
}
STATE_LABELS = {s.value: label for s, label in MACHINE.state_labels.items()}
LEVEL_STATES = frozenset(s.value for s in MACHINE.level_states)  # shown with their level
# Events that do not move a case on (return, reject, withdraw): drawn as secondary buttons.
SETBACK_EVENTS = frozenset(e.value for e in MACHINE.events if e not in MACHINE.forward_events)
EDUCATION_LABELS = {
    "preschool": "学前",
    "primary": "小学",
    "junior": "初中",
    "senior": "高中",
    "vocational": "中职",
    "college": "大专",
    "undergraduate": "本科",
    "postgraduate": "研究生",
    "special": "特殊教育",
}
TIER_LABELS = {"first": "一本", "second": "二本", "third": "三本"}
ARCHIVE_LABELS = {
    "deep": "深度困难",
    "relative": "相对困难",
    "accident": "意外致困",
    "none": "未建档",
}
LEVEL_LABELS = {
    "grassroots": "基层工会",
    "district": "区市（产业）工会",
    "city": "市总工会",
    "province": "省总工会",
}
# What may be done to many cases of each state at once (declared per transition in states/).
BULK_EVENTS = MACHINE.bulk_events_by_state


def china_time(value: Any, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """UTC from the database → Asia/Shanghai, as people read it: 2024-07-20 09:00."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if not isinstance(value, dt.datetime):
        return ""
    return as_china(value).strftime(fmt)


class LoginRequired(Exception):
    def __init__(self, next_url: str) -> None:
        self.next_url = next_url


class Session:
    def __init__(self, actor: Actor, csrf: str) -> None:
        self.actor = actor
        self.csrf = csrf


def page_session(request: Request, svc: ServicesDep) -> Session:
    token = request.cookies.get(COOKIE)
    if not token:
        raise LoginRequired(
            str(request.url.path) + (f"?{request.url.query}" if request.url.query else "")
        )
    try:
        bearer, csrf = read_session(svc.settings, token, svc.clock.now())
        return Session(actor_of(svc, bearer), csrf)
    except Unauthorized:
        raise LoginRequired(str(request.url.path)) from None


PageSession = Annotated[Session, Depends(page_session)]


# What a page's path names, within the signed-in user's subtree (api.deps's loaders, with the
# page session's actor instead of a bearer token's).
def page_case(case_id: PathId, session: PageSession, conn: Conn) -> int:
    return case_of(conn, case_id, session.actor)


PageCase = Annotated[int, Depends(page_case)]


def page_attachment(case_id: PageCase, attachment_id: PathId, conn: Conn) -> int:
    return attachment_of(conn, case_id, attachment_id)


PageAttachment = Annotated[int, Depends(page_attachment)]


def page_list(list_id: PathId, session: PageSession, conn: Conn) -> int:
    return publicity_list_of(conn, list_id, session.actor)


PageList = Annotated[int, Depends(page_list)]


def page_objection(objection_id: PathId, session: PageSession, conn: Conn) -> int:
    return objection_of(conn, objection_id, session.actor)


PageObjection = Annotated[int, Depends(page_objection)]


def page_batch(batch_id: PathId, request: Request, session: PageSession, conn: Conn) -> Any:
    """A payment batch of the signed-in user's subtree (held while a form writes to it)."""
    return batch_of(conn, batch_id, session.actor, lock=request.method != "GET")


PageBatch = Annotated[Any, Depends(page_batch)]


def page_record(record_id: PathId, session: PageSession, conn: Conn) -> int:
    return employment_record_of(conn, record_id, session.actor)


PageRecord = Annotated[int, Depends(page_record)]


PathUsername = Annotated[str, PathParam(min_length=2, max_length=64)]


def page_user(username: PathUsername, session: PageSession, conn: Conn) -> Any:
    """A user account of the signed-in user's subtree (the admin pages)."""
    return user_in_scope(username, session.actor, conn)


PageUser = Annotated[Any, Depends(page_user)]


def page_queried_unit(
    session: PageSession, conn: Conn, unit: Annotated[str | None, Query(max_length=64)] = None
) -> Any:
    """?unit=: a unit of the signed-in user's subtree; by default their own (404 outside)."""
    return unit_named(conn, unit or session.actor.unit_code, session.actor)


PageQueriedUnit = Annotated[Any, Depends(page_queried_unit)]


def page_post(post_id: PathId, session: PageSession, conn: Conn) -> int:
    return work_study_post_of(conn, post_id, session.actor)


PagePost = Annotated[int, Depends(page_post)]


def page_inbox_item(item_id: PathId, session: PageSession, conn: Conn) -> Any:
    return inbox_item_of(conn, item_id, session.actor)


PageInboxItem = Annotated[Any, Depends(page_inbox_item)]


async def page_records_full_reads(request: Request, session: PageSession) -> None:
    """A page that shows a case's numbers writes its pii_access row for a pii.read holder."""
    declare_writes(request, session.actor.may(Grant.READ_PII))


def check_csrf(session: Session, token: str) -> None:
    if token != session.csrf:
        raise DomainError("表单已过期，请刷新页面后重试")


templates.env.filters["china"] = china_time
M = TypeVar("M", bound=BaseModel)
_DIGITS = re.compile(r"[0-9]{1,30}", re.ASCII)
OptionalCampaign = Annotated[int | None, Query(ge=1, le=MAX_DB_INT)]


def form_model(model: type[M], fields: dict[str, Any]) -> M:
    """A page form validated by the API route's own body model: one validation for both faces
    (lengths, ranges, ids within the database's INTEGER); a refusal is the API's 422."""
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        raise validation_failed(exc) from exc


def carried(svc: Services, session: Session, name: str, text: str) -> str:
    """`name=<signed text>` for a redirect's query: only the server's own words travel."""
    return urlencode(
        {name: sign_message(svc.settings, session.actor.username, text, svc.clock.now())}
    )


def shown(request: Request, svc: Services, session: Session, name: str) -> str | None:
    """The text a redirect carried in `name`, if the server signed it for this user lately."""
    return read_message(
        svc.settings, session.actor.username, request.query_params.get(name), svc.clock.now()
    )


def form_int(text: str) -> int | str:
    """A form's number as the JSON integer the API's model expects; anything but ASCII digits
    stays text, for the model to refuse (its strict ints take no "１", "1.0" or "true")."""
    return int(text) if _DIGITS.fullmatch(text) else text


def error_page(request: Request, status: int, code: str, message: str) -> Response:
    """A refusal as a page, for a browser asking for HTML (api.errors installs it)."""
    return templates.TemplateResponse(
        request,
        "error.html",
        {"code": code, "message": message, "actor": None, "csrf": ""},
        status_code=status,
    )


def render(request: Request, name: str, session: Session | None, **context: Any) -> HTMLResponse:
    return templates.TemplateResponse(
        request,
        name,
        {
            "session": session,
            "actor": session.actor if session else None,
            "csrf": session.csrf if session else "",
            "state_labels": STATE_LABELS,
            "event_labels": EVENT_LABELS,
            "yuan": format_yuan,
            "education_labels": EDUCATION_LABELS,
            "tier_labels": TIER_LABELS,
            "archive_labels": ARCHIVE_LABELS,
            "level_labels": LEVEL_LABELS,
            "level_states": LEVEL_STATES,
            "setback_events": SETBACK_EVENTS,
            "may_pay": bool(session and may_pay(session.actor)),
            "may_import": bool(session and session.actor.may(Grant.CREATE_CASE)),
            # The nav's unread count: asked only when a page draws the nav (a lazy call).
            "inbox_unread": lambda: unread_in_inbox(request, session),
            **context,
        },
    )


def unread_in_inbox(request: Request, session: Session | None) -> int:
    """The unit's notifications the signed-in user has not read, on a short read connection of
    its own (as the actor is read): the page's own transaction may be a write in progress."""
    if session is None:
        return 0
    svc: Services = request.app.state.services
    with reading(svc.engine) as conn:
        return inbox_reads.unread_count(conn, session.actor.unit_code, session.actor.username)


def visible_campaigns(conn: Connection, actor: Actor) -> list[Any]:
    rows = conn.execute(
        select(campaign_t.c.id, campaign_t.c.name, campaign_t.c.year, unit_t.c.path)
        .join(unit_t, unit_t.c.id == campaign_t.c.organizer_unit_id)
        .order_by(campaign_t.c.year.desc(), campaign_t.c.id.desc())
    ).all()
    return [r for r in rows if actor.concerned_by(r.path)]


def pick_campaign(conn: Connection, actor: Actor, campaign: int | None) -> Any:
    campaigns = visible_campaigns(conn, actor)
    if not campaigns:
        raise NotFound("暂无可查看的活动")
    if campaign is None:
        return campaigns[0], campaigns
    for c in campaigns:
        if c.id == campaign:
            return c, campaigns
    raise NotFound(f"活动 {campaign} 不存在")


# -- signing in ---------------------------------------------------------------------------------
@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = "/") -> HTMLResponse:
    return render(request, "login.html", None, next=next, error=None)


@router.post("/login")
def login(
    request: Request,
    svc: ServicesDep,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
    next: Annotated[str, Form()] = "/",
) -> Response:
    now = svc.clock.now()
    keys = throttle_keys(username, client_address(request, svc.settings))
    try:
        generation = sign_in(svc.engine, username, password, keys, now)
    except TooManyAttempts as exc:
        response = render(request, "login.html", None, next=next, error=exc.message)
        response.status_code = 429
        return response
    if generation is None:
        response = render(request, "login.html", None, next=next, error="用户名或密码错误")
        response.status_code = 401
        return response
    token, _csrf = session_token(svc.settings, username, now, generation)
    target = next if next.startswith("/") and not next.startswith("//") else "/"
    redirect = RedirectResponse(target, status_code=303)
    redirect.set_cookie(
        COOKIE,
        token,
        httponly=True,
        samesite="lax",
        secure=svc.settings.base_url.startswith("https://"),
        max_age=svc.settings.token_minutes * 60,
    )
    return redirect


@router.post("/logout")
def logout(session: PageSession, conn: Conn, csrf_token: Annotated[str, Form()]) -> Response:
    """Signs out everywhere: a copy of this cookie (or a token) kept elsewhere stops working."""
    check_csrf(session, csrf_token)
    revoke_sessions(conn, session.actor.username)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE)
    return response


@router.get("/")
def home(session: PageSession) -> Response:
    roles = set(session.actor.roles)
    if roles & {
        Role.REVIEWER.value,
        Role.APPROVER.value,
        Role.CLERK.value,
        Role.FINANCE.value,
    } and not roles & {Role.MANAGER.value}:
        return RedirectResponse("/queue", status_code=303)
    return RedirectResponse("/dashboard", status_code=303)


# -- the phase dashboard --------------------------------------------------------------------------
@router.get("/dashboard", response_class=HTMLResponse)
def dashboard_page(
    request: Request,
    session: PageSession,
    svc: ServicesDep,
    conn: Conn,
    campaign: OptionalCampaign = None,
    unit: Annotated[str | None, Query(max_length=64)] = None,
    partial: bool = False,
    refresh: Annotated[int, Query(ge=1, le=3600)] = 30,
) -> HTMLResponse:
    chosen, campaigns = pick_campaign(conn, session.actor, campaign)
    data = dashboard(
        conn, DashboardQuery(chosen.id, unit), session.actor, today=svc.clock.now().date()
    )
    current = next((d for d in data["deadlines"] if not d["passed"]), None)
    funnel_max = max([*data["states"].values(), 1])
    return render(
        request,
        "dashboard_body.html" if partial else "dashboard.html",
        session,
        data=data,
        campaigns=campaigns,
        campaign=chosen,
        current_deadline=current,
        funnel_max=funnel_max,
        today=svc.clock.now().date(),
        refresh=refresh,
    )


@router.get("/statistics.xlsx")
def statistics_xlsx(
    session: PageSession,
    svc: ServicesDep,
    conn: Conn,
    campaign: QueryId,
    unit: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    chosen, _ = pick_campaign(conn, session.actor, campaign)
    row = unit_named(conn, unit or session.actor.unit_code, session.actor)
    stats = statistics(conn, chosen.id, row)
    content = workbook(stats, today=svc.clock.now().date())
    return Response(
        content,
        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={
            "Content-Disposition": f'attachment; filename="statistics-{chosen.id}-{quote(row.code)}.xlsx"'
        },
    )


# -- the work queue -----------------------------------------------------------------------------
def queue_filter(
    actor: Actor, approval_levels: list[str]
) -> tuple[tuple[CaseState, ...], int | None]:
    """The states (and approval step) of the cases waiting for this actor, from the lifecycle:
    the states from which one of the actor's permissions moves a case on; in the states that
    wait by level, only at the level the actor's unit acts at (the step). A role that moves no
    case on (an auditor) sees every open case."""
    acts_as = ACTS_AS.get(UnitLevel(actor.unit_level)) if actor.unit_level else None
    step = approval_levels.index(acts_as) if acts_as in approval_levels else None
    states = MACHINE.waiting_for(actor.permissions, at_level=step is not None)
    if not states:
        return MACHINE.open_states, None
    return states, step if set(states) & set(MACHINE.level_states) else None


def bulk_events_for(actor: Actor, states: tuple[CaseState, ...]) -> list[str]:
    """What this actor may do to many of these cases at once: the bulk transitions out of the
    queue's states that the actor's permissions fire."""
    offered = dict.fromkeys(
        t.event.value
        for state in states
        for event in MACHINE.bulk_events(state)
        for t in MACHINE.candidates(state, event)
        if t.bulk and actor.may(t.permission)
    )
    return list(offered)


@router.get("/queue", response_class=HTMLResponse)
def queue_page(
    request: Request,
    session: PageSession,
    svc: ServicesDep,
    conn: Conn,
    campaign: OptionalCampaign = None,
    unit: Annotated[str | None, Query(max_length=64)] = None,
    state: CaseState | None = None,
    q: Annotated[str | None, Query(max_length=50)] = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> HTMLResponse:
    chosen, campaigns = pick_campaign(conn, session.actor, campaign)
    levels = conn.execute(
        select(campaign_t.c.approval_levels).where(campaign_t.c.id == chosen.id)
    ).scalar_one()
    states, step = queue_filter(session.actor, list(levels))
    flt = CaseFilter(
        campaign=chosen.id,
        unit=unit or None,
        q=q or None,
        state=state,
        states=() if state else states,
        approval_step=step,
        step_states=MACHINE.level_states,
        page=page,
        page_size=50,
    )
    rows, total = list_cases(conn, session.actor, flt, today=svc.clock.now().date())
    bulk_events = bulk_events_for(session.actor, states)
    flash = shown(request, svc, session, "flash")
    return render(
        request,
        "queue.html",
        session,
        rows=rows,
        total=total,
        campaigns=campaigns,
        campaign=chosen,
        states=states,
        step=step,
        levels=levels,
        unit=unit or "",
        q=q or "",
        state=state.value if state else "",
        page=page,
        bulk_events=bulk_events,
        flash=flash,
    )


@router.post("/queue/bulk")
def queue_bulk(
    session: PageSession,
    svc: ServicesDep,
    conn: Conn,
    csrf_token: Annotated[str, Form()],
    event: Annotated[str, Form()],
    cases: Annotated[list[str], Form()],
    opinion: Annotated[str, Form()] = "",
    amount: Annotated[str, Form(max_length=20)] = "",  # one 审批金额 for all, at the last level
    back: Annotated[str, Form()] = "/queue",
) -> Response:
    """One event with one opinion on the ticked cases, each decided on its own by the engine's
    set-based path (as POST /api/cases/bulk-events). The form is the API's BulkEventIn: a
    malformed item refuses the whole request before any case."""
    check_csrf(session, csrf_token)
    items = [
        {
            key: form_int(part)
            for key, part in zip(("id", "version"), item.split(":", 1), strict=False)
        }
        for item in cases
    ]
    fields: dict[str, Any] = {"event": event, "cases": items}
    if opinion:
        fields["opinion"] = opinion
    if amount.strip():
        fields["data"] = {"amount": amount.strip()}
    body = form_model(BulkEventIn, fields)
    done = apply_bulk(
        conn,
        items=[BulkItem(item.id, item.version) for item in body.cases],
        event=body.event,
        actor=session.actor,
        clock=svc.clock,
        opinion=body.opinion,
        data=body.data,
    )
    ok = sum(1 for r in done if r.ok)
    failed = [f"{r.id}：{r.error.message}" for r in done if r.error is not None]
    message = f"已{EVENT_LABELS.get(body.event.value, body.event.value)} {ok} 件"
    if failed:
        message += (
            f"；{len(failed)} 件未能办理（{'；'.join(failed[:3])}{'…' if len(failed) > 3 else ''}）"
        )
    target = back if back.startswith("/") and not back.startswith("//") else "/queue"
    sep = "&" if "?" in target else "?"
    return RedirectResponse(
        f"{target}{sep}{carried(svc, session, 'flash', message)}", status_code=303
    )


# -- one case -----------------------------------------------------------------------------------
@router.get(
    "/cases/{case_id}", response_class=HTMLResponse, dependencies=[Depends(page_records_full_reads)]
)
def case_page(
    request: Request, case_id: PageCase, session: PageSession, svc: ServicesDep, conn: Conn
) -> HTMLResponse:
    # The same path as the API: numbers masked unless pii.read, and then the read is recorded.
    view = view_case(
        conn, case_id, session.actor, purpose=f"GET /cases/{case_id}", clock=svc.clock, history=True
    )
    assert view.detail is not None  # asked for (detail=True is view_case's default)
    refusal = shown(request, svc, session, "refusal")
    flash = shown(request, svc, session, "flash")
    return render(
        request,
        "case.html",
        session,
        detail=view.detail,
        history=view.history,
        refusal=refusal.split("\n") if refusal else [],
        flash=flash,
        may_read_pii=view.in_full,
        fund_choices=fund_choices(conn, view.detail),
        attachments=list_attachments(conn, case_id, session.actor),
        may_attach=may_attach(session.actor, view.detail["case"]["state"]),
        may_read_documents=may_read_documents(session.actor),
        document_labels={k.value: label for k, label in DOCUMENT_LABELS.items()},
        max_upload_mb=MAX_BYTES // (1024 * 1024),
        **follow_up_context(conn, session.actor, view.detail, svc.clock),
    )


def follow_up_context(
    conn: Connection, actor: Actor, detail: dict[str, Any], clock: Clock
) -> dict[str, Any]:
    """The case page's follow-up part: its visits, the form, and the later campaigns it may be
    renewed into (a paid case, for those who enter applications)."""
    case = detail["case"]
    renewable = actor.may(Grant.CREATE_CASE) and case["state"] in PAID_STATES
    year, rules = conn.execute(
        select(campaign_t.c.year, campaign_t.c.follow_up).where(
            campaign_t.c.id == case["campaign_id"]
        )
    ).one()
    path = conn.execute(select(unit_t.c.path).where(unit_t.c.id == case["unit_id"])).scalar_one()
    return {
        "visits": list_visits(conn, case["id"], actor),
        "may_visit": may_visit(actor, case["state"]),
        "visits_required": int((rules or {}).get("visits_required", 0)),
        "visit_kinds": {k.value: label for k, label in VISIT_KIND_LABELS.items()},
        "situations": {k.value: label for k, label in SITUATION_LABELS.items()},
        "visitor_max": VISITOR_MAX,
        "notes_max": NOTES_MAX,
        "today": clock.now().date().isoformat(),
        "renewal_campaigns": (
            [c for c in visible_campaigns(conn, actor) if c.year > year and path.startswith(c.path)]
            if renewable
            else []
        ),
    }


FUND_LABELS = {
    "government": "各级党政资金",
    "donation": "社会捐助",
    "union": "各级工会投入",
    "other": "其他方面筹集",
}


def fund_choices(conn: Connection, detail: dict[str, Any]) -> list[dict[str, str]]:
    """Where an approval may take the money from: the campaign's funds, a donor's by its name
    (its intent is checked when chosen). Offered only where the user may approve."""
    if CaseEvent.APPROVE.value not in detail["allowed_events"]:
        return []
    return [
        {
            "source": b.source,
            "label": f"捐赠方：{b.donor_name}"
            if b.donor_name
            else FUND_LABELS.get(b.source, b.source),
            "free": format_yuan(b.free_fen),
        }
        for b in fund_rows(conn, detail["case"]["campaign_id"])
    ]


@router.post("/cases/{case_id}/events")
def case_event(
    case_id: PageCase,
    session: PageSession,
    svc: ServicesDep,
    conn: Conn,
    csrf_token: Annotated[str, Form()],
    event: Annotated[str, Form()],
    version: Annotated[str, Form()],
    opinion: Annotated[str, Form()] = "",
    fund_source: Annotated[str, Form(max_length=32)] = "",
    amount: Annotated[str, Form(max_length=20)] = "",  # 审批金额 in yuan, at the last level
) -> Response:
    check_csrf(session, csrf_token)
    fields: dict[str, Any] = {"event": event, "version": form_int(version)}
    if opinion:
        fields["opinion"] = opinion
    data: dict[str, Any] = {}
    if fund_source and event == CaseEvent.APPROVE.value:  # empty: the campaign's own, in order
        data["fund_source"] = fund_source
    if amount.strip():
        data["amount"] = amount.strip()
    if data:
        fields["data"] = data
    body = form_model(EventIn, fields)
    # A refusal is answered with a page, not raised: the savepoint takes back what the refused
    # event had written before the request's transaction commits.
    outcome = fire_or_refuse(conn, case_id, body.version, body, session.actor, svc.clock)
    if isinstance(outcome, DomainError):
        text = (
            "\n".join(r.message for r in outcome.reasons)
            if isinstance(outcome, GuardFailed)
            else outcome.message
        )
        return RedirectResponse(
            f"/cases/{case_id}?{carried(svc, session, 'refusal', text)}", status_code=303
        )
    done = f"已{EVENT_LABELS.get(body.event.value, body.event.value)}"
    return RedirectResponse(
        f"/cases/{case_id}?{carried(svc, session, 'flash', done)}", status_code=303
    )


@router.post("/cases/{case_id}/attachments")
def case_attach(
    case_id: PageCase,
    session: PageSession,
    svc: ServicesDep,
    conn: Conn,
    csrf_token: Annotated[str, Form()],
    kind: Annotated[str, Form(max_length=32)],
    file: UploadFile,
) -> Response:
    check_csrf(session, csrf_token)
    try:
        with conn.begin_nested():  # a refusal takes back whatever it had written
            out, new = attach(
                conn,
                store_of(svc.settings, svc.engine.url),
                case_id=case_id,
                kind=kind,
                filename=file.filename,
                content=file.file.read(MAX_BYTES + 1),
                actor=session.actor,
                clock=svc.clock,
            )
    except DomainError as refused:
        return RedirectResponse(
            f"/cases/{case_id}?{carried(svc, session, 'refusal', refused.message)}",
            status_code=303,
        )
    done = f"已上传{out.kind_label}：{out.filename}" if new else f"该材料已上传过：{out.filename}"
    return RedirectResponse(
        f"/cases/{case_id}?{carried(svc, session, 'flash', done)}", status_code=303
    )


async def page_records_every_read(request: Request) -> None:
    declare_writes(request, True)  # a document download always writes its pii_access row


@router.get(
    "/cases/{case_id}/attachments/{attachment_id}",
    dependencies=[Depends(page_records_every_read)],
)
def case_attachment(
    case_id: PageCase,
    attachment_id: PageAttachment,
    session: PageSession,
    svc: ServicesDep,
    conn: Conn,
) -> Response:
    out, content = read_attachment(
        conn,
        store_of(svc.settings, svc.engine.url),
        case_id=case_id,
        attachment_id=attachment_id,
        actor=session.actor,
        clock=svc.clock,
        purpose=f"GET /cases/{case_id}/attachments/{attachment_id}",
    )
    return Response(
        content,
        media_type=out.media_type,
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(out.filename)}",
            "Cache-Control": "no-store",
        },
    )


# -- help -----------------------------------------------------------------------------------------
@router.get("/help/machine", response_class=HTMLResponse)
def machine_page(request: Request, session: PageSession) -> HTMLResponse:
    return render(request, "machine.html", session, svg=to_svg(), transitions=MACHINE.transitions)


def today_of(svc: Services) -> dt.date:
    return svc.clock.now().date()


# The payment batch, employment and import pages register on this router (they use the helpers
# above); so do the admin pages (units, users, campaigns), the reports page, the reminders sent
# and the donors page.
from jinqiu.api.pages import admin as _admin  # noqa: E402, F401
from jinqiu.api.pages import donors as _donors  # noqa: E402, F401
from jinqiu.api.pages import employment as _employment  # noqa: E402, F401
from jinqiu.api.pages import imports as _imports  # noqa: E402, F401
from jinqiu.api.pages import payments as _payments  # noqa: E402, F401
from jinqiu.api.pages import reminders as _reminders  # noqa: E402, F401
from jinqiu.api.pages import reports as _reports  # noqa: E402, F401
