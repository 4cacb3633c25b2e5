"""categories and application types per campaign, a case's application type and form, a
deadline's responsibility as a set of units

Revision ID: 0019
Revises: 0017
Create Date: 2026-12-01 17:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0019"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("campaign", schema=None) as batch_op:
        batch_op.add_column(sa.Column("categories", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("application_types", sa.JSON(), nullable=True))
    with op.batch_alter_table("aid_case", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "application_type", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True
            )
        )
        batch_op.add_column(sa.Column("form", sa.JSON(), nullable=True))
    with op.batch_alter_table("campaign_deadline", schema=None) as batch_op:
        batch_op.add_column(sa.Column("responsible", sa.JSON(), nullable=True))
        batch_op.alter_column(
            "responsible_level",
            existing_type=sqlmodel.sql.sqltypes.AutoString(length=20),
            nullable=True,
        )


def downgrade() -> None:
    with op.batch_alter_table("campaign_deadline", schema=None) as batch_op:
        batch_op.alter_column(
            "responsible_level",
            existing_type=sqlmodel.sql.sqltypes.AutoString(length=20),
            nullable=False,
        )
        batch_op.drop_column("responsible")
    with op.batch_alter_table("aid_case", schema=None) as batch_op:
        batch_op.drop_column("form")
        batch_op.drop_column("application_type")
    with op.batch_alter_table("campaign", schema=None) as batch_op:
        batch_op.drop_column("application_types")
        batch_op.drop_column("categories")
