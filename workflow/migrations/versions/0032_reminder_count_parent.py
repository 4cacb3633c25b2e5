"""each reminder count row names its unit's parent, so a dashboard reads the reminders sent to
its children by one index range

As migration 0031 did for the case counters: the dashboard probed reminder_count's key once per
child unit (a district: ~500 probes, then most of PostgreSQL's time for the dashboard). Units
never change parent, so the column is written when the row is made and never updated.

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-03 01:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0032"
down_revision: str | None = "0031"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "reminder_count",
        sa.Column("parent_code", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    )
    # Every existing row's parent from the units (a root's and an unknown unit's stay NULL).
    op.get_bind().execute(
        sa.text(
            "UPDATE reminder_count SET parent_code = ("
            "SELECT parent.code FROM unit JOIN unit AS parent ON parent.id = unit.parent_id "
            "WHERE unit.code = reminder_count.unit_code)"
        )
    )
    op.create_index("ix_reminder_count_parent", "reminder_count", ["campaign_id", "parent_code"])


def downgrade() -> None:
    op.drop_index("ix_reminder_count_parent", table_name="reminder_count")
    with op.batch_alter_table("reminder_count") as batch_op:
        batch_op.drop_column("parent_code")
