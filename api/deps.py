"""Dependencies: the process's services, the signed-in actor, declared permissions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy import Engine, select

from jinqiu.api.errors import Unauthorized
from jinqiu.api.security import Bearer, read_token
from jinqiu.workflow.clock import Clock
from jinqiu.workflow.config import Settings
from jinqiu.workflow.errors import PermissionDenied
from jinqiu.workflow.roles import Actor, PermissionName
from jinqiu.workflow.units.models import Unit
from jinqiu.workflow.users.models import User

user_t = User.__table__  # type: ignore[attr-defined]
unit_t = Unit.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Services:
    """What a request may use. Nothing here holds shared truth: that is all in the database."""

    engine: Engine
    clock: Clock
    settings: Settings


def services(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


ServicesDep = Annotated[Services, Depends(services)]
bearer = OAuth2PasswordBearer(tokenUrl="/api/auth/token", auto_error=False)


def current_actor(svc: ServicesDep, token: Annotated[str | None, Depends(bearer)]) -> Actor:
    if not token:
        raise Unauthorized("请先登录")
    return actor_of(svc, read_token(svc.settings, token, svc.clock.now()))


def actor_of(svc: Services, bearer: Bearer) -> Actor:
    """The signed-in actor, read fresh on every request: a token issued before the user's last
    password change, deactivation, role change or sign-out (an older generation) is refused."""
    with svc.engine.connect() as conn:
        row = conn.execute(
            select(user_t.c.username, user_t.c.roles, user_t.c.is_active,
                   user_t.c.token_generation, unit_t.c.code, unit_t.c.path, unit_t.c.level)
            .join(unit_t, unit_t.c.id == user_t.c.unit_id)
            .where(user_t.c.username == bearer.username)
        ).first()
    if row is None or not row.is_active:
        raise Unauthorized("用户不存在或已停用")
    if row.token_generation != bearer.generation:
        raise Unauthorized("登录已失效（已退出、改密或权限变更），请重新登录")
    return Actor(username=row.username, unit_code=row.code, unit_path=row.path,
                 unit_level=row.level, roles=tuple(row.roles))


CurrentActor = Annotated[Actor, Depends(current_actor)]


def require(permission: PermissionName) -> Callable[[Actor], Actor]:
    """A dependency that lets only actors holding `permission` through (403 otherwise)."""

    def check(actor: CurrentActor) -> Actor:
        if not actor.may(permission):
            raise PermissionDenied("当前角色无权执行该操作", {"permission": permission.value})
        return actor

    return check
