"""Bearer tokens and the login throttle, through HTTP.

Tokens: expiry is judged by the injected clock (moved here), a foreign signature, a malformed
or missing token all give 401 with the contract body and `WWW-Authenticate: Bearer`.
Throttle: 5 failures inside 15 minutes, per username or per client address → 429 with
Retry-After, even for the right password; unknown usernames count too; the window passes.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import jwt
import pytest
from argon2 import extract_parameters, profiles
from fastapi.testclient import TestClient
from sqlalchemy import select

from jinqiu.api.errors import Unauthorized
from jinqiu.api.security import ALGORITHM, issue_token, read_token
from jinqiu.workflow.config import Settings
from jinqiu.workflow.users.models import User
from tests.api.conftest import PASSWORD, World, username

CLERK = username("clerk", "WH-HC-001")
ADMIN = username("admin", "WH-HC")
PUBLIC = {("GET", "/api/health"), ("POST", "/api/auth/token")}


def login(client: TestClient, user: str, password: str) -> httpx.Response:
    return client.post("/api/auth/token", data={"username": user, "password": password})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def from_address(world: World, host: str) -> TestClient:
    """A client whose requests come from `host` (the throttle counts per address)."""
    return TestClient(world.client.app, client=(host, 50000), raise_server_exceptions=False)


def assert_unauthorized(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 401, response.text
    assert response.headers["WWW-Authenticate"] == "Bearer"
    body = response.json()
    assert set(body) == {"code", "message", "details"}
    assert body["code"] == "unauthorized"
    assert any("\u4e00" <= ch <= "\u9fff" for ch in body["message"]), body
    return dict(body)


def assert_throttled(response: httpx.Response) -> int:
    assert response.status_code == 429, response.text
    body = response.json()
    assert body["code"] == "too_many_attempts"
    assert any("\u4e00" <= ch <= "\u9fff" for ch in body["message"]), body
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= 15 * 60 + 1
    return retry_after


def claims(world: World, **changes: Any) -> dict[str, Any]:
    now = int(world.clock.now().timestamp())
    out: dict[str, Any] = {"sub": CLERK, "iat": now, "exp": now + 600, "typ": "access", "gen": 0}
    out.update(changes)
    return {k: v for k, v in out.items() if v is not None}


class TestTokens:
    def test_a_signed_in_user_is_known_by_the_token(self, world: World) -> None:
        response = login(world.client, CLERK, PASSWORD)
        assert response.status_code == 200, response.text
        token = response.json()
        assert token["token_type"] == "bearer"
        assert token["expires_in"] == world.settings.token_minutes * 60
        me = world.client.get("/api/users/me", headers=bearer(token["access_token"]))
        assert (me.status_code, me.json()["username"]) == (200, CLERK)

    def test_a_token_expires_by_the_injected_clock(self, world: World) -> None:
        token = login(world.client, CLERK, PASSWORD).json()["access_token"]
        issued = world.clock.now()
        lifetime = dt.timedelta(minutes=world.settings.token_minutes)
        world.clock.set(issued + lifetime - dt.timedelta(seconds=1))
        assert world.client.get("/api/users/me", headers=bearer(token)).status_code == 200
        world.clock.set(issued + lifetime)
        body = assert_unauthorized(world.client.get("/api/users/me", headers=bearer(token)))
        assert "过期" in body["message"]
        world.clock.set(issued + lifetime + dt.timedelta(days=1))
        assert_unauthorized(world.client.get("/api/cases", headers=bearer(token)))

    def test_a_token_signed_with_another_key_is_refused(self, world: World) -> None:
        forged = jwt.encode(
            claims(world), "another-secret-key-0123456789abcdef", algorithm=ALGORITHM
        )
        assert_unauthorized(world.client.get("/api/users/me", headers=bearer(forged)))
        genuine = jwt.encode(claims(world), world.settings.secret_key, algorithm=ALGORITHM)
        assert world.client.get("/api/users/me", headers=bearer(genuine)).status_code == 200

    def test_a_token_checked_once_is_still_checked_against_the_key(self, world: World) -> None:
        """A process remembers the claims of a token it has checked (a signature check costs
        more than the rest of a request's sign-in): a token checked under one key is still
        refused under another, and a remembered token still expires by the clock."""
        now = world.clock.now()
        first = Settings(secret_key="k" * 40, token_minutes=10)
        token = issue_token(first, CLERK, now)
        assert read_token(first, token, now).username == CLERK
        with pytest.raises(Unauthorized):
            read_token(Settings(secret_key="j" * 40), token, now)
        with pytest.raises(Unauthorized, match="过期"):
            read_token(first, token, now + dt.timedelta(minutes=10))
        assert read_token(first, token, now + dt.timedelta(minutes=9)).username == CLERK

    @pytest.mark.parametrize(
        "token",
        [
            "not-a-token",
            "a.b.c",
            "eyJhbGciOiJIUzI1NiJ9..",
            "Bearer",
            "x" * 2000,
            # "alg": "none", unsigned
            "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJhZG1pbi53aCIsImV4cCI6NDEwMjQ0NDgwMH0.",
        ],
    )
    def test_a_malformed_token_is_refused(self, world: World, token: str) -> None:
        assert_unauthorized(world.client.get("/api/users/me", headers=bearer(token)))

    @pytest.mark.parametrize(
        "changes",
        [
            {"exp": None},
            {"iat": None},
            {"sub": None},
            {"typ": "refresh"},
            {"sub": 42},
            {"sub": "nobody.at.all"},
            {"gen": None},
            {"gen": 1},
            {"gen": "0"},
        ],
        ids=[
            "no-exp",
            "no-iat",
            "no-sub",
            "not-access",
            "sub-not-a-string",
            "unknown-user",
            "no-generation",
            "another-generation",
            "generation-not-an-int",
        ],
    )
    def test_a_well_signed_token_with_wrong_claims_is_refused(
        self, world: World, changes: dict[str, Any]
    ) -> None:
        token = jwt.encode(claims(world, **changes), world.settings.secret_key, algorithm=ALGORITHM)
        assert_unauthorized(world.client.get("/api/users/me", headers=bearer(token)))

    def test_a_missing_token_or_another_scheme_is_refused(self, world: World) -> None:
        assert_unauthorized(world.client.get("/api/users/me"))
        assert_unauthorized(world.client.get("/api/users/me", headers={"Authorization": ""}))
        assert_unauthorized(
            world.client.get(
                "/api/users/me", headers={"Authorization": f"Basic {CLERK}:{PASSWORD}"}
            )
        )

    def test_a_deactivated_user_is_refused_with_a_valid_token(self, world: World) -> None:
        token = login(world.client, CLERK, PASSWORD).json()["access_token"]
        off = world.client.patch(
            f"/api/users/{CLERK}", json={"is_active": False}, headers=world.as_(ADMIN)
        )
        assert off.status_code == 200, off.text
        assert_unauthorized(world.client.get("/api/users/me", headers=bearer(token)))
        assert_unauthorized(login(world.client, CLERK, PASSWORD))

    def test_every_route_but_health_and_sign_in_needs_a_token(self, world: World) -> None:
        paths = world.client.app.openapi()["paths"]  # type: ignore[attr-defined]
        routes = {(m.upper(), p) for p, ops in paths.items() for m in ops} - PUBLIC
        assert len(routes) >= 15
        for method, path in sorted(routes):
            url = path.replace("{case_id}", "1").replace("{campaign_id}", "1")
            url = url.replace("{item_id}", "1").replace("{code}", "WH").replace("{username}", CLERK)
            url = url.replace("{list_id}", "1").replace("{objection_id}", "1")
            url = url.replace("{batch_id}", "1").replace("{attachment_id}", "1")
            url = url.replace("{record_id}", "1").replace("{subject_id}", "1")
            url = url.replace("{post_id}", "1")
            assert "{" not in url, f"fill the path parameters of {path}"
            response = world.client.request(method, url)
            assert response.status_code == 401, f"{method} {path}: {response.status_code}"
            assert_unauthorized(response)
        assert world.client.get("/api/health").json() == {"status": "ok", "sweep_errors": 0}


class TestPasswords:
    def test_an_account_made_through_the_service_stores_a_full_strength_argon2id_hash(
        self, world: World
    ) -> None:
        # The fixture's accounts carry a cheap hash (tests/factories.password_hash); the
        # service's own never do.
        made = world.client.post(
            "/api/users",
            headers=world.as_(username("admin", "WH")),
            json={
                "username": "new.clerk",
                "password": "long-enough-1",
                "unit": "WH-HC-001",
                "roles": ["clerk"],
            },
        )
        assert made.status_code == 201, made.text
        user_t = User.__table__  # type: ignore[attr-defined]
        with world.engine.connect() as conn:
            stored = conn.execute(
                select(user_t.c.password_hash).where(user_t.c.username == "new.clerk")
            ).scalar_one()
        assert extract_parameters(stored) == profiles.RFC_9106_LOW_MEMORY
        assert login(world.client, "new.clerk", "long-enough-1").status_code == 200
        assert_unauthorized(login(world.client, "new.clerk", "long-enough-2"))


class TestThrottle:
    def test_five_failures_for_one_username_lock_it_even_with_the_right_password(
        self, world: World
    ) -> None:
        for _ in range(5):
            assert_unauthorized(login(world.client, CLERK, "wrong-password"))
        assert_throttled(login(world.client, CLERK, PASSWORD))
        # The username is locked from every address, not just the one that failed.
        assert_throttled(login(from_address(world, "10.1.1.1"), CLERK, PASSWORD))
        # Another user from another address is not affected.
        assert login(from_address(world, "10.1.1.2"), ADMIN, PASSWORD).status_code == 200

    def test_four_failures_are_not_enough(self, world: World) -> None:
        for _ in range(4):
            assert_unauthorized(login(world.client, CLERK, "wrong-password"))
        assert login(world.client, CLERK, PASSWORD).status_code == 200

    def test_an_address_is_locked_after_five_failures_across_usernames(self, world: World) -> None:
        attacker = from_address(world, "10.2.2.2")
        for i in range(5):  # unknown usernames count too
            assert_unauthorized(login(attacker, f"nobody-{i}", "guess"))
        assert_throttled(login(attacker, CLERK, PASSWORD))
        assert_throttled(login(attacker, ADMIN, PASSWORD))
        assert login(from_address(world, "10.2.2.3"), CLERK, PASSWORD).status_code == 200

    def test_failures_for_an_unknown_username_lock_that_name_across_addresses(
        self, world: World
    ) -> None:
        for i in range(5):
            assert_unauthorized(login(from_address(world, f"10.3.3.{i}"), "ghost", "guess"))
        assert_throttled(login(from_address(world, "10.3.3.9"), "ghost", "guess"))

    def test_the_lock_lifts_after_the_window(self, world: World) -> None:
        for _ in range(5):
            assert_unauthorized(login(world.client, CLERK, "wrong-password"))
        start = world.clock.now()
        retry_after = assert_throttled(login(world.client, CLERK, PASSWORD))
        world.clock.set(start + dt.timedelta(minutes=14))
        assert_throttled(login(world.client, CLERK, PASSWORD))
        world.clock.set(start + dt.timedelta(seconds=retry_after))
        assert login(world.client, CLERK, PASSWORD).status_code == 200
        world.clock.set(start + dt.timedelta(minutes=16))
        response = login(world.client, CLERK, PASSWORD)
        assert response.status_code == 200, response.text
        assert (
            world.client.get(
                "/api/users/me", headers=bearer(response.json()["access_token"])
            ).status_code
            == 200
        )

    def test_retry_after_counts_down_from_the_oldest_failure(self, world: World) -> None:
        start = world.clock.now()
        for minute in range(5):
            world.clock.set(start + dt.timedelta(minutes=minute))
            assert_unauthorized(login(world.client, CLERK, "wrong-password"))
        world.clock.set(start + dt.timedelta(minutes=10))
        retry_after = assert_throttled(login(world.client, CLERK, PASSWORD))
        assert 4 * 60 <= retry_after <= 5 * 60 + 1  # the first failure leaves the window at 15
        # Once the oldest failure has left the window only four remain: signing in works.
        world.clock.set(start + dt.timedelta(minutes=15, seconds=1))
        assert login(world.client, CLERK, PASSWORD).status_code == 200

    def test_a_success_clears_the_username_count(self, world: World) -> None:
        for i in range(4):
            assert_unauthorized(login(from_address(world, f"10.4.4.{i}"), CLERK, "wrong"))
        assert login(from_address(world, "10.4.4.10"), CLERK, PASSWORD).status_code == 200
        for i in range(4):
            assert_unauthorized(login(from_address(world, f"10.4.5.{i}"), CLERK, "wrong"))
        assert login(from_address(world, "10.4.6.1"), CLERK, PASSWORD).status_code == 200
