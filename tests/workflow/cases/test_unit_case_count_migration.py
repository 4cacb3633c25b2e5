"""Migration 0030 (both databases): the case counters become one row per (campaign, unit) with a
column per state — the table is the model, every count of the old rows arrives in its column,
the migration refuses a count it has no column for rather than drop it, and the downgrade
gives the old rows back."""

from __future__ import annotations

import datetime as dt

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text

from jinqiu.workflow.cases.counters import STATES, stored
from jinqiu.workflow.clock import ManualClock
from jinqiu.workflow.db import transaction
from jinqiu.workflow.metadata import metadata
from jinqiu.workflow.migrate import alembic_config, upgrade
from tests.factories import weihai
from tests.workflow.employment.test_migration import names_in

BEFORE = str(ScriptDirectory.from_config(alembic_config()).get_revision("0030").down_revision)

# (unit, state, n) as migration 0029's schema held them: a city, its district, a grassroots union.
OLD_ROWS = [
    ("WH", "survey", 3),
    ("WH", "approval", 2),
    ("WH", "withdrawn", 1),
    ("WH-HC", "survey", 3),
    ("WH-HC", "approval", 2),
    ("WH-HC-001", "survey", 3),
    ("WH-HC-001", "closed", 0),  # a state its cases have all left: no count to carry
]


def test_the_migrated_table_is_the_model(db: Engine) -> None:
    with db.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diffs = compare_metadata(context, metadata)
    assert [
        d for d in diffs if names_in(d) & {"unit_case_count", "case_count", "reminder_count"}
    ] == []


def test_the_table_has_a_column_for_every_state_of_the_machine(db: Engine) -> None:
    with db.connect() as conn:
        row = conn.execute(text("SELECT * FROM unit_case_count")).keys()
    assert list(row) == ["campaign_id", "unit_code", *STATES, "parent_code"]  # 0031 added it


def _campaign_with_old_counters(engine: Engine, rows: list[tuple[str, str, int]]) -> int:
    """A campaign row and `rows` in migration 0029's case_count."""
    upgrade(engine, BEFORE)
    # The campaign and its units as the service loads them (migration 0030 changes neither).
    _tree, campaign = weihai(engine, ManualClock(dt.datetime(2024, 7, 1, 9)))
    with transaction(engine) as conn:
        conn.execute(
            text(
                "INSERT INTO case_count (campaign_id, unit_code, state, n) VALUES (:c, :u, :s, :n)"
            ),
            [{"c": campaign, "u": u, "s": s, "n": n} for u, s, n in rows],
        )
    return campaign


def test_every_count_arrives_in_its_unit_s_row_and_the_downgrade_gives_it_back(
    fresh: Engine,
) -> None:
    campaign = _campaign_with_old_counters(fresh, OLD_ROWS)
    upgrade(fresh)
    expected = {
        "WH": {"survey": 3, "approval": 2, "withdrawn": 1},
        "WH-HC": {"survey": 3, "approval": 2},
        "WH-HC-001": {"survey": 3},
    }
    with fresh.connect() as conn:
        assert stored(conn, campaign) == expected
        assert conn.execute(text("SELECT COUNT(*) FROM unit_case_count")).scalar_one() == 3
        # and migration 0031 named each row's parent, from the units
        parents = conn.execute(text("SELECT unit_code, parent_code FROM unit_case_count")).all()
    assert dict(parents) == {"WH": None, "WH-HC": "WH", "WH-HC-001": "WH-HC"}

    cfg = alembic_config(fresh)
    with transaction(fresh) as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, BEFORE)
    with fresh.connect() as conn:
        back = conn.execute(
            text("SELECT unit_code, state, n FROM case_count ORDER BY unit_code, state")
        ).all()
    assert [tuple(r) for r in back] == sorted(
        (u, s, n) for u, states in expected.items() for s, n in states.items()
    )


def test_a_count_of_a_state_without_a_column_stops_the_migration(fresh: Engine) -> None:
    _campaign_with_old_counters(fresh, [("WH", "survey", 2), ("WH", "abandoned", 1)])
    with pytest.raises(RuntimeError, match="abandoned"):
        upgrade(fresh)
    with fresh.connect() as conn:  # nothing half done: the old table and its rows are there
        assert conn.execute(text("SELECT SUM(n) FROM case_count")).scalar_one() == 3


def test_migration_0031_names_each_reminder_count_s_parent_too(fresh: Engine) -> None:
    upgrade(fresh, "0030")
    _tree, campaign = weihai(fresh, ManualClock(dt.datetime(2024, 7, 1, 9)))
    with transaction(fresh) as conn:
        conn.execute(
            text("INSERT INTO reminder_count (campaign_id, unit_code, n) VALUES (:c, :u, :n)"),
            [
                {"c": campaign, "u": u, "n": n}
                for u, n in (("WH", 3), ("WH-HC", 2), ("WH-HC-001", 2))
            ],
        )
    upgrade(fresh)
    with fresh.connect() as conn:
        parents = conn.execute(text("SELECT unit_code, parent_code FROM reminder_count")).all()
    assert dict(parents) == {"WH": None, "WH-HC": "WH", "WH-HC-001": "WH-HC"}
