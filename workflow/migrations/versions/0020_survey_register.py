"""survey register: the 摸底表's rows and the spreadsheets they were imported from

Revision ID: 0020
Revises: 0016
Create Date: 2026-12-01 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
import sqlmodel.sql.sqltypes
from alembic import op

from jinqiu.storage.sqltypes import JSONType, UTCDateTime

revision: str = "0020"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "survey_import",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("filename", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("file_sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("registered", sa.Integer(), nullable=False),
        sa.Column("created", sa.Integer(), nullable=False),
        sa.Column("invalid", sa.Integer(), nullable=False),
        sa.Column("imported_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("imported_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaign.id"]),
        sa.ForeignKeyConstraint(["unit_id"], ["unit.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("survey_import", schema=None) as batch_op:
        batch_op.create_index("ix_survey_import_file", ["campaign_id", "file_sha256"], unique=False)
    op.create_table(
        "survey_entry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("import_id", sa.Integer(), nullable=True),
        sa.Column("row_number", sa.Integer(), nullable=False),
        sa.Column("row_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("worker_name", sqlmodel.sql.sqltypes.AutoString(length=50), nullable=False),
        sa.Column("worker_id_number", sqlmodel.sql.sqltypes.AutoString(length=18), nullable=False),
        sa.Column("student_name", sqlmodel.sql.sqltypes.AutoString(length=50), nullable=False),
        sa.Column("student_id_number", sqlmodel.sql.sqltypes.AutoString(length=18), nullable=False),
        sa.Column("section", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("applying", sa.Boolean(), nullable=False),
        sa.Column("archive_status", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("archived_on", sa.Date(), nullable=True),
        sa.Column("remark", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.Column("form", JSONType(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("registered_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("registered_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaign.id"]),
        sa.ForeignKeyConstraint(["unit_id"], ["unit.id"]),
        sa.ForeignKeyConstraint(["import_id"], ["survey_import.id"]),
        sa.ForeignKeyConstraint(["case_id"], ["aid_case.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("campaign_id", "student_id_number", name="uq_survey_entry_student"),
    )
    with op.batch_alter_table("survey_entry", schema=None) as batch_op:
        batch_op.create_index(
            "ix_survey_entry_campaign_unit", ["campaign_id", "unit_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("survey_entry", schema=None) as batch_op:
        batch_op.drop_index("ix_survey_entry_campaign_unit")
    op.drop_table("survey_entry")
    with op.batch_alter_table("survey_import", schema=None) as batch_op:
        batch_op.drop_index("ix_survey_import_file")
    op.drop_table("survey_import")
