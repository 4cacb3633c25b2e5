"""Migration 0016 builds exactly the tables the models declare (columns, types, indexes,
constraints), on SQLite and PostgreSQL: Alembic's comparison of the migrated database with the
metadata finds nothing to change in them."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine

from jinqiu.workflow.metadata import metadata

TABLES = {
    "employment_record",
    "employment_help",
    "employment_record_audit",
    "work_study_post",
    "work_study_participant",
}


def names_in(diff: object) -> set[str]:
    """The table names an Alembic difference mentions (its nesting varies by kind)."""
    if isinstance(diff, (list, tuple)):
        return set().union(*(names_in(d) for d in diff)) if diff else set()
    name = getattr(diff, "name", None)
    table = getattr(diff, "table", None)
    found = {diff} if isinstance(diff, str) else set()
    if isinstance(name, str):
        found.add(name)
    if table is not None and isinstance(getattr(table, "name", None), str):
        found.add(table.name)
    return found


def test_the_migrated_tables_are_the_models(db: Engine) -> None:
    with db.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diffs = compare_metadata(context, metadata)
    ours = [d for d in diffs if names_in(d) & TABLES]
    assert ours == []
    assert set(metadata.tables) >= TABLES
