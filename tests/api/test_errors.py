"""Every error leaves in the contract's shape: {"code", "message" (zh-CN), "details"} — also the
ones FastAPI and Starlette raise themselves (unknown path, wrong method, unreadable body) and an
unexpected exception inside a handler."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from jinqiu.api.app import create_app
from jinqiu.api.security import issue_token
from tests.api.conftest import World, username

MANAGER = username("manager", "WH")


def has_chinese(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


def contract(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"code", "message", "details"}, body
    assert body["code"] == code, body
    assert isinstance(body["message"], str) and has_chinese(body["message"]), body
    return dict(body)


@pytest.fixture
def auth(world: World) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(world.settings, MANAGER, world.clock.now())}"}


@pytest.mark.parametrize(
    "path", ["/nope", "/api/nope", "/api/cases/1/nope", "/api/units/WH/children/x", "/API/health"]
)
def test_an_unknown_path_is_404(world: World, auth: dict[str, str], path: str) -> None:
    body = contract(world.client.get(path, headers=auth), 404, "not_found")
    assert body["details"] is None
    contract(world.client.get(path), 404, "not_found")  # signed in or not


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/api/health", {"GET"}),
        ("PUT", "/api/cases/1", {"GET", "PATCH"}),
        ("DELETE", "/api/units/WH", {"GET", "PATCH"}),
        ("GET", "/api/auth/token", {"POST"}),
        ("PATCH", "/api/cases", {"GET", "POST"}),
        ("GET", "/api/cases/1/events", {"POST"}),
    ],
)
def test_a_wrong_method_is_405_naming_allowed_ones(
    world: World, auth: dict[str, str], method: str, path: str, allowed: set[str]
) -> None:
    response = world.client.request(method, path, headers=auth)
    contract(response, 405, "method_not_allowed")
    # Starlette names the methods of the first route matching the path only (GET for
    # /api/cases/1, though PATCH works too): every method named must really be allowed.
    named = {m.strip() for m in response.headers["Allow"].split(",")}
    assert named and named <= allowed and method not in named


@pytest.mark.parametrize(
    ("path", "raw"),
    [
        ("/api/cases", b"{not json"),
        ("/api/cases", b'{"campaign": 1,}'),
        ("/api/cases/1/events", b'{"event": "submit", "version": 1'),
        ("/api/units", b"\xff\xfe garbage"),
        ("/api/cases/bulk-events", b""),
    ],
)
def test_a_malformed_json_body_is_422(
    world: World, auth: dict[str, str], path: str, raw: bytes
) -> None:
    response = world.client.post(
        path, content=raw, headers={**auth, "Content-Type": "application/json"}
    )
    body = contract(response, 422, "validation_error")
    assert isinstance(body["details"], list) and body["details"], body
    for item in body["details"]:
        assert set(item) == {"field", "code", "message"} and has_chinese(item["message"]), item


def test_a_malformed_json_body_says_so(world: World, auth: dict[str, str]) -> None:
    response = world.client.post(
        "/api/cases",
        content=b'{"campaign": 1,}',
        headers={**auth, "Content-Type": "application/json"},
    )
    body = contract(response, 422, "validation_error")
    assert body["details"][0]["code"] == "json_invalid"
    assert "JSON" in body["message"]


def test_a_malformed_json_body_names_the_body_not_a_byte_offset(
    world: World, auth: dict[str, str]
) -> None:
    response = world.client.post(
        "/api/cases",
        content=b'{"campaign": 1,}',
        headers={**auth, "Content-Type": "application/json"},
    )
    assert response.json()["details"][0]["field"] == "body"


@pytest.mark.parametrize(
    ("method", "path", "json", "field"),
    [
        ("POST", "/api/cases", [1, 2], "body"),
        ("POST", "/api/cases", None, "body"),
        ("POST", "/api/cases/1/events", {"event": "fly", "version": 1}, "event"),
        ("POST", "/api/cases/1/events", {"event": "submit", "version": 0}, "version"),
        ("GET", "/api/cases/abc", None, "case_id"),
        ("GET", "/api/cases?page=0", None, "page"),
        ("GET", "/api/cases?state=bogus", None, "state"),
    ],
)
def test_an_invalid_request_is_422_naming_the_field(
    world: World, auth: dict[str, str], method: str, path: str, json: Any, field: str
) -> None:
    response = world.client.request(method, path, json=json, headers=auth)
    body = contract(response, 422, "validation_error")
    assert body["details"][0]["field"].split(".")[-1] == field, body
    assert field in body["message"] and has_chinese(body["details"][0]["message"]), body


def test_an_unexpected_exception_is_500_in_the_contract_shape_without_internals(
    world: World, auth: dict[str, str]
) -> None:
    app = create_app(engine=world.engine, clock=world.clock, settings=world.settings)

    @app.get("/api/boom")
    def boom() -> None:
        raise RuntimeError("secret internal detail /etc/passwd")

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/api/boom", headers=auth)
    body = contract(response, 500, "internal_error")
    assert body["details"] is None
    assert "secret" not in response.text and "RuntimeError" not in response.text
