"""Reminder ledger rows per (campaign, ancestor unit): what a dashboard shows as the reminders
sent to each child's subtree, read as one row per child, not grouped from the ledger. Kept in
the sweep's transaction that claims the ledger rows (only the rows its INSERT … ON CONFLICT DO
NOTHING inserted count); ledger rows are never deleted."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from sqlalchemy import Connection, Index, UniqueConstraint, func, select
from sqlmodel import Field, SQLModel

from jinqiu.workflow.deadlines.models import ReminderLedger
from jinqiu.workflow.paths import parents_along
from jinqiu.workflow.tally import Tally, TallyDifference, differences, per_ancestor
from jinqiu.workflow.units.models import Unit


class ReminderCount(SQLModel, table=True):
    __tablename__ = "reminder_count"
    __table_args__ = (
        UniqueConstraint("campaign_id", "unit_code", name="uq_reminder_count"),
        # A dashboard reads the reminders sent to a unit's children as one range of this index.
        Index("ix_reminder_count_parent", "campaign_id", "parent_code"),
    )

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id")
    unit_code: str = Field(max_length=64)  # ledger rows of this unit and everything below it
    n: int = 0
    # The unit's parent (None: a root), written when the row is made (migration 0031).
    parent_code: str | None = Field(default=None, max_length=64)


unit_t = Unit.__table__  # type: ignore[attr-defined]
ledger_t = ReminderLedger.__table__  # type: ignore[attr-defined]
REMINDER_COUNTS = Tally(
    ReminderCount.__table__,  # type: ignore[attr-defined]
    ("campaign_id", "unit_code"),
    parent="parent_code",
)


def count_reminders(conn: Connection, campaign_id: int, paths: Iterable[str]) -> None:
    """Ledger rows just inserted, one path (of the unit that owes the work) per row."""
    per_path = Counter(paths)
    REMINDER_COUNTS.add(
        conn,
        per_ancestor(((campaign_id,), path, (), n) for path, n in per_path.items()),
        parents_along(per_path),
    )


def recount(conn: Connection, campaign_id: int) -> dict[tuple[object, ...], int]:
    rows = conn.execute(
        select(unit_t.c.path, func.count())
        .join(unit_t, unit_t.c.id == ledger_t.c.unit_id)
        .where(ledger_t.c.campaign_id == campaign_id)
        .group_by(unit_t.c.path)
    )
    return per_ancestor(((campaign_id,), path, (), int(n)) for path, n in rows)


def reminder_count_differences(conn: Connection, campaign_id: int) -> list[TallyDifference]:
    kept = REMINDER_COUNTS.stored(conn, REMINDER_COUNTS.table.c.campaign_id == campaign_id)
    return differences("reminders", recount(conn, campaign_id), kept)
