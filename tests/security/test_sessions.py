"""Finding 11: signing out, a password change, a deactivation or a role change ends every bearer
token and page cookie the user had: each carries the user's token generation, which these bump
and every request checks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jwt
from fastapi.testclient import TestClient

from tests.api.conftest import PASSWORD, World, username
from tests.factories import new_case

CLERK = username("clerk", "WH-HC-001")
MANAGER = username("manager", "WH-HC-001")
ADMIN = username("admin", "WH-HC")
NEW_PASSWORD = "battery-staple-77"


@dataclass
class Sessions:
    """One bearer token and one page cookie of the same user, each from its own sign-in."""

    world: World
    token: str
    cookie: str
    case_id: int

    def api_alive(self) -> bool:
        response = self.world.client.get("/api/users/me", headers=bearer(self.token))
        assert response.status_code in {200, 401}, response.text
        return response.status_code == 200

    def page_alive(self) -> bool:
        response = page(self.world, self.cookie, f"/cases/{self.case_id}")
        if response.status_code == 303:
            assert response.headers["location"].startswith("/login"), response.headers
            return False
        assert response.status_code == 200, response.text
        return True


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def browser(world: World) -> TestClient:
    """A client with no cookie jar of its own in play (cookies are sent explicitly)."""
    return TestClient(world.client.app, raise_server_exceptions=False)


def page(world: World, cookie: str, path: str, **kwargs: Any) -> Any:
    client = browser(world)
    return client.get(
        path, headers={"Cookie": f"jinqiu_session={cookie}"}, follow_redirects=False, **kwargs
    )


def sign_in_page(world: World, user: str, password: str = PASSWORD) -> str:
    response = browser(world).post(
        "/login", data={"username": user, "password": password}, follow_redirects=False
    )
    assert response.status_code == 303, response.text
    return str(response.cookies["jinqiu_session"])


def sign_in_api(world: World, user: str, password: str = PASSWORD) -> str:
    response = world.client.post("/api/auth/token", data={"username": user, "password": password})
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def sessions_of(world: World, user: str) -> Sessions:
    case_id = new_case(world.engine, world.clock, world.campaign, "WH-HC-001")
    s = Sessions(world, sign_in_api(world, user), sign_in_page(world, user), case_id)
    assert s.api_alive() and s.page_alive()
    return s


def patch_user(world: World, user: str, body: dict[str, Any]) -> None:
    response = world.client.patch(f"/api/users/{user}", json=body, headers=world.as_(ADMIN))
    assert response.status_code == 200, response.text


def test_a_password_change_ends_every_token_and_cookie(world: World) -> None:
    s = sessions_of(world, MANAGER)
    patch_user(world, MANAGER, {"password": NEW_PASSWORD})
    assert not s.api_alive()
    assert not s.page_alive()
    assert (
        world.client.post(
            "/api/auth/token", data={"username": MANAGER, "password": PASSWORD}
        ).status_code
        == 401
    )
    fresh = Sessions(
        world,
        sign_in_api(world, MANAGER, NEW_PASSWORD),
        sign_in_page(world, MANAGER, NEW_PASSWORD),
        s.case_id,
    )
    assert fresh.api_alive() and fresh.page_alive()


def test_deactivation_ends_them_and_reactivation_does_not_bring_them_back(
    world: World,
) -> None:
    s = sessions_of(world, MANAGER)
    patch_user(world, MANAGER, {"is_active": False})
    assert not s.api_alive()
    assert not s.page_alive()
    patch_user(world, MANAGER, {"is_active": True})
    assert not s.api_alive()
    assert not s.page_alive()
    assert sessions_of(world, MANAGER).api_alive()


def test_a_role_change_ends_them(world: World) -> None:
    s = sessions_of(world, MANAGER)
    patch_user(world, MANAGER, {"roles": ["manager", "reviewer"]})
    assert not s.api_alive()
    assert not s.page_alive()


def test_a_display_name_change_or_an_unchanged_role_list_ends_nothing(
    world: World,
) -> None:
    s = sessions_of(world, MANAGER)
    patch_user(world, MANAGER, {"display_name": "王经办"})
    patch_user(world, MANAGER, {"roles": ["manager"]})
    assert s.api_alive() and s.page_alive()


def test_signing_out_of_the_pages_ends_the_cookie_and_the_tokens(world: World) -> None:
    s = sessions_of(world, MANAGER)
    stolen = s.cookie  # a copy the browser no longer holds after signing out still must not work
    csrf = jwt.decode(stolen, options={"verify_signature": False})["csrf"]
    out = browser(world).post(
        "/logout",
        data={"csrf_token": csrf},
        headers={"Cookie": f"jinqiu_session={stolen}"},
        follow_redirects=False,
    )
    assert out.status_code == 303, out.text
    assert not s.page_alive()
    assert not s.api_alive()


def test_signing_out_of_the_api_ends_the_token_and_the_cookies(world: World) -> None:
    s = sessions_of(world, MANAGER)
    out = world.client.post("/api/auth/logout", headers=bearer(s.token))
    assert out.status_code == 204, out.text
    assert not s.api_alive()
    assert not s.page_alive()
    again = world.client.post("/api/auth/logout", headers=bearer(s.token))
    assert again.status_code == 401, again.text


def test_one_user_signing_out_leaves_the_others_signed_in(world: World) -> None:
    mine, theirs = sessions_of(world, MANAGER), sessions_of(world, CLERK)
    assert world.client.post("/api/auth/logout", headers=bearer(mine.token)).status_code == 204
    assert theirs.api_alive() and theirs.page_alive()


def test_a_token_without_a_generation_is_refused(world: World) -> None:
    s = sessions_of(world, MANAGER)
    claims = jwt.decode(s.token, options={"verify_signature": False})
    del claims["gen"]
    token = jwt.encode(claims, world.settings.secret_key or "", algorithm="HS256")
    response = world.client.get("/api/users/me", headers=bearer(token))
    assert response.status_code == 401, response.text
