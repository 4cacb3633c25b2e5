"""follow-up visits, the campaign's follow-up rule, renewals and the archive exit

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-01 17:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
import sqlmodel.sql.sqltypes
from alembic import op

from jinqiu.storage.sqltypes import JSONType, UTCDateTime

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _text(length: int) -> sqlmodel.sql.sqltypes.AutoString:
    return sqlmodel.sql.sqltypes.AutoString(length=length)


def upgrade() -> None:
    op.create_table(
        "follow_up_visit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("visited_on", sa.Date(), nullable=False),
        sa.Column("kind", _text(10), nullable=False),
        sa.Column("visitor", _text(50), nullable=False),
        sa.Column("situation", _text(20), nullable=False),
        sa.Column("notes", _text(2000), nullable=False),
        sa.Column("recorded_by", _text(64), nullable=False),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["aid_case.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("follow_up_visit", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_follow_up_visit_case_id"), ["case_id"], unique=False)
    with op.batch_alter_table("campaign", schema=None) as batch_op:
        batch_op.add_column(sa.Column("follow_up", JSONType(), nullable=True))
    with op.batch_alter_table("worker", schema=None) as batch_op:
        batch_op.add_column(sa.Column("archive_exited_on", sa.Date(), nullable=True))
    with op.batch_alter_table("aid_case", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("follow_up_visits", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("renewal_of", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_aid_case_renewal_of"), ["renewal_of"], unique=False)
        batch_op.create_index(
            "ix_case_renewals",
            ["campaign_id", "unit_id"],
            unique=False,
            sqlite_where=sa.text("renewal_of IS NOT NULL"),
            postgresql_where=sa.text("renewal_of IS NOT NULL"),
        )


def downgrade() -> None:
    with op.batch_alter_table("aid_case", schema=None) as batch_op:
        batch_op.drop_index("ix_case_renewals")
        batch_op.drop_index(batch_op.f("ix_aid_case_renewal_of"))
        batch_op.drop_column("renewal_of")
        batch_op.drop_column("follow_up_visits")
    with op.batch_alter_table("worker", schema=None) as batch_op:
        batch_op.drop_column("archive_exited_on")
    with op.batch_alter_table("campaign", schema=None) as batch_op:
        batch_op.drop_column("follow_up")
    with op.batch_alter_table("follow_up_visit", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_follow_up_visit_case_id"))
    op.drop_table("follow_up_visit")
