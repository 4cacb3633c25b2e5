"""inbox reads per user: one receipt per inbox item and user

Revision ID: 0027
Revises: 0018
Create Date: 2026-12-01 22:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
import sqlmodel.sql.sqltypes
from alembic import op

from jinqiu.storage.sqltypes import UTCDateTime

revision: str = "0027"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "inbox_read",
        sa.Column("username", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("inbox_message_id", sa.Integer(), nullable=False),
        sa.Column("read_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["inbox_message_id"], ["inbox_message.id"]),
        sa.PrimaryKeyConstraint("username", "inbox_message_id"),
    )
    # The one reader the unit-wide read knew keeps the item read; the unit's other users now
    # see it unread, which is what reading per user means.
    op.execute(
        "INSERT INTO inbox_read (username, inbox_message_id, read_at) "
        "SELECT read_by, id, read_at FROM inbox_message "
        "WHERE read_by IS NOT NULL AND read_at IS NOT NULL"
    )


def downgrade() -> None:
    op.drop_table("inbox_read")
