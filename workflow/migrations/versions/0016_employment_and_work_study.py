"""employment records (阳光就业: a noun on the engine, its help, its audit chain) and work-study
posts (勤工俭学) with their participants

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-01 17:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
import sqlmodel.sql.sqltypes
from alembic import op

from jinqiu.storage.sqltypes import JSONType, UTCDateTime

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

S = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    op.create_table(
        "employment_record",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("state", S(length=20), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("audit_seq", sa.Integer(), nullable=False),
        sa.Column("audit_head", S(length=64), nullable=False),
        sa.Column("graduation_year", sa.Integer(), nullable=False),
        sa.Column("school", S(length=200), nullable=False),
        sa.Column("major", S(length=200), nullable=True),
        sa.Column("studies_locally", sa.Boolean(), nullable=False),
        sa.Column("destination", S(length=200), nullable=True),
        sa.Column("created_by", S(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaign.id"]),
        sa.ForeignKeyConstraint(["case_id"], ["aid_case.id"]),
        sa.ForeignKeyConstraint(["unit_id"], ["unit.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("campaign_id", "case_id", name="uq_employment_record_campaign_case"),
    )
    with op.batch_alter_table("employment_record", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_employment_record_case_id"), ["case_id"], unique=False)
        batch_op.create_index(
            "ix_employment_record_campaign_unit_state",
            ["campaign_id", "unit_id", "state"],
            unique=False,
        )

    op.create_table(
        "employment_help",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("kind", S(length=32), nullable=False),
        sa.Column("given_on", sa.Date(), nullable=False),
        sa.Column("text", S(length=2000), nullable=True),
        sa.Column("amount_fen", sa.BigInteger(), nullable=True),
        sa.Column("recorded_by", S(length=64), nullable=False),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["record_id"], ["employment_record.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("employment_help", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_employment_help_record_id"), ["record_id"], unique=False
        )

    op.create_table(
        "employment_record_audit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
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
        sa.ForeignKeyConstraint(["record_id"], ["employment_record.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("record_id", "seq"),
    )

    op.create_table(
        "work_study_post",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("title", S(length=100), nullable=False),
        sa.Column("employer", S(length=200), nullable=False),
        sa.Column("kind", S(length=20), nullable=False),
        sa.Column("hours_per_week", sa.Integer(), nullable=False),
        sa.Column("hourly_pay_fen", sa.Integer(), nullable=False),
        sa.Column("is_open", sa.Boolean(), nullable=False),
        sa.Column("created_by", S(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("closed_by", S(length=64), nullable=True),
        sa.Column("closed_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaign.id"]),
        sa.ForeignKeyConstraint(["unit_id"], ["unit.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("work_study_post", schema=None) as batch_op:
        batch_op.create_index(
            "ix_work_study_post_campaign_unit", ["campaign_id", "unit_id"], unique=False
        )

    op.create_table(
        "work_study_participant",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("post_id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("added_by", S(length=64), nullable=False),
        sa.Column("added_at", UTCDateTime(), nullable=False),
        sa.Column("removed_by", S(length=64), nullable=True),
        sa.Column("removed_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["aid_case.id"]),
        sa.ForeignKeyConstraint(["post_id"], ["work_study_post.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("work_study_participant", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_work_study_participant_post_id"), ["post_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_work_study_participant_case_id"), ["case_id"], unique=False
        )
        batch_op.create_index(
            "uq_work_study_participant_active",
            ["post_id", "case_id"],
            unique=True,
            sqlite_where=sa.text("active"),
            postgresql_where=sa.text("active"),
        )


def downgrade() -> None:
    op.drop_table("work_study_participant")
    op.drop_table("work_study_post")
    op.drop_table("employment_record_audit")
    op.drop_table("employment_help")
    op.drop_table("employment_record")
