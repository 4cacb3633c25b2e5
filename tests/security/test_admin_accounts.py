"""Finding 10: an administrator cannot raise or change their own roles, cannot deactivate
themselves, and the last active administrator of the root unit cannot be removed by anyone —
also when two administrators remove each other at the same moment. The service's own `scheduler`
role is never given to a person."""

from __future__ import annotations

import threading
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, select

from jinqiu.workflow.db import transaction
from jinqiu.workflow.errors import DomainError
from jinqiu.workflow.users.models import User
from jinqiu.workflow.users.service import LastAdmin, update_user
from tests.api.conftest import World, username

user_t = User.__table__  # type: ignore[attr-defined]
ROOT_ADMIN = username("admin", "WH")
DISTRICT_ADMIN = username("admin", "WH-HC")


def patch(world: World, who: str, target: str, body: dict[str, Any]) -> httpx.Response:
    return world.client.patch(f"/api/users/{target}", json=body, headers=world.as_(who))


def refused(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code, body
    assert any("\u4e00" <= ch <= "\u9fff" for ch in body["message"]), body
    return dict(body)


def account(engine: Engine, name: str) -> Any:
    with engine.connect() as conn:
        return conn.execute(select(user_t).where(user_t.c.username == name)).one()


@pytest.mark.parametrize("who", [ROOT_ADMIN, DISTRICT_ADMIN])
@pytest.mark.parametrize(
    "body",
    [
        {"roles": ["admin", "manager", "finance"]},
        {"roles": ["manager"]},
        {"roles": ["admin"], "is_active": False},
        {"is_active": False},
    ],
    ids=["raise", "swap", "same-roles-but-deactivate", "deactivate"],
)
def test_an_admin_cannot_change_their_own_roles_or_deactivate_themselves(
    world: World, who: str, body: dict[str, Any]
) -> None:
    before = account(world.engine, who)
    body_out = refused(patch(world, who, who, body), 403, "own_account_change")
    assert body_out["details"]["field"] in body
    after = account(world.engine, who)
    assert (after.roles, after.is_active) == (before.roles, before.is_active)
    assert world.client.get("/api/users/me", headers=world.as_(who)).status_code == 200


def test_an_admin_may_rename_themselves_and_resend_their_own_roles(
    world: World,
) -> None:
    response = patch(
        world,
        DISTRICT_ADMIN,
        DISTRICT_ADMIN,
        {"display_name": "区总管理员", "roles": ["admin"], "is_active": True},
    )
    assert response.status_code == 200, response.text
    assert response.json()["display_name"] == "区总管理员"


def test_another_admin_may_change_them(world: World) -> None:
    response = patch(world, ROOT_ADMIN, DISTRICT_ADMIN, {"roles": ["admin", "manager"]})
    assert response.status_code == 200, response.text
    assert response.json()["roles"] == ["admin", "manager"]
    # The only admin of a district is not protected: the root's administrators remain.
    response = patch(world, ROOT_ADMIN, DISTRICT_ADMIN, {"is_active": False})
    assert response.status_code == 200, response.text


def second_root_admin(world: World, name: str = "admin2.wh") -> str:
    response = world.client.post(
        "/api/users",
        headers=world.as_(ROOT_ADMIN),
        json={"username": name, "password": "long-enough-1", "unit": "WH", "roles": ["admin"]},
    )
    assert response.status_code == 201, response.text
    return name


@pytest.mark.parametrize(
    "change", [{"is_active": False}, {"roles": ["manager"]}], ids=["deactivate", "demote"]
)
def test_the_last_active_admin_of_the_root_unit_cannot_be_removed(
    world: World, change: dict[str, Any]
) -> None:
    other = second_root_admin(world)
    assert patch(world, ROOT_ADMIN, other, change).status_code == 200
    # `other` was removed a moment ago and acts on a decision taken before (a race, a stale
    # page): the service itself refuses to leave the root without an administrator.
    with pytest.raises(LastAdmin) as caught, transaction(world.engine) as conn:
        update_user(conn, ROOT_ADMIN, by=other, **change)
    assert (caught.value.code, caught.value.status) == ("last_admin", 409)
    assert account(world.engine, ROOT_ADMIN).is_active
    assert "admin" in account(world.engine, ROOT_ADMIN).roles


def test_two_root_admins_removing_each_other_at_once_leave_one(
    world: World,
) -> None:
    for round_ in range(5):
        other = second_root_admin(world, f"admin{round_}.wh")
        barrier = threading.Barrier(2)
        outcomes: list[str] = []

        def remove(target: str, by: str, barrier: threading.Barrier, outcomes: list[str]) -> None:
            barrier.wait()
            try:
                with transaction(world.engine) as conn:
                    update_user(conn, target, by=by, is_active=False)
                outcomes.append("removed")
            except DomainError as error:
                outcomes.append(error.code)

        threads = [
            threading.Thread(target=remove, args=(ROOT_ADMIN, other, barrier, outcomes)),
            threading.Thread(target=remove, args=(other, ROOT_ADMIN, barrier, outcomes)),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(outcomes) == ["last_admin", "removed"], outcomes
        with world.engine.connect() as conn:
            active = (
                conn.execute(
                    select(user_t.c.username).where(
                        user_t.c.username.in_([ROOT_ADMIN, other]), user_t.c.is_active
                    )
                )
                .scalars()
                .all()
            )
        assert len(active) == 1, active
        if active == [other]:  # the usual administrator alone again for the next round
            with transaction(world.engine) as conn:
                update_user(conn, ROOT_ADMIN, by=other, is_active=True)
            with transaction(world.engine) as conn:
                update_user(conn, other, by=ROOT_ADMIN, is_active=False)
            world.tokens.clear()


def test_the_scheduler_role_is_not_given_to_people(world: World) -> None:
    created = world.client.post(
        "/api/users",
        headers=world.as_(ROOT_ADMIN),
        json={
            "username": "robot.wh",
            "password": "long-enough-1",
            "unit": "WH",
            "roles": ["scheduler"],
        },
    )
    body = refused(created, 422, "validation_error")
    assert body["details"][0]["field"].startswith("roles"), body
    changed = patch(world, ROOT_ADMIN, DISTRICT_ADMIN, {"roles": ["admin", "scheduler"]})
    body = refused(changed, 422, "validation_error")
    assert body["details"][0]["field"] == "roles", body
    assert account(world.engine, DISTRICT_ADMIN).roles == ["admin"]
