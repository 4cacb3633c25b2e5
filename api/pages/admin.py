"""The administration pages: the union tree (`/admin/units`), the accounts (`/admin/users`: a
locked sign-in lifted, deactivated or reactivated, a new password set) and the campaigns (`/admin/campaigns`, a campaign file loaded). Each is
gated by the permission its API route asks for (unit.manage, user.manage, campaign.manage),
lists only the signed-in user's subtree, a page at a time, and goes through the same services
as the API. A refused form comes back with the values typed and each problem beside its field
(in a savepoint: nothing is left written); a refused campaign file lists every problem."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Depends, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy import Connection, func, select

from jinqiu.api.deps import Conn, ServicesDep, unit_named
from jinqiu.api.http.schemas import UserPatch
from jinqiu.api.pages import (
    PageQueriedUnit,
    PageSession,
    PageUser,
    Session,
    carried,
    check_csrf,
    render,
    router,
    shown,
    visible_campaigns,
)
from jinqiu.api.security import THROTTLE_LIMIT, THROTTLE_WINDOW, clear_failures
from jinqiu.workflow.campaigns.checks import campaign_warnings
from jinqiu.workflow.campaigns.service import MAX_FILE_BYTES, campaign_from_bytes, load_campaign
from jinqiu.workflow.errors import DomainError, PermissionDenied, ValidationFailed
from jinqiu.workflow.roles import Grant, PermissionName
from jinqiu.workflow.statistics.tables import check_campaign_tables
from jinqiu.workflow.units.models import Unit, UnitLevel, in_subtree
from jinqiu.workflow.units.service import UnitCreate, create_unit
from jinqiu.workflow.users.models import LoginFailure, Role, User
from jinqiu.workflow.users.service import ASSIGNABLE_ROLES, UserCreate, create_user, update_user
from jinqiu.workflow.validation import problems

unit_t = Unit.__table__  # type: ignore[attr-defined]
user_t = User.__table__  # type: ignore[attr-defined]
failure_t = LoginFailure.__table__  # type: ignore[attr-defined]

PAGE_SIZE = 100  # rows of a list page
MAX_PAGE = 10_000
PARENT_CHOICES = 500  # units offered as a parent or a user's unit (typing any other code works)
MAX_PROBLEMS_SHOWN = 50  # of a refused campaign file
Page = Annotated[int, Query(ge=1, le=MAX_PAGE)]

UNIT_LEVEL_LABELS = {
    UnitLevel.PROVINCE.value: "省总工会",
    UnitLevel.CITY.value: "市总工会",
    UnitLevel.DISTRICT.value: "区市县总工会",
    UnitLevel.INDUSTRY.value: "产业工会",
    UnitLevel.STREET.value: "街道、乡镇工会",
    UnitLevel.GRASSROOTS.value: "基层工会",
}
ROLE_LABELS = {
    Role.CLERK.value: "基层经办",
    Role.REVIEWER.value: "审核",
    Role.APPROVER.value: "审批",
    Role.FINANCE.value: "财务",
    Role.MANAGER.value: "管理",
    Role.AUDITOR.value: "经审",
    Role.ADMIN.value: "系统管理员",
}
ASSIGNABLE = [r for r in ROLE_LABELS if r in ASSIGNABLE_ROLES]


def page_require(
    permission: PermissionName, message: str
) -> Callable[[Session], Awaitable[Session]]:
    """The pages' `require`: a role without `permission` gets the error page (403) before
    anything is looked up or written."""

    async def check(session: PageSession) -> Session:
        if not session.actor.may(permission):
            raise PermissionDenied(message, {"permission": permission.value})
        return session

    return check


ManagesUnits = Annotated[Session, Depends(page_require(Grant.MANAGE_UNITS, "当前角色无权管理单位"))]
ManagesUsers = Annotated[Session, Depends(page_require(Grant.MANAGE_USERS, "当前角色无权管理用户"))]
ManagesCampaigns = Annotated[
    Session, Depends(page_require(Grant.MANAGE_CAMPAIGN, "当前角色无权管理活动"))
]


def field_errors(error: DomainError | ValidationError) -> dict[str, str]:
    """{field: message} for the form (the first problem of each field; "roles.0" is "roles").
    A refusal that names no field is shown above the form ("")."""
    if isinstance(error, ValidationError):
        details: Any = problems(error)
        message = ""
    else:
        details, message = error.details, error.message
    out: dict[str, str] = {}
    if isinstance(details, list):
        for item in details:
            if isinstance(item, dict) and "message" in item:
                out.setdefault(str(item.get("field", "")).split(".")[0], str(item["message"]))
    elif isinstance(details, dict) and isinstance(details.get("field"), str):
        out[details["field"]] = message
    if not out:
        out[""] = message or "输入有误"
    return out


def redirect(path: str, svc: Any, session: Session, message: str) -> Response:
    return RedirectResponse(f"{path}?{carried(svc, session, 'flash', message)}", status_code=303)


def pages_of(total: int) -> int:
    return max(1, -(-total // PAGE_SIZE))


def subtree_units(conn: Connection, top: str, page: int = 1) -> tuple[list[Any], int]:
    """The units of the subtree at path `top` in tree order (by path), one page, and how many."""
    scope = in_subtree(unit_t.c.path, top)
    total = conn.execute(select(func.count()).select_from(unit_t).where(scope)).scalar_one()
    rows = conn.execute(
        select(unit_t)
        .where(scope)
        .order_by(unit_t.c.path)
        .offset((page - 1) * PAGE_SIZE)
        .limit(PAGE_SIZE)
    ).all()
    return list(rows), int(total)


def own_unit(conn: Connection, session: Session) -> Any:
    return unit_named(conn, session.actor.unit_code, session.actor)


def unit_choices(conn: Connection, session: Session) -> list[Any]:
    return list(
        conn.execute(
            select(unit_t.c.code, unit_t.c.name)
            .where(in_subtree(unit_t.c.path, session.actor.unit_path))
            .order_by(unit_t.c.path)
            .limit(PARENT_CHOICES)
        ).all()
    )


def in_scope_code(conn: Connection, session: Session, code: str) -> bool:
    path = conn.execute(select(unit_t.c.path).where(unit_t.c.code == code)).scalar()
    return path is not None and session.actor.sees(path)


# -- the union tree ---------------------------------------------------------------------------


def units_page(
    request: Request,
    session: Session,
    svc: Any,
    conn: Connection,
    top: Any,
    page: int,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    rows, total = subtree_units(conn, top.path, page)
    depth0 = top.path.count("/")
    response = render(
        request,
        "admin_units.html",
        session,
        top=top,
        query=urlencode({"unit": top.code}) + "&",
        units=[(r, r.path.count("/") - depth0) for r in rows],
        total=total,
        page=page,
        pages=pages_of(total),
        unit_levels=UNIT_LEVEL_LABELS,
        choices=unit_choices(conn, session),
        values=values or {"parent": session.actor.unit_code or ""},
        errors=errors or {},
        flash=shown(request, svc, session, "flash"),
    )
    response.status_code = status
    return response


@router.get("/admin/units", response_class=HTMLResponse)
def admin_units(
    request: Request,
    session: ManagesUnits,
    svc: ServicesDep,
    conn: Conn,
    top: PageQueriedUnit,
    page: Page = 1,
) -> HTMLResponse:
    """The subtree of ?unit= (default: the admin's own unit), a page at a time."""
    return units_page(request, session, svc, conn, top, page)


@router.post("/admin/units", response_class=HTMLResponse)
def admin_unit_create(
    request: Request,
    session: ManagesUnits,
    svc: ServicesDep,
    conn: Conn,
    csrf_token: Annotated[str, Form()],
    code: Annotated[str, Form(max_length=200)] = "",
    name: Annotated[str, Form(max_length=1000)] = "",
    level: Annotated[str, Form(max_length=40)] = "",
    parent: Annotated[str, Form(max_length=200)] = "",
    contact_name: Annotated[str, Form(max_length=1000)] = "",
    contact_email: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    """A unit under one of the subtree's units (the root of the tree is `jinqiu unit create`'s)."""
    check_csrf(session, csrf_token)
    values = {
        "code": code,
        "name": name,
        "level": level,
        "parent": parent,
        "contact_name": contact_name,
        "contact_email": contact_email,
    }
    fields: dict[str, Any] = {k: v.strip() for k, v in values.items() if v.strip()}
    try:
        spec = UnitCreate.model_validate(fields)
        if spec.parent is None:
            raise ValidationFailed(
                "须指定上级单位",
                [{"field": "parent", "code": "missing", "message": "须指定上级单位"}],
            )
        if not in_scope_code(conn, session, spec.parent):  # as the API: 上级单位不存在
            raise ValidationFailed(
                f"上级单位 {spec.parent} 不存在",
                [{"field": "parent", "code": "unknown_parent", "message": "上级单位不存在"}],
            )
        with conn.begin_nested():  # a refusal leaves nothing written
            create_unit(conn, spec)
    except (ValidationError, DomainError) as refused:
        return units_page(
            request,
            session,
            svc,
            conn,
            own_unit(conn, session),
            1,
            values=values,
            errors=field_errors(refused),
            status=422,
        )
    return redirect("/admin/units", svc, session, f"已创建单位 {spec.code} {spec.name}")


# -- accounts ---------------------------------------------------------------------------------


def users_page(
    request: Request,
    session: Session,
    svc: Any,
    conn: Connection,
    top: Any,
    page: int,
    *,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    scope = in_subtree(unit_t.c.path, top.path)
    joined = user_t.join(unit_t, unit_t.c.id == user_t.c.unit_id)
    total = int(conn.execute(select(func.count()).select_from(joined).where(scope)).scalar_one())
    rows = conn.execute(
        select(
            user_t.c.username,
            user_t.c.display_name,
            user_t.c.roles,
            user_t.c.is_active,
            unit_t.c.code.label("unit_code"),
            unit_t.c.name.label("unit_name"),
        )
        .select_from(joined)
        .where(scope)
        .order_by(user_t.c.username)
        .offset((page - 1) * PAGE_SIZE)
        .limit(PAGE_SIZE)
    ).all()
    response = render(
        request,
        "admin_users.html",
        session,
        top=top,
        query=urlencode({"unit": top.code}) + "&",
        users=rows,
        failures=recent_failures(conn, [r.username for r in rows], svc.clock.now()),
        throttle_limit=THROTTLE_LIMIT,
        total=total,
        page=page,
        pages=pages_of(total),
        role_labels=ROLE_LABELS,
        assignable=ASSIGNABLE,
        choices=unit_choices(conn, session),
        values=values or {"unit": session.actor.unit_code or "", "roles": []},
        errors=errors or {},
        flash=shown(request, svc, session, "flash"),
        refusal=shown(request, svc, session, "refusal"),
    )
    response.status_code = status
    return response


def recent_failures(conn: Connection, usernames: list[str], now: Any) -> dict[str, int]:
    """Failed sign-ins inside the throttle's window, per username of the page (the lock is
    THROTTLE_LIMIT of them: api.security)."""
    keys = {f"user:{name.lower()}": name for name in usernames}
    if not keys:
        return {}
    counted = conn.execute(
        select(failure_t.c.key, func.count())
        .where(failure_t.c.key.in_(sorted(keys)), failure_t.c.at > now - THROTTLE_WINDOW)
        .group_by(failure_t.c.key)
    ).all()
    return {keys[key]: int(n) for key, n in counted}


@router.get("/admin/users", response_class=HTMLResponse)
def admin_users(
    request: Request,
    session: ManagesUsers,
    svc: ServicesDep,
    conn: Conn,
    top: PageQueriedUnit,
    page: Page = 1,
) -> HTMLResponse:
    """The accounts of the subtree of ?unit= (default: the admin's own unit), by username."""
    return users_page(request, session, svc, conn, top, page)


@router.post("/admin/users", response_class=HTMLResponse)
def admin_user_create(
    request: Request,
    session: ManagesUsers,
    svc: ServicesDep,
    conn: Conn,
    csrf_token: Annotated[str, Form()],
    username: Annotated[str, Form(max_length=200)] = "",
    display_name: Annotated[str, Form(max_length=1000)] = "",
    unit: Annotated[str, Form(max_length=200)] = "",
    roles: Annotated[list[str], Form(max_length=20)] = [],  # noqa: B006 (FastAPI copies it)
    password: Annotated[str, Form(max_length=1000)] = "",
    password_again: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    """An account set up by the admin, with the password the admin chose (as POST /api/users:
    at least 8 characters; there is no default). It is never shown back nor carried in a URL."""
    check_csrf(session, csrf_token)
    values = {"username": username, "display_name": display_name, "unit": unit, "roles": roles}
    try:
        spec = UserCreate.model_validate(
            {
                "username": username,
                "display_name": display_name,
                "unit": unit,
                "roles": roles,
                "password": password,
            }
        )
        if password != password_again:
            raise ValidationFailed(
                "两次输入的密码不一致",
                [
                    {
                        "field": "password_again",
                        "code": "mismatch",
                        "message": "两次输入的密码不一致",
                    }
                ],
            )
        if not in_scope_code(conn, session, spec.unit):  # as the API: 单位不存在
            raise ValidationFailed(
                f"单位 {spec.unit} 不存在",
                [{"field": "unit", "code": "unknown_unit", "message": "单位不存在"}],
            )
        with conn.begin_nested():
            create_user(conn, spec, svc.clock)
    except (ValidationError, DomainError) as refused:
        return users_page(
            request,
            session,
            svc,
            conn,
            own_unit(conn, session),
            1,
            values=values,
            errors=field_errors(refused),
            status=422,
        )
    named = "、".join(ROLE_LABELS.get(r.value, r.value) for r in spec.roles)
    return redirect(
        "/admin/users",
        svc,
        session,
        f"已创建用户 {spec.username}（{spec.unit}，{named}）；请把密码当面或另行告知本人",
    )


@router.post("/admin/users/{username}/unlock")
def admin_user_unlock(
    session: ManagesUsers,
    user: PageUser,
    svc: ServicesDep,
    conn: Conn,
    csrf_token: Annotated[str, Form()],
) -> Response:
    """Lifts the user's sign-in lock (as POST /api/users/{username}/unlock)."""
    check_csrf(session, csrf_token)
    clear_failures(conn, user.username)
    return redirect("/admin/users", svc, session, f"已解除 {user.username} 的登录锁定")


def refused_to(path: str, svc: Any, session: Session, message: str) -> Response:
    return RedirectResponse(f"{path}?{carried(svc, session, 'refusal', message)}", status_code=303)


@router.post("/admin/users/{username}/active")
def admin_user_active(
    session: ManagesUsers,
    user: PageUser,
    svc: ServicesDep,
    conn: Conn,
    csrf_token: Annotated[str, Form()],
    active: Annotated[str, Form(pattern=r"^[01]$")],
) -> Response:
    """Deactivates (every session ends) or reactivates an account, as PATCH /api/users/{username}
    with is_active: nobody deactivates themselves, the root unit keeps an active admin."""
    check_csrf(session, csrf_token)
    try:
        with conn.begin_nested():
            update_user(conn, user.username, by=session.actor.username, is_active=active == "1")
    except DomainError as refused:
        return refused_to("/admin/users", svc, session, refused.message)
    done = "已启用" if active == "1" else "已停用（其登录即时失效）"
    return redirect("/admin/users", svc, session, f"{user.username} {done}")


@router.post("/admin/users/{username}/password")
def admin_user_password(
    session: ManagesUsers,
    user: PageUser,
    svc: ServicesDep,
    conn: Conn,
    csrf_token: Annotated[str, Form()],
    password: Annotated[str, Form(max_length=1000)] = "",
    password_again: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    """Sets a new password chosen by the admin (as PATCH /api/users/{username} with password):
    the user's sessions end and their sign-in lock is lifted, as `jinqiu user set-password`."""
    check_csrf(session, csrf_token)
    try:
        body = UserPatch.model_validate({"password": password})
        if password != password_again:
            raise ValidationFailed("两次输入的密码不一致")
        with conn.begin_nested():
            update_user(conn, user.username, by=session.actor.username, password=body.password)
            clear_failures(conn, user.username)
    except ValidationError:
        return refused_to("/admin/users", svc, session, "新密码须为 8 至 200 个字符")
    except DomainError as refused:
        return refused_to("/admin/users", svc, session, refused.message)
    return redirect(
        "/admin/users", svc, session, f"已重设 {user.username} 的密码，其原有登录已失效"
    )


# -- campaigns --------------------------------------------------------------------------------


def campaigns_page(
    request: Request,
    session: Session,
    svc: Any,
    conn: Connection,
    *,
    refusal: str = "",
    refused: list[dict[str, str]] | None = None,
    filename: str = "",
    status: int = 200,
) -> HTMLResponse:
    campaigns = visible_campaigns(conn, session.actor)
    response = render(
        request,
        "admin_campaigns.html",
        session,
        campaigns=campaigns[:PAGE_SIZE],
        more=max(0, len(campaigns) - PAGE_SIZE),
        organizers={
            r.path: r.code
            for r in conn.execute(
                select(unit_t.c.path, unit_t.c.code).where(
                    unit_t.c.path.in_(sorted({c.path for c in campaigns[:PAGE_SIZE]}))
                )
            )
        },
        max_mb=MAX_FILE_BYTES // (1024 * 1024),
        refusal=refusal,
        refused=refused or [],
        filename=filename,
        flash=shown(request, svc, session, "flash"),
    )
    response.status_code = status
    return response


@router.get("/admin/campaigns", response_class=HTMLResponse)
def admin_campaigns(
    request: Request, session: ManagesCampaigns, svc: ServicesDep, conn: Conn
) -> HTMLResponse:
    return campaigns_page(request, session, svc, conn)


@router.post("/admin/campaigns", response_class=HTMLResponse)
def admin_campaign_load(
    request: Request,
    session: ManagesCampaigns,
    svc: ServicesDep,
    conn: Conn,
    csrf_token: Annotated[str, Form()],
    file: UploadFile,
) -> Response:
    """A campaign file as `jinqiu campaign load` reads it (UTF-8 with or without BOM, GB18030),
    checked as POST /api/campaigns checks it; refused, every problem is listed and nothing is
    written."""
    check_csrf(session, csrf_token)
    filename = file.filename or ""
    try:
        spec = campaign_from_bytes(file.file.read(MAX_FILE_BYTES + 1))
        if not in_scope_code(conn, session, spec.organizer):
            raise ValidationFailed(
                f"主办单位 {spec.organizer} 不存在",
                [{"field": "organizer", "code": "unknown_unit", "message": "主办单位不存在"}],
            )
        check_campaign_tables(spec)
        with conn.begin_nested():
            campaign_id = load_campaign(conn, spec, svc.clock)
    except DomainError as error:
        listed = error.details if isinstance(error.details, list) else []
        return campaigns_page(
            request,
            session,
            svc,
            conn,
            refusal=error.message,
            refused=[
                {"field": str(p.get("field", "")), "message": str(p.get("message", ""))}
                for p in listed[:MAX_PROBLEMS_SHOWN]
                if isinstance(p, dict)
            ],
            filename=filename,
            status=error.status,
        )
    done = f"已载入活动「{spec.name}」（编号 {campaign_id}）"
    warnings = [w["message"] for w in campaign_warnings(spec)]
    if warnings:
        done += "。警告（已照常载入）：" + "；".join(warnings[:5])
    return redirect("/admin/campaigns", svc, session, done)
