"""the case counters as one row per (campaign, unit), one column per state

A dashboard reads one row per child unit instead of one per child and state (a district's
~500 children: ~500 rows, not ~3,000), and a transition updates one row per ancestor instead
of two. The rows of `case_count` are moved over as they are (not recounted): a counter the
repair would change is changed by `jinqiu counters verify --repair`, as before.

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-02 13:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0030"
down_revision: str | None = "0029"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The machine's states on the day of this migration (a migration freezes its schema).
STATES = (
    "survey",
    "archive_check",
    "ready_for_publicity",
    "publicity",
    "approval",
    "disbursement",
    "follow_up",
    "closed",
    "rejected",
    "withdrawn",
    "cancelled",
)


def upgrade() -> None:
    op.create_table(
        "unit_case_count",
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("unit_code", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        *(
            sa.Column(state, sa.Integer(), nullable=False, server_default=sa.text("0"))
            for state in STATES
        ),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaign.id"]),
        sa.PrimaryKeyConstraint("campaign_id", "unit_code", name="pk_unit_case_count"),
    )
    bind = op.get_bind()
    unknown = bind.execute(
        sa.text(
            "SELECT DISTINCT state FROM case_count WHERE n <> 0 AND state NOT IN :states"
        ).bindparams(sa.bindparam("states", expanding=True)),
        {"states": list(STATES)},
    ).scalars()
    # Not dropped silently: a count of a state this schema has no column for would be lost.
    found = sorted(unknown)
    if found:
        raise RuntimeError(f"case_count holds states without a column: {found}")
    columns = ", ".join(STATES)
    sums = ", ".join(f"SUM(CASE WHEN state = '{s}' THEN n ELSE 0 END)" for s in STATES)
    bind.execute(
        sa.text(
            f"INSERT INTO unit_case_count (campaign_id, unit_code, {columns}) "
            f"SELECT campaign_id, unit_code, {sums} FROM case_count "
            "GROUP BY campaign_id, unit_code"
        )
    )
    op.drop_table("case_count")


def downgrade() -> None:
    op.create_table(
        "case_count",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("unit_code", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaign.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("campaign_id", "unit_code", "state", name="uq_case_count"),
    )
    bind = op.get_bind()
    for state in STATES:
        bind.execute(
            sa.text(
                "INSERT INTO case_count (campaign_id, unit_code, state, n) "
                f"SELECT campaign_id, unit_code, '{state}', {state} FROM unit_case_count "
                f"WHERE {state} <> 0"
            )
        )
    op.drop_table("unit_case_count")
