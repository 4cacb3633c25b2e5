"""User management (admins, within their subtree) and the caller's own profile."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Response
from sqlalchemy import select

from jinqiu.api.deps import (
    Conn,
    CurrentActor,
    ServicesDep,
    UserInScope,
    api_router,
    in_handler,
    require,
    user_in_scope,
)
from jinqiu.api.errors import ERROR_RESPONSES
from jinqiu.api.http.schemas import UserOut, UserPatch
from jinqiu.api.security import clear_failures
from jinqiu.workflow.errors import ValidationFailed
from jinqiu.workflow.roles import Actor, Grant
from jinqiu.workflow.units.models import Unit, in_subtree
from jinqiu.workflow.users.models import User
from jinqiu.workflow.users.service import UserCreate, create_user, update_user

router = api_router(prefix="/api/users", tags=["users"], responses=ERROR_RESPONSES)
user_t = User.__table__  # type: ignore[attr-defined]
unit_t = Unit.__table__  # type: ignore[attr-defined]
ManageUsers = Annotated[Actor, Depends(require(Grant.MANAGE_USERS))]


def user_out(row: Any) -> UserOut:
    return UserOut(
        username=row.username,
        display_name=row.display_name,
        unit=row.unit_code,
        roles=list(row.roles),
        is_active=row.is_active,
    )


@router.post("", status_code=201, response_model=UserOut)
def create(body: UserCreate, actor: ManageUsers, svc: ServicesDep, conn: Conn) -> UserOut:
    unit = conn.execute(select(unit_t.c.path).where(unit_t.c.code == body.unit)).first()
    if unit is None or not actor.sees(unit.path):
        raise ValidationFailed(
            f"单位 {body.unit} 不存在",
            [{"field": "unit", "code": "unknown_unit", "message": "单位不存在"}],
        )
    create_user(conn, body, svc.clock)
    return user_out(user_in_scope(body.username, actor, conn))


@router.get("/me", response_model=UserOut)
def me(actor: CurrentActor, conn: Conn) -> UserOut:
    return user_out(user_in_scope(actor.username, actor, conn))


@router.get("", response_model=list[UserOut])
def list_users(actor: ManageUsers, conn: Conn) -> list[UserOut]:
    rows = conn.execute(
        select(user_t, unit_t.c.code.label("unit_code"), unit_t.c.path)
        .join(unit_t, unit_t.c.id == user_t.c.unit_id)
        .where(in_subtree(unit_t.c.path, actor.unit_path))
        .order_by(user_t.c.username)
    ).all()
    return [user_out(r) for r in rows]


@router.get("/{username}", response_model=UserOut)
def read(_admin: ManageUsers, user: UserInScope) -> UserOut:
    return user_out(user)


@router.patch("/{username}", response_model=UserOut)
def patch(
    actor: ManageUsers,
    user: Annotated[Any, Depends(in_handler(user_in_scope))],
    body: UserPatch,
    conn: Conn,
) -> UserOut:
    """A password change, deactivation or role change signs the user out everywhere. Nobody
    changes their own roles or deactivates themselves (403 `own_account_change`); the root unit
    keeps an active administrator (409 `last_admin`)."""
    update_user(conn, user.username, by=actor.username, **body.model_dump(exclude_unset=True))
    return user_out(user_in_scope(user.username, actor, conn))


@router.post("/{username}/unlock", status_code=204)
def unlock(_admin: ManageUsers, user: UserInScope, conn: Conn) -> Response:
    """Lifts the sign-in lock of a username after repeated failures (as `jinqiu user unlock`)."""
    clear_failures(conn, user.username)
    return Response(status_code=204)
