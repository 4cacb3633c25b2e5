"""PostgreSQL reads the dashboard's counters of a unit's children as one range of the index by
parent, on the generic plan a prepared statement soon runs on.

A prepared statement is planned without its values after a few runs. Reading the children's
counters through a join to the children, that plan was a hash join over the campaign's 100,000
counter rows (25 ms); probing each child's key (~500 in a district) was half of PostgreSQL's time
for the dashboard (`bench dashboard`, docs/PERFORMANCE.md). Each counter row names its unit's
parent (migration 0031), so the children's rows are one range of `ix_unit_case_count_parent`
and the unit's own is one probe of the key, whatever the values.

The test tables are small, so scans are turned off for the EXPLAIN: the index is still chosen
only if it answers the statement's condition — without it the plan is the scan, whatever it
costs."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.dialects import postgresql

from jinqiu.workflow.cases.counters import recount
from jinqiu.workflow.clock import ManualClock
from jinqiu.workflow.dashboard.service import _COUNTERS, DashboardQuery, dashboard
from jinqiu.workflow.db import reading
from tests.factories import actor_of, new_case, weihai

pytestmark = pytest.mark.postgres

# More than psycopg's prepare_threshold (5): a statement run this often on one connection is
# prepared.
READS = 8
PREPARED = "SELECT name, statement FROM pg_prepared_statements"


def nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    """Every node of the plan."""
    return [plan, *(node for child in plan.get("Plans", []) for node in nodes(child))]


def test_the_children_s_counters_are_one_range_of_the_parent_index_on_the_generic_plan(
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
        prepared = conn.exec_driver_sql(PREPARED).all()
        counted = recount(conn, campaign)
        (name, text), *others = [(n, s) for n, s in prepared if "FROM unit_case_count" in s]
        assert not others, prepared
        # The values of the prepared statement's $n, matched to the names SQLAlchemy gave them.
        compiled = _COUNTERS.compile(dialect=postgresql.dialect())
        values = compiled.construct_params({"campaign_id": campaign, "code": "WH"})
        names = re.findall(r"%\((\w+)\)s", compiled.string)
        numbers = [int(n) for n in re.findall(r"\$(\d+)", text)]
        assert len(names) == len(numbers), (compiled.string, text)
        by_number = dict(zip(numbers, names, strict=True))
        arguments = ", ".join(repr(values[by_number[n]]) for n in sorted(by_number))
        conn.exec_driver_sql("SET plan_cache_mode = force_generic_plan")
        conn.exec_driver_sql("SET enable_seqscan = off")
        (plan,) = conn.exec_driver_sql(f"EXPLAIN (FORMAT JSON) EXECUTE {name}({arguments})").one()
        conn.exec_driver_sql("RESET ALL")

    tree = (json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"]
    every = nodes(tree)
    assert not [n for n in every if n["Node Type"] == "Seq Scan"], tree
    indexes = {n.get("Index Name") for n in every if "Index Scan" in n["Node Type"]}
    assert "ix_unit_case_count_parent" in indexes, tree
    # and every read answered what the cases say
    for board in boards:
        assert {u["code"]: u["states"] for u in board["units"] if u["states"]} == {
            code: states for code, states in counted.items() if code.count("-") == 1
        }
        assert {s: n for s, n in board["states"].items() if n} == counted["WH"]
