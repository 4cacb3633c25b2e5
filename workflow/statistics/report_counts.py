"""Units that have filed a report, per (campaign, kind, ancestor unit, level of the filing
unit) — with `units.counts`, a dashboard's "units owing the report" in a subtree is a few rows'
difference. Kept in the transaction that files a unit's first revision of the kind (the unique
revision makes it exactly one, whatever filings race); reports are never deleted."""

from __future__ import annotations

from sqlalchemy import Connection, UniqueConstraint, select
from sqlmodel import Field, SQLModel

from jinqiu.workflow.statistics.models import ReportSubmission
from jinqiu.workflow.tally import Tally, TallyDifference, differences, per_ancestor
from jinqiu.workflow.units.models import Unit


class ReportCount(SQLModel, table=True):
    __tablename__ = "report_count"
    __table_args__ = (
        UniqueConstraint("campaign_id", "kind", "unit_code", "level", name="uq_report_count"),
    )

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id")
    kind: str = Field(max_length=32)
    unit_code: str = Field(max_length=64)  # the unit and everything below it
    level: str = Field(max_length=20)  # of the units that filed
    n: int = 0


unit_t = Unit.__table__  # type: ignore[attr-defined]
report_t = ReportSubmission.__table__  # type: ignore[attr-defined]
REPORT_COUNTS = Tally(
    ReportCount.__table__,  # type: ignore[attr-defined]
    ("campaign_id", "kind", "unit_code", "level"),
)


def count_first_report(
    conn: Connection, campaign_id: int, kind: str, path: str, level: str
) -> None:
    """The unit at `path` filed its first revision of `kind`."""
    REPORT_COUNTS.add(conn, per_ancestor([((campaign_id, kind), path, (level,), 1)]))


def reported_in_subtree(
    conn: Connection, campaign_id: int, code: str
) -> dict[tuple[str, str], int]:
    """(kind, level) → units of the subtree of `code` that filed that kind."""
    c = REPORT_COUNTS.table.c
    return {
        (key[1], key[3]): n
        for key, n in REPORT_COUNTS.stored(
            conn, c.campaign_id == campaign_id, c.unit_code == code
        ).items()
    }


def recount(conn: Connection, campaign_id: int) -> dict[tuple[object, ...], int]:
    rows = conn.execute(
        select(report_t.c.kind, unit_t.c.path, unit_t.c.level)
        .join(unit_t, unit_t.c.id == report_t.c.unit_id)
        .where(report_t.c.campaign_id == campaign_id)
        .distinct()
    )
    return per_ancestor(((campaign_id, kind), path, (level,), 1) for kind, path, level in rows)


def report_count_differences(conn: Connection, campaign_id: int) -> list[TallyDifference]:
    kept = REPORT_COUNTS.stored(conn, REPORT_COUNTS.table.c.campaign_id == campaign_id)
    return differences("reports", recount(conn, campaign_id), kept)
