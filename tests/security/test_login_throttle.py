"""Finding 16: the per-address login throttle believes `X-Forwarded-For` only from the proxies
named in JINQIU_TRUSTED_PROXIES (also under the real `jinqiu serve`, whose HTTP server would
otherwise believe it from loopback); a locked username is unlocked by `jinqiu user unlock`, by an
administrator of its unit (`POST /api/users/{username}/unlock`), or by `jinqiu user
set-password`, which also ends the user's sessions."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from jinqiu.api.app import create_app
from jinqiu.api.security import InvalidSetting
from jinqiu.workflow.config import Settings
from tests.api.conftest import PASSWORD, World, username
from tests.security.support import environment, jinqiu, ok, serving, url_of

CLERK = username("clerk", "WH-HC-001")
ADMIN = username("admin", "WH-HC")
SIBLING_ADMIN = username("admin", "WH-WD")
KEY = "throttle-test-secret-0123456789abcdef"


def with_proxies(world: World, proxies: str, peer: str) -> TestClient:
    settings = Settings(secret_key=KEY, token_minutes=600, trusted_proxies=proxies)
    app = create_app(engine=world.engine, clock=world.clock, settings=settings)
    return TestClient(app, client=(peer, 50000), raise_server_exceptions=False)


def login(
    client: TestClient | httpx.Client,
    user: str,
    password: str,
    forwarded: str | None = None,
    base: str = "",
) -> int:
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    response = client.post(
        f"{base}/api/auth/token", headers=headers, data={"username": user, "password": password}
    )
    assert response.status_code in {200, 401, 429}, response.text
    return response.status_code


def fail_five_times_from(client: TestClient, forwarded: list[str] | str | None) -> None:
    """Five failures under five unknown usernames: only the address can add them up."""
    for i in range(5):
        hop = forwarded[i] if isinstance(forwarded, list) else forwarded
        assert login(client, f"nobody-{i}", "guess", hop) == 401


def test_x_forwarded_for_from_an_untrusted_peer_is_ignored(world: World) -> None:
    client = with_proxies(world, "10.9.0.0/16", peer="10.2.2.2")
    fail_five_times_from(client, [f"192.0.2.{i}" for i in range(5)])
    assert login(client, CLERK, PASSWORD, "192.0.2.99") == 429


def test_x_forwarded_for_from_a_trusted_proxy_names_the_client(world: World) -> None:
    proxy = with_proxies(world, "10.9.0.0/16, 10.8.0.1", peer="10.9.0.5")
    fail_five_times_from(proxy, "198.51.100.7")
    assert login(proxy, CLERK, PASSWORD, "198.51.100.7") == 429
    # Another client behind the same proxy is not locked out by the first one.
    assert login(proxy, CLERK, PASSWORD, "198.51.100.8") == 200
    # Through two trusted proxies the client is the rightmost untrusted hop; what the client
    # itself put in front cannot move it.
    assert login(proxy, CLERK, PASSWORD, "203.0.113.5, 198.51.100.7, 10.8.0.1") == 429
    assert login(proxy, CLERK, PASSWORD, "198.51.100.7, 198.51.100.9, 10.8.0.1") == 200


def test_an_invalid_proxy_setting_is_refused_by_name(world: World) -> None:
    with pytest.raises(InvalidSetting, match="JINQIU_TRUSTED_PROXIES"):
        with_proxies(world, "10.0.0.0/8, proxy.example", peer="10.2.2.2")


def test_serve_ignores_x_forwarded_for_from_loopback(db: Engine, tmp_path: Path) -> None:
    """The real server: by default uvicorn would believe X-Forwarded-For from 127.0.0.1."""
    env = environment(url_of(db), JINQIU_SECRET_KEY=KEY)
    with serving(env, tmp_path / "serve.log") as base, httpx.Client() as client:
        for i in range(5):
            assert login(client, f"nobody-{i}", "guess", f"192.0.2.{i}", base) == 401
        assert login(client, "nobody-5", "guess", "192.0.2.5", base) == 429
        # The operator lifts an address lock (an office behind one NAT address) by hand.
        assert "127.0.0.1" in ok(env, "user", "unlock", "--address", "127.0.0.1")
        assert login(client, "nobody-5", "guess", "192.0.2.5", base) == 401


def lock(world: World, user: str) -> None:
    for i in range(5):
        client = TestClient(
            world.client.app, client=(f"10.4.4.{i}", 50000), raise_server_exceptions=False
        )
        assert login(client, user, "wrong-password") == 401
    assert login(world.client, user, PASSWORD) == 429


def test_the_unlock_command_clears_the_username_lock(world: World) -> None:
    lock(world, CLERK)
    env = environment(url_of(world.engine))
    run = jinqiu(env, "user", "unlock", "--username", CLERK)
    assert run.code == 0, run.err
    assert CLERK in run.out
    assert login(world.client, CLERK, PASSWORD) == 200


def test_the_unlock_command_refuses_an_unknown_user(world: World) -> None:
    run = jinqiu(environment(url_of(world.engine)), "user", "unlock", "--username", "ghost")
    assert run.code == 2
    assert "ghost" in run.err and "Traceback" not in run.err


def test_set_password_unlocks_and_ends_the_sessions(world: World) -> None:
    token = world.token(CLERK)
    lock(world, CLERK)
    env = environment(url_of(world.engine))
    ok(env, "user", "set-password", "--username", CLERK, "--password", "new-password-99")
    me = world.client.get("/api/users/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 401, me.text
    assert login(world.client, CLERK, PASSWORD) == 401
    assert login(world.client, CLERK, "new-password-99") == 200


def test_an_admin_of_the_unit_may_unlock_it_and_a_sibling_may_not(world: World) -> None:
    lock(world, CLERK)
    hidden = world.client.post(f"/api/users/{CLERK}/unlock", headers=world.as_(SIBLING_ADMIN))
    assert (hidden.status_code, hidden.json()["code"]) == (404, "not_found")
    assert login(world.client, CLERK, PASSWORD) == 429
    done = world.client.post(f"/api/users/{CLERK}/unlock", headers=world.as_(ADMIN))
    assert done.status_code == 204, done.text
    assert login(world.client, CLERK, PASSWORD) == 200
