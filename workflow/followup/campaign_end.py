"""Follow-up closed when the campaign ends (issue 10, item 4: "…or when the campaign ends").

A campaign whose file names its last day (`follow_up.closes_on`) closes, from the day after,
every case still in follow-up: `end_follow_up` fired by the scheduler through the bulk path
(`apply_bulk`), its trail entry saying why — the opinion "活动结束，未回访" (or the visits made
when some were, short of the rule) and the effect's notes: the day the campaign ended, the
visits recorded, the visits the rule asked for. A case whose visits met the rule was closed by
its visit already and is not touched.

Set-based and safe to run anywhere, any number of times: per campaign, chunks of cases read
and fired in one transaction each. Two sweeps at once: on PostgreSQL the bulk path locks the
chunk's rows first, so the second waits, then finds their versions moved and is refused
(nothing written); on SQLite the writers take turns and the second finds nothing left. A crash
between chunks keeps the chunks committed; the next sweep does the rest. A campaign that fails
is reported against itself and the others go on."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass, field

from sqlalchemy import Connection, Engine, select

from jinqiu.states import CaseEvent, CaseState
from jinqiu.workflow.campaigns.models import Campaign
from jinqiu.workflow.campaigns.rules import follow_up_closes_on
from jinqiu.workflow.cases.bulk import BulkItem, apply_bulk
from jinqiu.workflow.cases.models import Case
from jinqiu.workflow.clock import Clock
from jinqiu.workflow.db import transaction
from jinqiu.workflow.failures import CampaignFailure, failed
from jinqiu.workflow.roles import SCHEDULER

case_t = Case.__table__  # type: ignore[attr-defined]
campaign_t = Campaign.__table__  # type: ignore[attr-defined]

CHUNK = 1000  # cases per transaction: the bulk path's own chunk
UNVISITED = "活动结束，未回访"


@dataclass
class FollowUpEnded:
    closed: dict[int, list[int]] = field(default_factory=dict)  # campaign → its cases closed
    skipped: int = 0  # another sweep got there first
    failures: list[CampaignFailure] = field(default_factory=list)

    @property
    def count(self) -> int:
        return sum(len(cases) for cases in self.closed.values())


def opinion_for(visits: int) -> str:
    """What the trail says: unvisited, or visited short of the campaign's rule."""
    return UNVISITED if visits == 0 else f"活动结束，回访未达要求（已回访{visits}次）"


def close_ended_follow_ups(
    engine: Engine, clock: Clock, *, campaigns: Collection[int] | None = None
) -> FollowUpEnded:
    """Every case still in follow-up of a campaign whose `follow_up.closes_on` has passed."""
    today = clock.now().date()
    query = select(campaign_t.c.id, campaign_t.c.name, campaign_t.c.follow_up).where(
        campaign_t.c.follow_up.is_not(None)
    )
    if campaigns is not None:  # a sweep within a subtree: its campaigns only
        query = query.where(campaign_t.c.id.in_(list(campaigns)))
    with engine.connect() as conn:
        ended = conn.execute(query.order_by(campaign_t.c.id)).all()
    outcome = FollowUpEnded()
    for campaign in ended:
        try:
            closes_on = follow_up_closes_on(campaign.follow_up)
            if closes_on is None or today <= closes_on:  # its last day counts in full
                continue
            _close_campaign(engine, clock, campaign.id, outcome)
        except Exception as exc:  # this campaign's trouble: the others go on
            outcome.failures.append(failed(campaign.id, campaign.name, "活动结束回访办结", exc))
    return outcome


def _close_campaign(engine: Engine, clock: Clock, campaign_id: int, outcome: FollowUpEnded) -> None:
    after = 0  # the last id handled: refused cases (a concurrent sweep's) are not asked again
    while True:
        won: list[int] = []
        with transaction(engine) as conn:
            rows = _in_follow_up(conn, campaign_id, after)
            if not rows:
                return
            after = rows[-1][0]
            by_visits: dict[int, list[BulkItem]] = defaultdict(list)
            for case_id, version, visits in rows:
                by_visits[visits].append(BulkItem(case_id, version))
            for visits, items in sorted(by_visits.items()):
                results = apply_bulk(
                    conn,
                    items=items,
                    event=CaseEvent.END_FOLLOW_UP,
                    actor=SCHEDULER,
                    clock=clock,
                    opinion=opinion_for(visits),
                )
                won.extend(r.id for r in results if r.ok)
                outcome.skipped += sum(1 for r in results if not r.ok)
        if won:  # counted once committed
            outcome.closed.setdefault(campaign_id, []).extend(won)


def _in_follow_up(conn: Connection, campaign_id: int, after: int) -> list[tuple[int, int, int]]:
    rows = conn.execute(
        select(case_t.c.id, case_t.c.version, case_t.c.follow_up_visits)
        .where(
            case_t.c.campaign_id == campaign_id,
            case_t.c.state == CaseState.FOLLOW_UP.value,
            case_t.c.id > after,
        )
        .order_by(case_t.c.id)
        .limit(CHUNK)
    ).all()
    return [(r.id, r.version, r.follow_up_visits) for r in rows]
