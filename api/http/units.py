"""The union tree: create, read, list children, edit contacts. Outside the caller's subtree → 404."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends
from sqlalchemy import Connection, select

from jinqiu.api.deps import (
    Conn,
    CurrentActor,
    ParentUnit,
    ServicesDep,
    UnitInScope,
    api_router,
    in_handler,
    require,
    unit_in_scope,
)
from jinqiu.api.errors import ERROR_RESPONSES
from jinqiu.api.http.schemas import UnitOut, UnitPatch
from jinqiu.workflow.errors import ValidationFailed
from jinqiu.workflow.roles import Actor, Grant
from jinqiu.workflow.units.models import Unit
from jinqiu.workflow.units.service import UnitCreate, check_webhook, children_codes, create_unit

router = api_router(prefix="/api/units", tags=["units"], responses=ERROR_RESPONSES)
unit_t = Unit.__table__  # type: ignore[attr-defined]
ManageUnits = Annotated[Actor, Depends(require(Grant.MANAGE_UNITS))]


def unit_out(conn: Connection, row: Any) -> UnitOut:
    parent = None
    if row.parent_id is not None:
        parent = conn.execute(
            select(unit_t.c.code).where(unit_t.c.id == row.parent_id)
        ).scalar_one()
    return UnitOut(
        code=row.code,
        name=row.name,
        level=row.level,
        parent=parent,
        contact_name=row.contact_name,
        contact_email=row.contact_email,
        contact_phone=row.contact_phone,
        webhook_url=row.webhook_url,
        children=children_codes(conn, row.id),
    )


# The webhook address is resolved (DNS) before the request's transaction opens: these run
# ahead of `Conn` and of anything that uses it.
def checked_create(body: UnitCreate, svc: ServicesDep) -> UnitCreate:
    check_webhook(body.webhook_url, svc.settings.webhook_policy())
    return body


def checked_patch(body: UnitPatch, svc: ServicesDep) -> UnitPatch:
    check_webhook(body.webhook_url, svc.settings.webhook_policy())
    return body


@router.post("", status_code=201, response_model=UnitOut)
def create(
    actor: ManageUnits, body: Annotated[UnitCreate, Depends(checked_create)], conn: Conn
) -> UnitOut:
    if body.parent is None and actor.unit_path != "/":
        # Only the root of the tree may be created without a parent, and not over the API
        # by someone who sits inside the tree: that is `jinqiu unit create`.
        raise ValidationFailed(
            "须指定上级单位", [{"field": "parent", "code": "missing", "message": "须指定上级单位"}]
        )
    if body.parent is not None:
        parent = conn.execute(select(unit_t.c.path).where(unit_t.c.code == body.parent)).first()
        if parent is None or not actor.sees(parent.path):
            raise ValidationFailed(
                f"上级单位 {body.parent} 不存在",
                [{"field": "parent", "code": "unknown_parent", "message": "上级单位不存在"}],
            )
    unit_id = create_unit(conn, body)
    return unit_out(conn, conn.execute(select(unit_t).where(unit_t.c.id == unit_id)).one())


@router.get("/{code}", response_model=UnitOut)
def read(unit: UnitInScope, conn: Conn) -> UnitOut:
    return unit_out(conn, unit)


@router.get("", response_model=list[UnitOut])
def list_units(actor: CurrentActor, top: ParentUnit, conn: Conn) -> list[UnitOut]:
    """The children of `parent` (default: the caller's own unit and its children)."""
    if top is None:
        own = conn.execute(select(unit_t).where(unit_t.c.code == actor.unit_code)).first()
        if own is None:
            rows = conn.execute(select(unit_t).where(unit_t.c.parent_id.is_(None))).all()
            return [unit_out(conn, r) for r in rows]
        children = conn.execute(
            select(unit_t).where(unit_t.c.parent_id == own.id).order_by(unit_t.c.code)
        ).all()
        return [unit_out(conn, own)] + [unit_out(conn, r) for r in children]
    rows = conn.execute(
        select(unit_t).where(unit_t.c.parent_id == top.id).order_by(unit_t.c.code)
    ).all()
    return [unit_out(conn, r) for r in rows]


@router.patch("/{code}", response_model=UnitOut)
def patch(
    actor: ManageUnits,
    body: Annotated[UnitPatch, Depends(checked_patch)],
    unit: Annotated[Any, Depends(in_handler(unit_in_scope))],
    conn: Conn,
) -> UnitOut:
    changes = body.model_dump(exclude_unset=True)
    if changes:
        conn.execute(unit_t.update().where(unit_t.c.id == unit.id).values(**changes))
    return unit_out(conn, conn.execute(select(unit_t).where(unit_t.c.id == unit.id)).one())
