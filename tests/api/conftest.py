"""An app on the `db` fixture (SQLite, then PostgreSQL) with the Weihai tree, the 2024 campaign
and one user per role at the city, a district and two sibling grassroots unions."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from jinqiu.workflow.clock import ManualClock
from jinqiu.workflow.config import Settings
from jinqiu.workflow.db import transaction
from jinqiu.workflow.users.models import Role, User
from tests.factories import password_hash, weihai_by_level
from tests.shared_app import app_on

PASSWORD = "correct-horse-42"
UNITS = ("WH", "WH-HC", "WH-HC-001", "WH-HC-002", "WH-WD", "WH-WD-001")
user_t = User.__table__  # type: ignore[attr-defined]


@dataclass
class World:
    client: TestClient
    engine: Engine
    clock: ManualClock
    campaign: int
    settings: Settings
    tokens: dict[str, str] = field(default_factory=dict)

    def token(self, username: str) -> str:
        """Signs in once per user and test."""
        if username in self.tokens:
            return self.tokens[username]
        response = self.client.post(
            "/api/auth/token", data={"username": username, "password": PASSWORD}
        )
        assert response.status_code == 200, response.text
        self.tokens[username] = str(response.json()["access_token"])
        return self.tokens[username]

    def as_(self, username: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(username)}"}


def username(role: str, unit: str) -> str:
    return f"{role}.{unit.lower()}"


@pytest.fixture
def world(db: Engine, clock: ManualClock, tmp_path: Path) -> Iterator[World]:
    with world_of(db, clock, tmp_path) as made:
        yield made


@contextmanager
def world_of(db: Engine, clock: ManualClock, tmp_path: Path, **campaign: Any) -> Iterator[World]:
    """The world of the fixture above, its campaign changed as `campaign` says."""
    _tree, campaign_id = weihai_by_level(db, clock, **campaign)
    with transaction(db) as conn:
        units = {r.code: r.id for r in conn.execute(text("SELECT id, code FROM unit"))}
        conn.execute(
            user_t.insert(),
            [
                {
                    "username": username(role.value, unit),
                    "password_hash": password_hash(PASSWORD),
                    "display_name": f"{role.value}@{unit}",
                    "unit_id": units[unit],
                    "roles": [role.value],
                    "is_active": True,
                    "created_at": clock.now(),
                }
                for unit in UNITS
                for role in Role
                if role is not Role.SCHEDULER
            ],
        )
    # Tokens outlive the campaign clock moving across a whole campaign in one test.
    settings = Settings(
        secret_key="test-secret-key-0123456789abcdef",
        token_minutes=60 * 24 * 120,
        attachments_dir=str(tmp_path / "attachments"),
    )
    app = app_on(db, clock, settings)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield World(client=client, engine=db, clock=clock, campaign=campaign_id, settings=settings)
