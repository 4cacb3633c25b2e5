"""Follow-up (回访): a case closes once the campaign's follow-up rule is met."""

from __future__ import annotations

from jinqiu.workflow.cases.facts import GuardContext
from jinqiu.workflow.errors import Reason


def follow_up_visits_done(ctx: GuardContext) -> list[Reason]:
    """The campaign's `follow_up.visits_required` visits recorded; no rule: nothing to wait for."""
    missing = ctx.campaign.visits_required - ctx.case.follow_up_visits
    if missing > 0:
        return [
            Reason(
                "visits_missing",
                f"按本次活动的回访要求须回访{ctx.campaign.visits_required}次，"
                f"已回访{ctx.case.follow_up_visits}次，还差{missing}次",
            )
        ]
    return []


def campaign_ended(ctx: GuardContext) -> list[Reason]:
    """The campaign's last day (`follow_up.closes_on`) is behind us: it counts in full."""
    closes_on = ctx.campaign.follow_up_closes_on
    if closes_on is None:
        return [Reason("campaign_not_ended", "本次活动未规定结束日期，回访中的案件不按日期办结")]
    if ctx.today <= closes_on:
        return [
            Reason(
                "campaign_not_ended",
                f"本次活动至{closes_on.isoformat()}结束，结束后才能按活动结束办结",
            )
        ]
    return []
