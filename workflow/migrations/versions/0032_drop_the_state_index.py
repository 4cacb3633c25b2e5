"""drop aid_case's index on the state alone: `ix_case_state_publicity_end` (state,
publicity_ends_on) serves every lookup by state, and each transition that changes a case's state
wrote an entry into both (a state-changing UPDATE is not HOT: it touches every index of the
table; EXPLAIN (ANALYZE, BUFFERS) of one on 200,000 rows: ~14 buffers without it, ~15 with)

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-03 02:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0032"
down_revision: str | None = "0031"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("aid_case", schema=None) as batch_op:
        batch_op.drop_index("ix_aid_case_state")


def downgrade() -> None:
    with op.batch_alter_table("aid_case", schema=None) as batch_op:
        batch_op.create_index("ix_aid_case_state", ["state"], unique=False)
