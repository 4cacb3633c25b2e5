"""Creating users and checking passwords (Argon2)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError

from jinqiu.workflow.clock import Clock
from jinqiu.workflow.errors import Conflict, DomainError, NotFound, ValidationFailed
from jinqiu.workflow.units.models import Unit
from jinqiu.workflow.units.service import get_unit_by_code
from jinqiu.workflow.users.models import Role, User

user_table = User.__table__  # type: ignore[attr-defined]
unit_table = Unit.__table__  # type: ignore[attr-defined]
# `scheduler` is the service itself (it ends publicity periods): never an account's role.
ASSIGNABLE_ROLES = frozenset(r.value for r in Role if r is not Role.SCHEDULER)


class OwnAccountChange(DomainError):
    """An administrator may not change their own roles or deactivate themselves."""

    code = "own_account_change"
    status = 403


class LastAdmin(Conflict):
    """The root unit would be left without an active administrator."""

    code = "last_admin"


_hasher = PasswordHasher()
# Verified against when a username is unknown, so both answers take one Argon2 check.
DUMMY_HASH = _hasher.hash("jinqiu-no-such-user")


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    username: str = Field(min_length=2, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")
    password: str = Field(min_length=8, max_length=200)
    display_name: str = Field(default="", max_length=100)
    unit: str
    roles: list[Role] = Field(min_length=1)

    @field_validator("roles")
    @classmethod
    def _assignable(cls, roles: list[Role]) -> list[Role]:
        if any(r.value not in ASSIGNABLE_ROLES for r in roles):
            raise ValueError("scheduler 是系统自身的角色，不能分配给用户")
        return roles


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def password_matches(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def create_user(conn: Connection, spec: UserCreate, clock: Clock) -> int:
    if conn.execute(select(user_table.c.id).where(user_table.c.username == spec.username)).first():
        raise Conflict(f"用户名 {spec.username} 已存在", {"field": "username"})
    unit = get_unit_by_code(conn, spec.unit)
    values = {
        "username": spec.username,
        "password_hash": hash_password(spec.password),
        "display_name": spec.display_name or spec.username,
        "unit_id": unit.id,
        "roles": sorted({r.value for r in spec.roles}),
        "is_active": True,
        "created_at": clock.now(),
    }
    try:
        with conn.begin_nested():  # another request made the same name since the check above
            result = conn.execute(insert(user_table).values(**values).returning(user_table.c.id))
            return int(result.scalar_one())
    except IntegrityError:
        raise Conflict(f"用户名 {spec.username} 已存在", {"field": "username"}) from None


def assignable_roles(roles: list[str]) -> list[str]:
    """Sorted, deduplicated; ValidationFailed naming `roles` for an unknown or internal role."""
    unknown = sorted(set(roles) - ASSIGNABLE_ROLES)
    if unknown:
        raise ValidationFailed(
            f"不可分配的角色：{'、'.join(unknown)}",
            [{"field": "roles", "code": "enum", "message": "取值不在允许范围内"}],
        )
    return sorted(set(roles))


def update_user(
    conn: Connection,
    username: str,
    *,
    by: str | None,
    display_name: str | None = None,
    roles: list[str] | None = None,
    is_active: bool | None = None,
    password: str | None = None,
) -> None:
    """Changes an account. `by` is the administrator doing it (None: the command line).
    A password change, deactivation or role change ends every session of the account; nobody
    changes their own roles or deactivates themselves; the root unit keeps an active admin."""
    target = _locked_account(conn, username)
    new_roles = assignable_roles(roles) if roles is not None else sorted(target.roles)
    roles_changed = new_roles != sorted(target.roles)
    deactivated = target.is_active and is_active is False
    if by == target.username and (roles_changed or deactivated):
        field = "roles" if roles_changed else "is_active"
        raise OwnAccountChange(
            "不能修改自己的角色或停用自己的账号，请由另一位管理员办理", {"field": field}
        )
    was_admin = target.is_active and Role.ADMIN.value in target.roles
    stays_admin = not deactivated and Role.ADMIN.value in new_roles
    if (
        was_admin
        and not stays_admin
        and target.root_unit
        and not any(m.is_active and Role.ADMIN.value in m.roles for m in target.unit_mates)
    ):
        raise LastAdmin(
            f"{target.username} 是根单位最后一位在用的管理员，不能停用或取消其管理员角色；"
            "请先为根单位添加另一位管理员",
            {"field": "is_active" if deactivated else "roles"},
        )
    values: dict[str, Any] = {}
    if display_name is not None:
        values["display_name"] = display_name
    if roles_changed:
        values["roles"] = new_roles
    if is_active is not None:
        values["is_active"] = is_active
    if password is not None:
        values["password_hash"] = hash_password(password)
    if password is not None or roles_changed or deactivated:
        values["token_generation"] = user_table.c.token_generation + 1
    if values:
        conn.execute(update(user_table).where(user_table.c.id == target.id).values(**values))


def revoke_sessions(conn: Connection, username: str) -> None:
    """Every token and cookie the user holds stops working (signing out, everywhere)."""
    conn.execute(
        update(user_table)
        .where(user_table.c.username == username)
        .values(token_generation=user_table.c.token_generation + 1)
    )


def set_password(conn: Connection, username: str, password: str) -> None:
    """`jinqiu user set-password`: the same rule (min 8, max 200) as the API."""
    if not 8 <= len(password) <= 200:
        raise ValidationFailed(
            "密码须为 8 至 200 个字符",
            [{"field": "password", "code": "string_too_short", "message": "须为 8 至 200 个字符"}],
        )
    update_user(conn, username, by=None, password=password)


def _locked_account(conn: Connection, username: str) -> _Account:
    """The account, locked for this transaction. An account of a root unit is locked together
    with every account of that unit, in id order, so two administrators removing each other
    at once queue instead of both passing the last-admin check (or deadlocking)."""
    found = conn.execute(
        select(user_table.c.unit_id, unit_table.c.parent_id)
        .join(unit_table, unit_table.c.id == user_table.c.unit_id)
        .where(user_table.c.username == username)
    ).first()
    if found is None:
        raise NotFound(f"用户 {username} 不存在")
    root = found.parent_id is None
    scope = (user_table.c.unit_id == found.unit_id) if root else (user_table.c.username == username)
    rows = conn.execute(
        select(user_table).where(scope).order_by(user_table.c.id).with_for_update()
    ).all()
    target = next(r for r in rows if r.username == username)
    return _Account(
        target.id,
        target.username,
        list(target.roles),
        target.is_active,
        root,
        [r for r in rows if r.id != target.id],
    )


@dataclass(frozen=True)
class _Account:
    id: int
    username: str
    roles: list[str]
    is_active: bool
    root_unit: bool
    unit_mates: list[Any]  # the other accounts of a root unit, locked with it
