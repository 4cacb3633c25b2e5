"""each case counter row and each reminder count row names its unit's parent, so a dashboard
reads its children's rows by one index range

A unit's children's counters and reminders were found by one probe of each table's key per
child (a district's ~500: ~3,000 index and heap pages a dashboard, most of its PostgreSQL time);
with the parent's code on each row they are one range of `ix_unit_case_count_parent` and of
`ix_reminder_count_parent`. Units never change parent (a unit's path is fixed when it is
created), so the column is written when the row is made and never updated: counter updates
stay HOT (no indexed column changes).

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-03 00:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0031"
down_revision: str | None = "0030"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, its index by parent); both tables name their unit in `unit_code`.
TABLES = (
    ("unit_case_count", "ix_unit_case_count_parent"),
    ("reminder_count", "ix_reminder_count_parent"),
)


def upgrade() -> None:
    for table, index in TABLES:
        op.add_column(
            table,
            sa.Column("parent_code", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        )
        # Every existing row's parent from the units (a root's and an unknown unit's: NULL).
        op.get_bind().execute(
            sa.text(
                f"UPDATE {table} SET parent_code = ("
                "SELECT parent.code FROM unit JOIN unit AS parent ON parent.id = unit.parent_id "
                f"WHERE unit.code = {table}.unit_code)"
            )
        )
        op.create_index(index, table, ["campaign_id", "parent_code"])


def downgrade() -> None:
    for table, index in reversed(TABLES):
        op.drop_index(index, table_name=table)
        with op.batch_alter_table(table) as batch_op:
            batch_op.drop_column("parent_code")
