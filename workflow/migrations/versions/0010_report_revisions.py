"""report revisions: a resubmitted report is its next revision, none overwritten

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Existing reports become revision 1 of themselves.
    with op.batch_alter_table("report_submission", schema=None) as batch_op:
        batch_op.add_column(sa.Column("revision", sa.Integer(), nullable=False, server_default="1"))
        batch_op.drop_constraint("uq_report_once", type_="unique")
        batch_op.create_unique_constraint(
            "uq_report_revision", ["campaign_id", "unit_id", "kind", "revision"]
        )


def downgrade() -> None:
    # Only the latest revision of each report survives a downgrade (the old key allowed one).
    op.execute(
        "DELETE FROM report_submission WHERE revision < ("
        "SELECT MAX(r.revision) FROM report_submission r"
        " WHERE r.campaign_id = report_submission.campaign_id"
        " AND r.unit_id = report_submission.unit_id AND r.kind = report_submission.kind)"
    )
    with op.batch_alter_table("report_submission", schema=None) as batch_op:
        batch_op.drop_constraint("uq_report_revision", type_="unique")
        batch_op.create_unique_constraint("uq_report_once", ["campaign_id", "unit_id", "kind"])
        batch_op.drop_column("revision")
