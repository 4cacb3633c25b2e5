"""payment batches: the batch, its rows and audit trail; bank card holder and bank; cancelled
cases may apply again

Revision ID: 0013
Revises: 0011 (another branch adds 0012 at the same time; the chain is re-linked at merge)
Create Date: 2026-12-01 15:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
import sqlmodel.sql.sqltypes
from alembic import op

from jinqiu.storage.sqltypes import JSONType, UTCDateTime

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The one-application index: the states a student may apply again from (frozen here, as the
# declaration said on this day).
_ENDED_BEFORE = "state NOT IN ('rejected', 'withdrawn')"
_ENDED_AFTER = "state NOT IN ('cancelled', 'rejected', 'withdrawn')"


def _text(length: int) -> sqlmodel.sql.sqltypes.AutoString:
    return sqlmodel.sql.sqltypes.AutoString(length=length)


def upgrade() -> None:
    op.create_table(
        "payment_batch",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("fund_source_id", sa.Integer(), nullable=False),
        sa.Column("retry_of", sa.Integer(), nullable=True),
        sa.Column("state", _text(20), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("total_fen", sa.BigInteger(), nullable=False),
        sa.Column("purpose", _text(100), nullable=False),
        sa.Column("csv_sha256", _text(64), nullable=True),
        sa.Column("xlsx_sha256", _text(64), nullable=True),
        sa.Column("result_sha256", _text(64), nullable=True),
        sa.Column("paid", sa.Integer(), nullable=True),
        sa.Column("failed", sa.Integer(), nullable=True),
        sa.Column("audit_seq", sa.Integer(), nullable=False),
        sa.Column("audit_head", _text(64), nullable=False),
        sa.Column("created_by", _text(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaign.id"]),
        sa.ForeignKeyConstraint(["unit_id"], ["unit.id"]),
        sa.ForeignKeyConstraint(["fund_source_id"], ["fund_source.id"]),
        sa.ForeignKeyConstraint(["retry_of"], ["payment_batch.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("payment_batch", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_payment_batch_campaign_id"), ["campaign_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_payment_batch_unit_id"), ["unit_id"], unique=False)

    op.create_table(
        "payment_batch_item",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("holder", _text(50), nullable=False),
        sa.Column("card_number", _text(19), nullable=False),
        sa.Column("bank_name", _text(50), nullable=False),
        sa.Column("amount_fen", sa.Integer(), nullable=False),
        sa.Column("outcome", _text(10), nullable=True),
        sa.Column("failure_reason", _text(200), nullable=True),
        sa.ForeignKeyConstraint(["batch_id"], ["payment_batch.id"]),
        sa.ForeignKeyConstraint(["case_id"], ["aid_case.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("batch_id", "position"),
        sa.UniqueConstraint("batch_id", "case_id"),
    )
    with op.batch_alter_table("payment_batch_item", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_payment_batch_item_case_id"), ["case_id"], unique=False
        )

    op.create_table(
        "payment_batch_audit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("actor", _text(64), nullable=False),
        sa.Column("actor_unit", _text(64), nullable=True),
        sa.Column("event", _text(32), nullable=False),
        sa.Column("from_state", _text(20), nullable=True),
        sa.Column("to_state", _text(20), nullable=False),
        sa.Column("opinion", sa.Text(), nullable=True),
        sa.Column("data", JSONType(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("prev_hash", _text(64), nullable=False),
        sa.Column("hash", _text(64), nullable=False),
        sa.ForeignKeyConstraint(["batch_id"], ["payment_batch.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("batch_id", "seq"),
    )

    with op.batch_alter_table("worker", schema=None) as batch_op:
        batch_op.add_column(sa.Column("bank_card_holder", _text(50), nullable=True))
        batch_op.add_column(sa.Column("bank_name", _text(50), nullable=True))
    with op.batch_alter_table("student", schema=None) as batch_op:
        batch_op.add_column(sa.Column("guardian_name", _text(50), nullable=True))
    with op.batch_alter_table("aid_case", schema=None) as batch_op:
        batch_op.add_column(sa.Column("payment_batch_id", sa.Integer(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_aid_case_payment_batch_id"), ["payment_batch_id"], unique=False
        )
        batch_op.drop_index("uq_active_case_per_student")
        batch_op.create_index(
            "uq_active_case_per_student",
            ["campaign_id", "student_id_number"],
            unique=True,
            sqlite_where=sa.text(_ENDED_AFTER),
            postgresql_where=sa.text(_ENDED_AFTER),
        )


def downgrade() -> None:
    with op.batch_alter_table("aid_case", schema=None) as batch_op:
        batch_op.drop_index("uq_active_case_per_student")
        batch_op.create_index(
            "uq_active_case_per_student",
            ["campaign_id", "student_id_number"],
            unique=True,
            sqlite_where=sa.text(_ENDED_BEFORE),
            postgresql_where=sa.text(_ENDED_BEFORE),
        )
        batch_op.drop_index(batch_op.f("ix_aid_case_payment_batch_id"))
        batch_op.drop_column("payment_batch_id")
    with op.batch_alter_table("student", schema=None) as batch_op:
        batch_op.drop_column("guardian_name")
    with op.batch_alter_table("worker", schema=None) as batch_op:
        batch_op.drop_column("bank_name")
        batch_op.drop_column("bank_card_holder")
    op.drop_table("payment_batch_audit")
    with op.batch_alter_table("payment_batch_item", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_payment_batch_item_case_id"))
    op.drop_table("payment_batch_item")
    with op.batch_alter_table("payment_batch", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_payment_batch_unit_id"))
        batch_op.drop_index(batch_op.f("ix_payment_batch_campaign_id"))
    op.drop_table("payment_batch")
