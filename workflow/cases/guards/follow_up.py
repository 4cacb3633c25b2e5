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
