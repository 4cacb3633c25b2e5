"""Migration 0028 (both databases): pii_access is what the model declares — case_id nullable, a
survey_entry_id, and a CHECK that exactly one of them is set (SQLite: by rebuilding the table in
batch mode)."""

from __future__ import annotations

import datetime as dt

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from jinqiu.workflow.audit.models import PiiAccess
from jinqiu.workflow.db import transaction
from jinqiu.workflow.metadata import metadata
from jinqiu.workflow.migrate import alembic_config, upgrade
from tests.workflow.employment.test_migration import names_in

pii_t = PiiAccess.__table__  # type: ignore[attr-defined]
# The revision 0028 follows, read from the chain (merges re-chain it).
BEFORE = str(ScriptDirectory.from_config(alembic_config()).get_revision("0028").down_revision)
AT = dt.datetime(2024, 7, 22, 1, 30, tzinfo=dt.UTC)


def test_the_migrated_table_is_the_model(db: Engine) -> None:
    with db.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diffs = compare_metadata(context, metadata)
    assert [d for d in diffs if "pii_access" in names_in(d)] == []


@pytest.mark.parametrize("subject", [{}, {"case_id": 1, "survey_entry_id": 1}])
def test_the_check_refuses_none_or_both(fresh: Engine, subject: dict[str, int]) -> None:
    upgrade(fresh)
    row = {"actor": "x", "fields": [], "purpose": "test", "at": AT, **subject}
    with pytest.raises(IntegrityError, match=r"(?i)check"), transaction(fresh) as conn:
        conn.execute(pii_t.insert().values(**row))
