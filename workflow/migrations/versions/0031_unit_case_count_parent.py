"""each case counter row names its unit's parent, so a dashboard reads its children's counters
by one index range

A unit's children's counters were found by one probe of the key per child (a district's ~500:
~2,000 index and heap pages a dashboard, about half of its PostgreSQL time); with the parent's
code on each row they are one range of `ix_unit_case_count_parent`. Units never change parent
(a unit's path is fixed when it is created), so the column is written when the row is made and
never updated: counter updates stay HOT (no indexed column changes).

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


def upgrade() -> None:
    op.add_column(
        "unit_case_count",
        sa.Column("parent_code", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    )
    # Every existing row's parent from the units (a root's and an unknown unit's stay NULL).
    op.get_bind().execute(
        sa.text(
            "UPDATE unit_case_count SET parent_code = ("
            "SELECT parent.code FROM unit JOIN unit AS parent ON parent.id = unit.parent_id "
            "WHERE unit.code = unit_case_count.unit_code)"
        )
    )
    op.create_index("ix_unit_case_count_parent", "unit_case_count", ["campaign_id", "parent_code"])


def downgrade() -> None:
    op.drop_index("ix_unit_case_count_parent", table_name="unit_case_count")
    with op.batch_alter_table("unit_case_count") as batch_op:
        batch_op.drop_column("parent_code")
