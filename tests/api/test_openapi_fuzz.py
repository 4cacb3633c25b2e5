"""Property-based fuzzing of the OpenAPI document with Schemathesis, in-process (ASGI, no server).

For every operation, Hypothesis generates requests from the schema (valid and invalid ones) and
sends them signed in as a manager-and-admin of the city union WH. Every response must be no 5xx
and conform to the document: a documented status code, the documented content type and headers,
and a body that validates against the response schema.

Bounded and deterministic for CI: `derandomize=True` (the examples follow from the test alone),
no example database, MAX_EXAMPLES per operation. Each operation runs against an emptied database
seeded with the Weihai tree, the 2024 campaign and a few cases, so small generated ids hit real
rows.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from sqlalchemy import Engine, create_engine, text

from jinqiu.api.app import create_app
from jinqiu.api.deps import Services
from jinqiu.api.security import issue_token
from jinqiu.workflow.clock import ManualClock
from jinqiu.workflow.config import Settings
from jinqiu.workflow.db import transaction
from jinqiu.workflow.users.models import User
from tests.factories import new_case, student, weihai, worker

MAX_EXAMPLES = 25
FUZZER = "fuzz.wh"
SETTINGS = Settings(
    secret_key="fuzz-secret-key-0123456789abcdef",
    token_minutes=60 * 24,
    attachments_dir=tempfile.mkdtemp(prefix="jinqiu-fuzz-attachments-"),
)
user_t = User.__table__  # type: ignore[attr-defined]

# The document is the app's own; the database behind it is swapped in per test (`fuzz_db`).
APP = create_app(
    engine=create_engine("sqlite://"),
    clock=ManualClock(dt.datetime(2024, 7, 20, 9)),
    settings=SETTINGS,
)
SCHEMA = schemathesis.openapi.from_asgi("/openapi.json", APP)

CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_headers_conformance,
    schemathesis.checks.response_schema_conformance,
]


def seed(engine: Engine, clock: ManualClock) -> None:
    _tree, campaign = weihai(engine, clock)
    with transaction(engine) as conn:
        wh = conn.execute(text("SELECT id FROM unit WHERE code = 'WH'")).scalar_one()
        conn.execute(
            user_t.insert().values(
                username=FUZZER,
                password_hash="signs-in-by-minted-token-only",
                display_name="模糊测试",
                unit_id=wh,
                roles=["manager", "admin"],
                is_active=True,
                created_at=clock.now(),
            )
        )
    for unit in ("WH-HC-001", "WH-HC-002", "WH-WD-001"):
        new_case(engine, clock, campaign, unit)


def serve_from(engine: Engine) -> dict[str, str]:
    """Seeds `engine`, puts it behind APP; the bearer header of the manager-and-admin at WH."""
    clock = ManualClock(dt.datetime(2024, 7, 20, 9, 0))
    seed(engine, clock)
    APP.state.services = Services(engine=engine, clock=clock, settings=SETTINGS)
    return {"Authorization": f"Bearer {issue_token(SETTINGS, FUZZER, clock.now())}"}


@pytest.fixture
def fuzz_db(db: Engine) -> dict[str, str]:
    """The `db` fixture's database (SQLite, then PostgreSQL), seeded, behind APP; the fuzzer's
    bearer header."""
    return serve_from(db)


@pytest.fixture
def fuzz_pg(pg: Engine) -> dict[str, str]:
    """PostgreSQL only behind APP."""
    return serve_from(pg)


@SCHEMA.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_response_is_documented_and_no_5xx(
    case: schemathesis.Case, fuzz_db: dict[str, str]
) -> None:
    case.call_and_validate(headers=fuzz_db, checks=CHECKS)


# -- what the fuzzing found, pinned -------------------------------------------------------------

BEYOND_RANGE = [
    ("GET", "/api/cases/{big}", None),
    ("PATCH", "/api/cases/{big}", {"student": {"school": "青岛大学"}}),
    ("GET", "/api/cases/{big}/history", None),
    ("POST", "/api/cases/{big}/events", {"event": "submit", "version": 1}),
    (
        "POST",
        "/api/cases/bulk-events",
        {"event": "submit", "cases": [{"id": "{big}", "version": 1}]},
    ),
    ("GET", "/api/cases?campaign={big}", None),
    (
        "POST",
        "/api/cases",
        {"campaign": "{big}", "unit": "WH-HC-001", "worker": "{worker}", "student": "{student}"},
    ),
    ("GET", "/api/campaigns/{big}", None),
    ("POST", "/api/campaigns/{big}/reports", {"unit": "WH-HC", "kind": "statistics"}),
    ("GET", "/api/campaigns/{big}/statistics", None),
    ("GET", "/api/dashboard?campaign={big}", None),
    ("POST", "/api/inbox/{big}/read", None),
]


def fill(value: Any, big: int) -> Any:
    if value == "{big}":
        return big
    if value == "{worker}":
        return worker()
    if value == "{student}":
        return student()
    if isinstance(value, dict):
        return {k: fill(v, big) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, big) for v in value]
    return value


@pytest.mark.parametrize(
    ("method", "url", "body"),
    BEYOND_RANGE,
    ids=[f"{m} {u.split('?')[0]}" for m, u, _b in BEYOND_RANGE],
)
def test_an_id_beyond_the_database_range_is_refused_not_a_500(
    fuzz_db: dict[str, str], method: str, url: str, body: Any
) -> None:
    engine = APP.state.services.engine
    big = 2**31 if engine.dialect.name == "postgresql" else 2**63
    with TestClient(APP, raise_server_exceptions=False) as client:
        response = client.request(
            method, url.replace("{big}", str(big)), json=fill(body, big), headers=fuzz_db
        )
    assert response.status_code < 500, response.text
    assert response.status_code in {200, 404, 422}, response.text
    if response.status_code == 200:  # bulk: one result per case, that one not found
        assert response.json()["results"][0]["error"]["code"] == "not_found", response.text
    else:
        assert response.json()["code"] in {"not_found", "validation_error"}, response.text


def test_a_small_unknown_id_is_a_plain_404(fuzz_db: dict[str, str]) -> None:
    """The same routes with an id that fits the column: no 500, the contract's 404/422."""
    with TestClient(APP, raise_server_exceptions=False) as client:
        for method, url, body in BEYOND_RANGE:
            response = client.request(
                method,
                url.replace("{big}", "2147483000"),
                json=fill(body, 2147483000),
                headers=fuzz_db,
            )
            assert response.status_code in {200, 404, 422}, f"{method} {url}: {response.text}"


