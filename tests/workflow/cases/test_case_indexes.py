"""The case table's indexes (migration 0032): the migrated table is the model, and a lookup by
the state alone is still served by an index (`ix_case_state_publicity_end` leads with the state)
now that the index on the state alone is gone — every state change wrote both."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, select
from sqlalchemy.dialects import sqlite

from jinqiu.states import CaseState
from jinqiu.workflow.cases.models import Case
from jinqiu.workflow.metadata import metadata
from tests.workflow.employment.test_migration import names_in

case_t = Case.__table__  # type: ignore[attr-defined]


def test_the_migrated_case_table_is_the_model(db: Engine) -> None:
    with db.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diffs = compare_metadata(context, metadata)
    assert [d for d in diffs if names_in(d) & {"aid_case"}] == []
    indexed = [ix["column_names"] for ix in inspect(db).get_indexes("aid_case")]
    assert ["state"] not in indexed


def test_a_lookup_by_state_alone_searches_an_index(sqlite_engine: Engine) -> None:
    query = select(case_t.c.id).where(case_t.c.state == CaseState.PUBLICITY.value)
    compiled = query.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True})
    with sqlite_engine.connect() as conn:
        steps = [str(r[-1]) for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}")]
    assert any("ix_case_state_publicity_end" in s and s.startswith("SEARCH") for s in steps), steps
