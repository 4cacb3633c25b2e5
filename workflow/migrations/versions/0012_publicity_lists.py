"""publicity lists: the list (a noun of the engine), its members, its audit chain, objections

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 15:00:00

Cases already in publicity with a period of their own (no list) keep it: the old per-case
ending (workflow/publicity_lists/sweep.py) still ends them; only cases verified from now on wait
for a list.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
import sqlmodel.sql.sqltypes
from alembic import op

from jinqiu.storage.sqltypes import JSONType, UTCDateTime

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

S = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    op.create_table(
        "publicity_list",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("state", S(length=20), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("audit_seq", sa.Integer(), nullable=False),
        sa.Column("audit_head", S(length=64), nullable=False),
        sa.Column("requested_starts_on", sa.Date(), nullable=True),
        sa.Column("working_days", sa.Integer(), nullable=False),
        sa.Column("starts_on", sa.Date(), nullable=True),
        sa.Column("ends_on", sa.Date(), nullable=True),
        sa.Column("created_by", S(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaign.id"]),
        sa.ForeignKeyConstraint(["unit_id"], ["unit.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("publicity_list", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_publicity_list_campaign_id"), ["campaign_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_publicity_list_unit_id"), ["unit_id"], unique=False)
        batch_op.create_index("ix_publicity_list_state_ends_on", ["state", "ends_on"], unique=False)

    op.create_table(
        "publicity_list_member",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("list_id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["aid_case.id"]),
        sa.ForeignKeyConstraint(["list_id"], ["publicity_list.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("list_id", "case_id"),
    )
    with op.batch_alter_table("publicity_list_member", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_publicity_list_member_list_id"), ["list_id"], unique=False
        )
        batch_op.create_index(
            "uq_publicity_member_live_case",
            ["case_id"],
            unique=True,
            sqlite_where=sa.text("active"),
            postgresql_where=sa.text("active"),
        )

    op.create_table(
        "publicity_list_audit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("list_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("actor", S(length=64), nullable=False),
        sa.Column("actor_unit", S(length=64), nullable=True),
        sa.Column("event", S(length=32), nullable=False),
        sa.Column("from_state", S(length=20), nullable=True),
        sa.Column("to_state", S(length=20), nullable=False),
        sa.Column("opinion", S(), nullable=True),
        sa.Column("data", JSONType(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("prev_hash", S(length=64), nullable=False),
        sa.Column("hash", S(length=64), nullable=False),
        sa.ForeignKeyConstraint(["list_id"], ["publicity_list.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("list_id", "seq"),
    )

    op.create_table(
        "objection",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("list_id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("objector", S(length=50), nullable=False),
        sa.Column("contact", S(length=100), nullable=False),
        sa.Column("content", S(length=2000), nullable=False),
        sa.Column("received_on", sa.Date(), nullable=False),
        sa.Column("status", S(length=10), nullable=False),
        sa.Column("reason", S(length=2000), nullable=True),
        sa.Column("recorded_by", S(length=64), nullable=False),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
        sa.Column("resolved_by", S(length=64), nullable=True),
        sa.Column("resolved_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["aid_case.id"]),
        sa.ForeignKeyConstraint(["list_id"], ["publicity_list.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("objection", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_objection_list_id"), ["list_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_objection_case_id"), ["case_id"], unique=False)
        batch_op.create_index(
            "uq_objection_open_case",
            ["case_id"],
            unique=True,
            sqlite_where=sa.text("status = 'open'"),
            postgresql_where=sa.text("status = 'open'"),
        )


def downgrade() -> None:
    op.drop_table("objection")
    op.drop_table("publicity_list_audit")
    op.drop_table("publicity_list_member")
    op.drop_table("publicity_list")