def json_body_operations() -> list[tuple[str, str, set[str]]]:
    out = []
    for path, operations in APP.openapi()["paths"].items():
        for method, operation in operations.items():
            content = operation.get("requestBody", {}).get("content", {})
            if "application/json" in content:
                out.append((method.upper(), path, set(operation["responses"])))
    return out


def test_an_undecodable_body_gets_a_documented_status(fuzz_db: dict[str, str]) -> None:
    operations = json_body_operations()
    assert len(operations) >= 8
    undocumented = []
    with TestClient(APP, raise_server_exceptions=False) as client:
        for method, path, documented in operations:
            url = path.replace("{case_id}", "1").replace("{campaign_id}", "1")
            url = url.replace("{code}", "WH-HC").replace("{username}", FUZZER)
            response = client.request(
                method,
                url,
                content=b"\xb2",
                headers={**fuzz_db, "Content-Type": "application/json"},
            )
            assert response.status_code < 500
            assert set(response.json()) == {"code", "message", "details"}
            if str(response.status_code) not in documented:
                undocumented.append(f"{method} {path}: {response.status_code}")
    assert not undocumented, undocumented


def test_an_out_of_range_item_refuses_the_whole_bulk_request_before_anything_happens(
    fuzz_db: dict[str, str],
) -> None:
    engine = APP.state.services.engine
    big = 2**31 if engine.dialect.name == "postgresql" else 2**63
    with TestClient(APP, raise_server_exceptions=False) as client:
        response = client.post(
            "/api/cases/bulk-events",
            headers=fuzz_db,
            json={
                "event": "withdraw",
                "cases": [{"id": 1, "version": 1}, {"id": big, "version": 1}],
            },
        )
        case = client.get("/api/cases/1", headers=fuzz_db).json()
    assert response.status_code == 422, response.text
    assert response.json()["details"][0]["field"] == "cases.1.id"
    assert case["state"] == "survey"  # validated at the door: no item was fired


NUL_INPUTS = [
    ("GET", "/api/units/%00", None),
    ("GET", "/api/units?parent=%00", None),
    ("PATCH", "/api/units/%00", {"name": "改名"}),
    ("GET", "/api/users/%00", None),
    ("GET", "/api/cases?q=%00", None),
    ("GET", "/api/cases?unit=%00", None),
    ("GET", "/api/dashboard?campaign=1&unit=%00", None),
    ("GET", "/api/campaigns/1/statistics?unit=%00", None),
    (
        "POST",
        "/api/users",
        {
            "username": "new.user",
            "password": "long-enough-1",
            "display_name": "x",
            "unit": "\x00",
            "roles": ["clerk"],
        },
    ),
    ("POST", "/api/units", {"code": "WH-X", "name": "\x00", "level": "grassroots", "parent": "WH"}),
    (
        "POST",
        "/api/cases",
        {"campaign": 1, "unit": "\x00", "worker": "{worker}", "student": "{student}"},
    ),
    ("POST", "/api/campaigns/1/reports", {"unit": "\x00", "kind": "statistics"}),
]


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("method", "url", "body"), NUL_INPUTS, ids=[f"{m} {u}" for m, u, _b in NUL_INPUTS]
)
def test_a_nul_character_is_refused_not_a_500_on_postgresql(
    fuzz_pg: dict[str, str], method: str, url: str, body: Any
) -> None:
    with TestClient(APP, raise_server_exceptions=False) as client:
        response = client.request(method, url, json=fill(body, 0), headers=fuzz_pg)
    assert response.status_code in {404, 422}, response.text


@pytest.mark.postgres
def test_signing_in_with_a_nul_in_the_username_is_refused_at_the_door_on_postgresql(
    fuzz_pg: dict[str, str],
) -> None:
    with TestClient(APP, raise_server_exceptions=False) as client:
        response = client.post("/api/auth/token", data={"username": "a\x00b", "password": "x"})
    assert response.status_code == 422, response.text
    assert response.json()["details"][0]["code"] == "nul_character"
