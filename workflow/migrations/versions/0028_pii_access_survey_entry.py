"""pii_access: a full read of a survey register row without a case (survey_entry_id)

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-01 22:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0028"
down_revision: str | None = "0027"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Batch mode: SQLite rebuilds the table to change a column and add constraints.
    with op.batch_alter_table("pii_access", schema=None) as batch_op:
        batch_op.alter_column("case_id", existing_type=sa.Integer(), nullable=True)
        batch_op.add_column(sa.Column("survey_entry_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            "fk_pii_access_survey_entry_id", "survey_entry", ["survey_entry_id"], ["id"]
        )
        batch_op.create_index("ix_pii_access_survey_entry_id", ["survey_entry_id"])
        batch_op.create_check_constraint(
            "ck_pii_access_one_subject", "(case_id IS NULL) <> (survey_entry_id IS NULL)"
        )


def downgrade() -> None:
    op.execute("DELETE FROM pii_access WHERE case_id IS NULL")
    with op.batch_alter_table("pii_access", schema=None) as batch_op:
        batch_op.drop_constraint("ck_pii_access_one_subject", type_="check")
        batch_op.drop_index("ix_pii_access_survey_entry_id")
        batch_op.drop_constraint("fk_pii_access_survey_entry_id", type_="foreignkey")
        batch_op.drop_column("survey_entry_id")
        batch_op.alter_column("case_id", existing_type=sa.Integer(), nullable=False)
