"""The real thing: `jinqiu serve --workers 2` on PostgreSQL, seeded with the `jinqiu` CLI (in this
process, tests/command.py), and 50 HTTP clients firing the same event at the same case version
at once. Exactly one wins (200); every other one gets 409 — `version_conflict`, or
`event_not_allowed` for a request that already reads the new state — and the audit trail holds
exactly one entry for the event.

The schema is this test's own (created here, dropped in a `finally`); the CLI and the server
find it through JINQIU_DATABASE_URL `...?options=-csearch_path%3D<schema>`. The server is
stopped in a `finally` too.
"""

from __future__ import annotations

import os
import re
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from jinqiu.demo.server import start_server
from jinqiu.workflow.audit.models import AuditEntry
from jinqiu.workflow.config import normalise_url
from jinqiu.workflow.db import make_engine
from tests.command import run_jinqiu
from tests.factories import ROOT, WEIHAI, student, worker

pytestmark = pytest.mark.postgres

CLIENTS = 50
PASSWORD = "correct-horse-42"
CLERK = "clerk.wh-hc-001"
SECRET = "serve-test-secret-0123456789abcdef"
audit_t = AuditEntry.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Database:
    url: str  # the server's URL, without a search_path
    schema: str

    @property
    def url_with_options(self) -> str:
        """The schema in the URL itself: `?options=-csearch_path%3D<schema>`."""
        return (
            make_url(self.url)
            .update_query_dict({"options": f"-csearch_path={self.schema}"})
            .render_as_string(hide_password=False)
        )

    def env(self) -> dict[str, str]:
        env = {**os.environ, "JINQIU_SECRET_KEY": SECRET, "PYTHONUTF8": "1"}
        env.pop("PGOPTIONS", None)
        env["JINQIU_DATABASE_URL"] = self.url_with_options
        return env


@pytest.fixture
def database(postgres_schema_url: tuple[str, str]) -> Iterator[Database]:
    base, _session_schema = postgres_schema_url
    url = normalise_url(base)
    schema = f"jq_serve_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield Database(url=url, schema=schema)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def jinqiu(env: dict[str, str], *args: str) -> str:
    """The CLI in this process (tests/command.py): seeding; the server is the real one."""
    done = run_jinqiu(env, args, cwd=ROOT)
    assert done.code == 0, f"jinqiu {' '.join(args)}: {done.code}\n{done.out}\n{done.err}"
    return done.out


def seed(env: dict[str, str]) -> int:
    jinqiu(env, "db", "upgrade")
    jinqiu(env, "unit", "create", "--code", "WH", "--name", "威海市总工会", "--level", "city")
    jinqiu(
        env,
        "unit",
        "create",
        "--code",
        "WH-HC",
        "--name",
        "环翠区总工会",
        "--level",
        "district",
        "--parent",
        "WH",
    )
    jinqiu(
        env,
        "unit",
        "create",
        "--code",
        "WH-HC-001",
        "--name",
        "环翠区纺织公司工会",
        "--level",
        "grassroots",
        "--parent",
        "WH-HC",
    )
    jinqiu(
        env,
        "user",
        "create",
        "--username",
        CLERK,
        "--password",
        PASSWORD,
        "--unit",
        "WH-HC-001",
        "--role",
        "clerk",
    )
    return int(jinqiu(env, "campaign", "load", str(WEIHAI)).strip())


def fire_together(base_url: str, token: str, case_id: int) -> list[tuple[int, str | None]]:
    """50 clients, each with its own connection, released by one barrier."""
    barrier = threading.Barrier(CLIENTS)
    results: list[tuple[int, str | None]] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def one() -> None:
        try:
            with httpx.Client(
                base_url=base_url, timeout=60, headers={"Authorization": f"Bearer {token}"}
            ) as client:
                client.get("/api/health")  # connect first: the barrier releases the requests
                barrier.wait(timeout=60)
                response = client.post(
                    f"/api/cases/{case_id}/events", json={"event": "withdraw", "version": 1}
                )
            code = None if response.status_code == 200 else response.json().get("code")
            with lock:
                results.append((response.status_code, code))
        except BaseException as exc:
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    return results


def test_fifty_clients_fire_the_same_event_at_two_workers_and_exactly_one_wins(
    database: Database, tmp_path: Path
) -> None:
    env = database.env()
    assert f"?options=-csearch_path%3D{database.schema}" in env["JINQIU_DATABASE_URL"]
    campaign = seed(env)
    server = start_server(env, tmp_path / "serve.log", workers=2, cwd=ROOT)
    try:
        server.wait_healthy()
        with httpx.Client(base_url=server.base_url, timeout=60) as client:
            login = client.post("/api/auth/token", data={"username": CLERK, "password": PASSWORD})
            assert login.status_code == 200, login.text
            token = login.json()["access_token"]
            auth = {"Authorization": f"Bearer {token}"}
            created = client.post(
                "/api/cases",
                headers=auth,
                json={
                    "campaign": campaign,
                    "unit": "WH-HC-001",
                    "worker": worker(),
                    "student": student(),
                },
            )
            assert created.status_code == 201, created.text
            case = created.json()
            assert (case["state"], case["version"]) == ("survey", 1)
            assert "withdraw" in case["allowed_events"]

            results = fire_together(server.base_url, token, case["id"])

            after = client.get(f"/api/cases/{case['id']}", headers=auth).json()
            history = client.get(f"/api/cases/{case['id']}/history", headers=auth).json()
        assert server.running(), server.tail()
    finally:
        server.stop()

    workers = set(re.findall(r"Started server process \[(\d+)\]", server.log.read_text("utf-8")))
    assert len(workers) == 2, server.tail()  # uvicorn's two worker processes
    assert len(results) == CLIENTS
    statuses = sorted(status for status, _ in results)
    assert statuses.count(200) == 1, results
    assert statuses.count(409) == CLIENTS - 1, results
    losers = {code for status, code in results if status == 409}
    assert losers <= {"version_conflict", "event_not_allowed"}, losers
    assert (after["state"], after["version"]) == ("withdrawn", 2)
    assert [(h["event"], h["to"]) for h in history] == [
        ("create", "survey"),
        ("withdraw", "withdrawn"),
    ]

    engine = make_engine(database.url_with_options)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT current_schema()")).scalar_one() == database.schema
            assert conn.execute(text("SELECT count(*) FROM unit")).scalar_one() == 3  # seeded here
            withdrawals = conn.execute(
                select(func.count())
                .select_from(audit_t)
                .where(audit_t.c.case_id == case["id"], audit_t.c.event == "withdraw")
            ).scalar_one()
    finally:
        engine.dispose()
    assert withdrawals == 1
    assert jinqiu(env, "audit", "verify").strip() == "audit chains intact"
