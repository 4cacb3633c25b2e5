"""campaign: the opinions a notice asks for and the aid priority when funds run short

Revision ID: 0018
Revises: 0019
Create Date: 2026-12-01 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("campaign", schema=None) as batch_op:
        batch_op.add_column(sa.Column("opinions", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("aid_priority", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("campaign", schema=None) as batch_op:
        batch_op.drop_column("aid_priority")
        batch_op.drop_column("opinions")
