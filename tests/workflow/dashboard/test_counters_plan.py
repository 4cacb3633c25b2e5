"""PostgreSQL reads the children's counters of a dashboard by key, one unit at a time, even on
the generic plan a prepared statement soon runs on.

A prepared statement is planned without its values after a few runs. For a join of a unit's
children to their counters (one row per unit in unit_case_count) the generic plan of a
province-sized campaign was a hash join over all 100,000 counter rows — 25 ms, where probing the
~500 children's rows by key takes 1.5 ms (`bench dashboard`, docs/PERFORMANCE.md). The counters
are read in a LATERAL subquery with a LIMIT, which PostgreSQL does not pull up into a join: its
generic plan is a loop over the units that probes the counters once per unit. So the statement
may be prepared (no planning on each call), and is."""

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
from jinqiu.workflow.dashboard.service import _UNITS, DashboardQuery, dashboard
from jinqiu.workflow.db import reading
from tests.factories import actor_of, new_case, weihai

pytestmark = pytest.mark.postgres

# More than psycopg's prepare_threshold (5): a statement run this often on one connection is
# prepared.
READS = 8
PREPARED = "SELECT name, statement FROM pg_prepared_statements"


def nodes_above(
    plan: dict[str, Any], relation: str, path: tuple[str, ...] = ()
) -> list[tuple[str, ...]]:
    """The node types above each scan of `relation`, outermost first."""
    here = (*path, plan["Node Type"])
    found = [path] if plan.get("Relation Name") == relation else []
    for child in plan.get("Plans", []):
        found += nodes_above(child, relation, here)
    return found


def test_the_children_s_counters_are_probed_per_unit_on_the_generic_plan(
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
        unit_id = conn.exec_driver_sql("SELECT id FROM unit WHERE code = 'WH'").scalar_one()
        (name, text), *others = [(n, s) for n, s in prepared if "FROM unit_case_count" in s]
        assert not others, prepared
        # The values of the prepared statement's $n, matched to the names SQLAlchemy gave them.
        compiled = _UNITS["postgresql"].compile(dialect=postgresql.dialect())
        values = compiled.construct_params({"campaign_id": campaign, "unit_id": unit_id})
        names = re.findall(r"%\((\w+)\)s", compiled.string)
        numbers = [int(n) for n in re.findall(r"\$(\d+)", text)]
        assert len(names) == len(numbers), (compiled.string, text)
        by_number = dict(zip(numbers, names, strict=True))
        arguments = ", ".join(repr(values[by_number[n]]) for n in sorted(by_number))
        conn.exec_driver_sql("SET plan_cache_mode = force_generic_plan")
        (plan,) = conn.exec_driver_sql(f"EXPLAIN (FORMAT JSON) EXECUTE {name}({arguments})").one()
        conn.exec_driver_sql("RESET plan_cache_mode")

    tree = (json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"]
    scans = nodes_above(tree, "unit_case_count")
    assert scans, tree
    for above in scans:  # run once per unit of the loop, by the unit's key
        assert above[-1] == "Limit" and "Nested Loop" in above, above
        assert not any("Hash" in node for node in above), above
    # and every read answered what the cases say
    for board in boards:
        assert {u["code"]: u["states"] for u in board["units"] if u["states"]} == {
            code: states for code, states in counted.items() if code.count("-") == 1
        }
        assert {s: n for s, n in board["states"].items() if n} == counted["WH"]
