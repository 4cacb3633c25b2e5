"""SQLite serves each of the dashboard's reads of the counters, the reminder counts and the units
through an index: the cost of a dashboard grows with the children shown, never with the
campaign's rows. (`campaign_id = ? AND (parent_code = ? OR unit_code = ?)` was a scan of the
campaign's counter rows on SQLite — 15 ms a dashboard at 100,000 units — where PostgreSQL ORs
two index scans: the two are separate selects now.)"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine
from sqlalchemy.dialects import sqlite

from jinqiu.workflow.dashboard.service import _COUNTERS, _SENT, _UNITS

READS = {
    "counters": (_COUNTERS, {"campaign_id": 1, "code": "WH"}),
    "reminders": (_SENT, {"campaign_id": 1, "code": "WH"}),
    "children": (_UNITS, {"unit_id": 1}),
}


def plan(engine: Engine, statement: Any, params: dict[str, Any]) -> list[str]:
    compiled = statement.compile(dialect=sqlite.dialect())
    values = compiled.construct_params(params)
    positional = [values[name] for name in compiled.positiontup]
    with engine.connect() as conn:
        rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + compiled.string, tuple(positional))
        return [str(row[-1]) for row in rows]


def test_every_read_of_the_dashboard_searches_an_index_by_more_than_the_campaign(
    sqlite_engine: Engine,
) -> None:
    for name, (statement, params) in READS.items():
        steps = plan(sqlite_engine, statement, params)
        reads = [s for s in steps if s.startswith(("SEARCH", "SCAN"))]
        assert reads, (name, steps)
        for step in reads:
            assert step.startswith("SEARCH"), (name, steps)  # no scan of a table
            # the OR of parent and unit was searched by the campaign alone: all its rows
            assert not step.endswith("(campaign_id=?)"), (name, steps)
