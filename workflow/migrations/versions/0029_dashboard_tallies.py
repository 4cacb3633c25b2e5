"""the dashboard's pre-aggregated counts (reminders, filed reports, units per ancestor unit)
and the funded cases' index

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-02 00:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0029"
down_revision: str | None = "0028"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    code = sqlmodel.sql.sqltypes.AutoString(length=64)
    op.create_table(
        "reminder_count",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("unit_code", code, nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaign.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("campaign_id", "unit_code", name="uq_reminder_count"),
    )
    op.create_table(
        "report_count",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("unit_code", code, nullable=False),
        sa.Column("level", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaign.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("campaign_id", "kind", "unit_code", "level", name="uq_report_count"),
    )
    op.create_table(
        "unit_count",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("unit_code", code, nullable=False),
        sa.Column("level", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("unit_code", "level", name="uq_unit_count"),
    )
    op.create_index(
        "ix_case_funded",
        "aid_case",
        ["campaign_id", "fund_source_id", "state", "paid_on", "approved_amount_fen"],
        unique=False,
        sqlite_where=sa.text("fund_source_id IS NOT NULL"),
        postgresql_where=sa.text("fund_source_id IS NOT NULL"),
    )
    backfill()


def _insert(table: str, columns: tuple[str, ...], totals: dict[tuple[object, ...], int]) -> None:
    if totals:
        names = ", ".join((*columns, "n"))
        marks = ", ".join(f":{c}" for c in (*columns, "n"))
        op.get_bind().execute(
            sa.text(f"INSERT INTO {table} ({names}) VALUES ({marks})"),
            [{**dict(zip(columns, key, strict=True)), "n": n} for key, n in totals.items()],
        )


def _per_ancestor(
    rows: Sequence[tuple[tuple[object, ...], str, tuple[object, ...], int]],
) -> dict[tuple[object, ...], int]:
    totals: dict[tuple[object, ...], int] = {}
    for before, path, after, n in rows:
        for code in [c for c in path.split("/") if c]:
            key = (*before, code, *after)
            totals[key] = totals.get(key, 0) + int(n)
    return totals


def backfill() -> None:
    """The counts of what exists already: every unit on each row's path counts it."""
    bind = op.get_bind()
    ledger = bind.execute(
        sa.text(
            "SELECT l.campaign_id, u.path, COUNT(*) FROM reminder_ledger l "
            "JOIN unit u ON u.id = l.unit_id GROUP BY l.campaign_id, u.path"
        )
    ).all()
    _insert(
        "reminder_count",
        ("campaign_id", "unit_code"),
        _per_ancestor([((c,), path, (), n) for c, path, n in ledger]),
    )
    reports = bind.execute(
        sa.text(
            "SELECT DISTINCT r.campaign_id, r.kind, u.path, u.level FROM report_submission r "
            "JOIN unit u ON u.id = r.unit_id"
        )
    ).all()
    _insert(
        "report_count",
        ("campaign_id", "kind", "unit_code", "level"),
        _per_ancestor([((c, kind), path, (level,), 1) for c, kind, path, level in reports]),
    )
    units = bind.execute(sa.text("SELECT path, level FROM unit")).all()
    _insert(
        "unit_count",
        ("unit_code", "level"),
        _per_ancestor([((), path, (level,), 1) for path, level in units]),
    )


def downgrade() -> None:
    op.drop_index("ix_case_funded", table_name="aid_case")
    op.drop_table("unit_count")
    op.drop_table("report_count")
    op.drop_table("reminder_count")
