"""The import's checks against the database (`driver.probed_by_key`): the register's and the open
cases' rows for a chunk of student numbers, and on PostgreSQL a plan that probes the unique
indexes even inside the transaction that has just written the rows (no statistics for them)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Connection, Engine, Select

from jinqiu.workflow.cases.models import Case, still_open
from jinqiu.workflow.clock import ManualClock
from jinqiu.workflow.db import transaction
from jinqiu.workflow.driver import probed_by_key
from jinqiu.workflow.survey.models import SurveyEntry
from jinqiu.workflow.survey.service import import_survey
from tests.factories import actor, weihai
from tests.workflow.survey.files import csv_bytes, survey_row

UNIT = "WH-HC-001"
case_t = Case.__table__  # type: ignore[attr-defined]
entry_t = SurveyEntry.__table__  # type: ignore[attr-defined]


def imported(conn: Connection, clock: ManualClock, campaign: int, rows: int) -> list[str]:
    """`rows` families imported in `conn`'s transaction; their students' numbers."""
    sheet = [survey_row() for _ in range(rows)]
    report = import_survey(
        conn,
        campaign_id=campaign,
        unit_code=UNIT,
        content=csv_bytes(sheet, "utf-8"),
        filename="摸底表.csv",
        dry_run=False,
        skip_invalid=False,
        actor=actor(conn, UNIT, "clerk"),
        clock=clock,
    )
    assert report.created == rows, report.errors[:3]
    return [str(row["身份证号码"]) for row in sheet]


def register_lookup(conn: Connection, campaign: int, keys: list[str]) -> Select[Any]:
    return probed_by_key(
        conn,
        [entry_t.c.student_id_number, entry_t.c.row_hash],
        entry_t.c.student_id_number,
        keys,
        entry_t.c.campaign_id == campaign,
    )


def open_case_lookup(conn: Connection, campaign: int, keys: list[str]) -> Select[Any]:
    return probed_by_key(
        conn,
        [case_t.c.student_id_number],
        case_t.c.student_id_number,
        keys,
        case_t.c.campaign_id == campaign,
        still_open(case_t.c.state),
    )


def test_rows_for_the_keys_of_the_campaign_only(db: Engine, clock: ManualClock) -> None:
    campaign = weihai(db, clock)[1]
    with transaction(db) as conn:
        numbers = imported(conn, clock, campaign, 3)
        unknown = str(survey_row()["身份证号码"])
        keys = [numbers[0], numbers[2], numbers[0], unknown]  # a repeated key, one not there
        found = conn.execute(register_lookup(conn, campaign, keys)).all()
        assert sorted(number for number, _ in found) == sorted({numbers[0], numbers[2]})
        assert all(len(digest) == 64 for _, digest in found)
        assert set(conn.execute(open_case_lookup(conn, campaign, keys)).scalars()) == {
            numbers[0],
            numbers[2],
        }
        assert conn.execute(register_lookup(conn, campaign + 1, keys)).all() == []
        assert conn.execute(open_case_lookup(conn, campaign, [unknown])).all() == []


@pytest.mark.parametrize("db", ["postgresql"], indirect=True)
def test_postgresql_probes_the_unique_indexes_inside_the_import(
    db: Engine, clock: ManualClock
) -> None:
    campaign = weihai(db, clock)[1]
    with transaction(db) as conn:
        numbers = imported(conn, clock, campaign, 1500)
        for statement, index in (
            (register_lookup(conn, campaign, numbers[:1000]), "uq_survey_entry_student"),
            (open_case_lookup(conn, campaign, numbers[:1000]), "uq_active_case_per_student"),
        ):
            compiled = statement.compile(conn, compile_kwargs={"render_postcompile": True})
            plan = list(conn.exec_driver_sql(f"EXPLAIN {compiled}", compiled.params).scalars())
            scans = [line[:120] for line in plan if "Scan" in line or "Filter" in line]
            assert any(f"Scan using {index} on" in line for line in scans), scans
            assert not any("Filter" in line for line in scans), scans
