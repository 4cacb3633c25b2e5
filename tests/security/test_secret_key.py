"""Finding 1: no usable default signing key. A token or cookie forged with the old default (or an
empty key) opens nothing; `serve` refuses a missing or short key on PostgreSQL, and on a SQLite
file generates one once (mode 0600, beside the database) and reuses it."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import os
import stat
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from jinqiu.api.app import create_app
from jinqiu.api.security import ALGORITHM, SecretKeyProblem, resolve_secret_key
from jinqiu.demo.server import JINQIU, free_port
from jinqiu.workflow.config import Settings, normalise_url
from tests.api.conftest import PASSWORD, World, username
from tests.conftest import POSTGRES_URL
from tests.factories import new_case
from tests.security.support import environment, jinqiu, ok, serving

ADMIN = username("admin", "WH")
MANAGER = username("manager", "WH")
FORGED_KEYS = ["change-me-in-production", ""]


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forged(key: str, user: str, typ: str, now: dt.datetime, **extra: Any) -> str:
    """An HS256 JWT signed by hand (PyJWT will not sign with an empty key; an attacker will)."""
    claims = {
        "sub": user,
        "iat": int(now.timestamp()),
        "typ": typ,
        "gen": 0,
        "exp": int((now + dt.timedelta(hours=1)).timestamp()),
        **extra,
    }
    head = b64(json.dumps({"alg": ALGORITHM, "typ": "JWT"}).encode())
    body = b64(json.dumps(claims).encode())
    mac = hmac.new(key.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(mac)}"


def one_chinese_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text
    assert "Traceback" not in text
    assert any("\u4e00" <= ch <= "\u9fff" for ch in lines[0]), text
    return lines[0]


@pytest.mark.parametrize("key", FORGED_KEYS, ids=["old-default", "empty"])
def test_an_app_configured_from_the_environment_refuses_forged_tokens_and_cookies(
    world: World, monkeypatch: pytest.MonkeyPatch, key: str
) -> None:
    """Built as `serve` builds it (settings from the environment, no key set): on PostgreSQL it
    does not start; on a SQLite file it signs with a generated key, so forgeries fail."""
    monkeypatch.delenv("JINQIU_SECRET_KEY", raising=False)
    settings = Settings(database_url=world.engine.url.render_as_string(hide_password=False))
    if world.engine.dialect.name == "postgresql":
        with pytest.raises(SecretKeyProblem, match="JINQIU_SECRET_KEY"):
            create_app(engine=world.engine, clock=world.clock, settings=settings)
        return
    app = create_app(engine=world.engine, clock=world.clock, settings=settings)
    client = TestClient(app, raise_server_exceptions=False)
    now = world.clock.now()
    token = forged(key, ADMIN, "access", now)
    response = client.get("/api/users", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401, response.text
    assert response.json()["code"] == "unauthorized"

    case_id = new_case(world.engine, world.clock, world.campaign, "WH-HC-001")
    cookie = forged(key, MANAGER, "session", now, csrf="x")
    page = client.get(
        f"/cases/{case_id}", headers={"Cookie": f"jinqiu_session={cookie}"}, follow_redirects=False
    )
    assert page.status_code == 303, page.text
    assert page.headers["location"].startswith("/login")


@pytest.mark.parametrize("key", [*FORGED_KEYS, "x" * 31], ids=["old-default", "empty", "31-bytes"])
def test_an_app_refuses_to_be_built_with_a_short_key(world: World, key: str) -> None:
    with pytest.raises(SecretKeyProblem, match="JINQIU_SECRET_KEY"):
        create_app(engine=world.engine, clock=world.clock, settings=Settings(secret_key=key))


def test_a_key_is_counted_in_bytes() -> None:
    url = "postgresql://postgres@db.example/jinqiu"
    assert resolve_secret_key(Settings(secret_key="密" * 11), url) == "密" * 11  # 33 bytes
    assert resolve_secret_key(Settings(secret_key="k" * 32), url) == "k" * 32
    with pytest.raises(SecretKeyProblem, match="JINQIU_SECRET_KEY"):
        resolve_secret_key(Settings(secret_key="密" * 10), url)  # 30 bytes


@pytest.mark.parametrize(
    "url", ["postgresql://postgres@db.example/jinqiu", "sqlite://", "sqlite:///:memory:"]
)
def test_without_a_key_a_shared_or_in_memory_database_is_refused(url: str) -> None:
    with pytest.raises(SecretKeyProblem, match="JINQIU_SECRET_KEY") as refused:
        resolve_secret_key(Settings(secret_key=None), url)
    assert "\n" not in refused.value.message


def test_the_key_file_is_created_0600_beside_the_database_and_reused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'jinqiu.db'}"
    key = resolve_secret_key(Settings(secret_key=None), url)
    path = tmp_path / "jinqiu.db.secret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(key.encode()) >= 32
    assert path.read_text(encoding="utf-8").strip() == key
    assert resolve_secret_key(Settings(secret_key=None), url) == key
    # A key in the environment wins over the file.
    assert resolve_secret_key(Settings(secret_key="e" * 40), url) == "e" * 40
    assert [p.name for p in tmp_path.iterdir()] == ["jinqiu.db.secret"]  # no temporary left


def test_a_relative_sqlite_path_keeps_its_key_beside_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    key = resolve_secret_key(Settings(secret_key=None), "sqlite:///./data.db")
    assert (tmp_path / "data.db.secret").read_text(encoding="utf-8").strip() == key


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644])
def test_a_key_file_others_may_read_is_refused(tmp_path: Path, mode: int) -> None:
    url = f"sqlite:///{tmp_path / 'jinqiu.db'}"
    resolve_secret_key(Settings(secret_key=None), url)
    path = tmp_path / "jinqiu.db.secret"
    path.chmod(mode)
    with pytest.raises(SecretKeyProblem, match="chmod 600") as refused:
        resolve_secret_key(Settings(secret_key=None), url)
    assert str(path) in refused.value.message


def test_a_key_file_too_short_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "jinqiu.db.secret"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, b"short\n")
    os.close(fd)
    with pytest.raises(SecretKeyProblem, match="32"):
        resolve_secret_key(Settings(secret_key=None), f"sqlite:///{tmp_path / 'jinqiu.db'}")


# -- the real `jinqiu serve` ------------------------------------------------------------------


def serve_exit(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`jinqiu serve` must refuse at once; a server that starts instead is stopped after 60 s."""
    command = [str(JINQIU), "serve", "--host", "127.0.0.1", "--port", str(free_port())]
    try:
        return subprocess.run(
            command,
            env=env,
            capture_output=True,
            text=True,
            encoding="utf-8",
            timeout=60,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("jinqiu serve started without a usable secret key")


@pytest.mark.postgres
def test_serve_without_a_key_on_postgresql_exits_2_naming_the_variable() -> None:
    done = serve_exit(environment(normalise_url(POSTGRES_URL)))
    assert done.returncode == 2, done.stderr
    assert "JINQIU_SECRET_KEY" in one_chinese_line(done.stderr)


def test_serve_with_a_short_key_exits_2_naming_the_variable(tmp_path: Path) -> None:
    env = environment(f"sqlite:///{tmp_path / 'jinqiu.db'}", JINQIU_SECRET_KEY="change-me")
    done = serve_exit(env)
    assert done.returncode == 2, done.stderr
    assert "JINQIU_SECRET_KEY" in one_chinese_line(done.stderr)
    assert not (tmp_path / "jinqiu.db").exists()  # refused before touching the database


def test_serve_on_a_sqlite_file_generates_its_key_once_and_sessions_survive_a_restart(
    tmp_path: Path,
) -> None:
    env = environment(f"sqlite:///{tmp_path / 'jinqiu.db'}")
    ok(env, "unit", "create", "--code", "WH", "--name", "威海市总工会", "--level", "city")
    ok(
        env,
        "user",
        "create",
        "--username",
        ADMIN,
        "--password",
        PASSWORD,
        "--unit",
        "WH",
        "--role",
        "admin",
    )
    key_file = tmp_path / "jinqiu.db.secret"
    with serving(env, tmp_path / "first.log") as base:
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        key = key_file.read_bytes()
        response = httpx.post(
            f"{base}/api/auth/token", data={"username": ADMIN, "password": PASSWORD}
        )
        assert response.status_code == 200, response.text
        token = response.json()["access_token"]
        forgery = forged("change-me-in-production", ADMIN, "access", dt.datetime.now(dt.UTC))
        refused = httpx.get(f"{base}/api/users", headers={"Authorization": f"Bearer {forgery}"})
        assert refused.status_code == 401, refused.text
    with serving(env, tmp_path / "second.log") as base:
        assert key_file.read_bytes() == key
        me = httpx.get(f"{base}/api/users/me", headers={"Authorization": f"Bearer {token}"})
        assert (me.status_code, me.json()["username"]) == (200, ADMIN)
    # Commands that sign nothing never need the key.
    assert jinqiu(env, "audit", "verify").code == 0
