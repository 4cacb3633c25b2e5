"""PostgreSQL plans the dashboard's read of the children's counters for each call's values.

A prepared statement soon runs on a generic plan, made without the values. For the counters of
a unit's children (one row per child in unit_case_count) the generic plan of a province-sized
campaign was a hash join over all 100,000 counter rows — 25 ms, where probing the ~500
children's rows by key takes 1.5 ms (`bench dashboard`, docs/PERFORMANCE.md). So that one
statement is never prepared: it must not appear among the session's prepared statements, however
often the dashboard is read, while the dashboard's other statements are (their plans do not
depend on the values)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Engine

from jinqiu.workflow.cases.counters import recount
from jinqiu.workflow.clock import ManualClock
from jinqiu.workflow.dashboard.service import DashboardQuery, dashboard
from jinqiu.workflow.db import reading
from tests.factories import actor_of, new_case, weihai

pytestmark = pytest.mark.postgres

# More than psycopg's prepare_threshold (5): a statement run this often on one connection is
# prepared, unless it is asked not to be.
READS = 8
PREPARED = "SELECT statement FROM pg_prepared_statements"


def test_the_children_s_counters_are_planned_for_each_call(
    pg: Engine, one_connection: Engine, clock: ManualClock
) -> None:
    _tree, campaign = weihai(pg, clock)
    for unit in ("WH-HC-001", "WH-HC-002", "WH-WD-001"):
        new_case(pg, clock, campaign, unit)
    who = actor_of(pg, "WH", "manager")
    boards = []
    for _ in range(READS):
        with reading(one_connection) as conn:
            boards.append(
                dashboard(conn, DashboardQuery(campaign, "WH"), who, today=dt.date(2024, 7, 20))
            )
    with reading(one_connection) as conn:
        prepared = list(conn.exec_driver_sql(PREPARED).scalars())
        counted = recount(conn, campaign)

    assert not [s for s in prepared if "FROM unit_case_count" in s], prepared
    assert [s for s in prepared if "FROM reminder_count" in s], "the children's read is prepared"
    # and every read answered what the cases say
    for board in boards:
        assert {u["code"]: u["states"] for u in board["units"] if u["states"]} == {
            code: states for code, states in counted.items() if code.count("-") == 1
        }
