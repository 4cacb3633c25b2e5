"""The dashboard's other pre-aggregated counts (besides the case counters): reminders sent per
(campaign, ancestor unit), reports filed per (campaign, kind, ancestor unit, level), units per
(ancestor unit, level) — checked against a recount of their source rows and repaired, for
`jinqiu counters verify`, the tests and the dashboard bench."""

from __future__ import annotations

from sqlalchemy import Connection, select

from jinqiu.workflow.campaigns.models import Campaign
from jinqiu.workflow.deadlines.reminder_counts import REMINDER_COUNTS, reminder_count_differences
from jinqiu.workflow.errors import NotFound
from jinqiu.workflow.statistics.report_counts import REPORT_COUNTS, report_count_differences
from jinqiu.workflow.tally import TallyDifference
from jinqiu.workflow.units.counts import UNIT_COUNTS, unit_count_differences
from jinqiu.workflow.units.parents import parents_of

campaign_t = Campaign.__table__  # type: ignore[attr-defined]


def tally_differences(conn: Connection, campaign_id: int | None = None) -> list[TallyDifference]:
    """Every reminder and report count of the campaign (None: of every campaign), and every
    unit count, that differs from a recount. Read in one snapshot, as the case counters."""
    if campaign_id is None:
        ids = sorted(conn.execute(select(campaign_t.c.id)).scalars())
    elif conn.execute(select(campaign_t.c.id).where(campaign_t.c.id == campaign_id)).first():
        ids = [campaign_id]
    else:
        raise NotFound(f"活动 {campaign_id} 不存在")
    out = []
    for cid in ids:
        out += reminder_count_differences(conn, cid)
        out += report_count_differences(conn, cid)
    out += unit_count_differences(conn)
    return out


def repair_tallies(conn: Connection, campaign_id: int | None = None) -> list[TallyDifference]:
    """Sets every differing count to its recount (adding the difference, so writers held back
    by the table locks add their own change after), in the caller's write transaction."""
    tallies = {"reminders": REMINDER_COUNTS, "reports": REPORT_COUNTS, "units": UNIT_COUNTS}
    for tally in tallies.values():
        tally.lock(conn)
    found = tally_differences(conn, campaign_id)
    for what, tally in tallies.items():
        deltas = {d.key: d.counted - d.stored for d in found if d.what == what}
        parents = None
        if tally.parent is not None:  # the rows it makes name their unit's parent
            unit = tally.keys.index("unit_code")
            parents = parents_of(conn, sorted({key[unit] for key in deltas}))
        tally.add(conn, deltas, parents)
    return found
