"""Creating and finding units in the tree."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import Connection, insert, select
from sqlalchemy.exc import IntegrityError

from jinqiu.notifications.outbound import WebhookPolicy, WebhookRefused, check_webhook_url
from jinqiu.workflow.driver import driver_rows, id_in
from jinqiu.workflow.errors import Conflict, NotFound, ValidationFailed
from jinqiu.workflow.units.counts import count_new_units
from jinqiu.workflow.units.models import ACTS_AS, Unit, UnitLevel, level_may_sit_under

unit_table = Unit.__table__  # type: ignore[attr-defined]
CODE_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class UnitCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    code: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    level: UnitLevel
    parent: str | None = None
    contact_name: str | None = Field(default=None, max_length=100)
    contact_email: str | None = Field(default=None, max_length=200)
    contact_phone: str | None = Field(default=None, max_length=40)
    webhook_url: str | None = Field(default=None, max_length=500)

    @field_validator("code")
    @classmethod
    def _code(cls, v: str) -> str:
        if not CODE_PATTERN.match(v):
            raise ValueError("单位代码只能包含字母、数字、下划线、点和连字符")
        return v

    @field_validator("contact_email")
    @classmethod
    def _email(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", v):
            raise ValueError("邮箱格式不正确")
        return v


def check_webhook(url: str | None, policy: WebhookPolicy) -> None:
    """A unit's robot webhook must be a public https:// URL (see notifications/outbound.py).
    It may look the name up in DNS: call it before opening the write transaction."""
    if url is None:
        return
    try:
        check_webhook_url(url, policy)
    except WebhookRefused as exc:
        raise ValidationFailed(
            exc.message, [{"field": "webhook_url", "code": exc.code, "message": exc.message}]
        ) from None


def child_path(parent_path: str, code: str) -> str:
    return f"{parent_path}{code}/"


def check_level_under(level: UnitLevel, parent_level: str) -> None:
    """A unit's level must be strictly below its parent's: a district cannot hold a "city"
    that would then give the final approval (and reserve the city's money)."""
    if not level_may_sit_under(level, parent_level):
        allowed = [lv.value for lv in UnitLevel if level_may_sit_under(lv, parent_level)]
        message = (
            f"单位层级须低于上级单位（上级为 {parent_level}，可选：{'、'.join(allowed) or '无'}）"
        )
        raise ValidationFailed(
            message,
            [{"field": "level", "code": "level_not_below_parent", "message": message}],
        )


def create_unit(conn: Connection, spec: UnitCreate) -> int:
    if conn.execute(select(unit_table.c.id).where(unit_table.c.code == spec.code)).first():
        raise Conflict(f"单位代码 {spec.code} 已存在", {"field": "code"})
    parent_id: int | None = None
    path = child_path("/", spec.code)
    if spec.parent is not None:
        parent = conn.execute(
            select(unit_table.c.id, unit_table.c.path, unit_table.c.level).where(
                unit_table.c.code == spec.parent
            )
        ).first()
        if parent is None:
            raise ValidationFailed(
                f"上级单位 {spec.parent} 不存在",
                [{"field": "parent", "code": "unknown_parent", "message": "上级单位不存在"}],
            )
        check_level_under(spec.level, parent.level)
        parent_id, path = parent.id, child_path(parent.path, spec.code)
    values = spec.model_dump(exclude={"parent"})
    values.update(level=spec.level.value, parent_id=parent_id, path=path)
    try:
        with conn.begin_nested():  # another request made the same code since the check above
            result = conn.execute(insert(unit_table).values(**values).returning(unit_table.c.id))
            unit_id = int(result.scalar_one())
            count_new_units(conn, [(path, spec.level.value)])
            return unit_id
    except IntegrityError:
        raise Conflict(f"单位代码 {spec.code} 已存在", {"field": "code"}) from None


def get_unit_by_code(conn: Connection, code: str) -> Unit:
    row = conn.execute(select(unit_table).where(unit_table.c.code == code)).first()
    if row is None:
        raise NotFound(f"单位 {code} 不存在")
    return Unit.model_validate(row._mapping)


def children_codes(conn: Connection, unit_id: int) -> list[str]:
    rows = conn.execute(
        select(unit_table.c.code)
        .where(unit_table.c.parent_id == unit_id)
        .order_by(unit_table.c.code)
    )
    return [r.code for r in rows]


# Built once per dialect (the engine runs it on every approval transition): no per-call
# statement building.
_levels_of = {
    dialect: select(unit_table.c.level).where(id_in(unit_table.c.code, "codes", dialect))
    for dialect in ("postgresql", "sqlite")
}


def acting_levels_on_path(conn: Connection, path: str) -> frozenset[str]:
    """The approval levels the units on a materialised path ("/WH/WH-ZS-001/") act at. Read on
    the driver (`driver_rows`): on an event's connection still waiting for its first write
    (workflow.driver.defer_transaction) it runs alone, and the approval stays one statement."""
    rows = driver_rows(
        conn, _levels_of[conn.dialect.name], {"codes": [c for c in path.split("/") if c]}
    )
    return frozenset(ACTS_AS[UnitLevel(level)] for (level,) in rows)
