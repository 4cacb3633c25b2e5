"""An aid rule of the campaign covers the student, and so an amount can be computed."""

from __future__ import annotations

from jinqiu.workflow.cases.aid import decide_aid
from jinqiu.workflow.cases.facts import GuardContext
from jinqiu.workflow.errors import Reason


def aid_rule_applies(ctx: GuardContext) -> list[Reason]:
    decision = decide_aid(
        ctx.campaign.aid_rules,
        ctx.student.education_level,
        ctx.student.tier,
        ctx.student.tuition_invoice_fen,
    )
    return [decision] if isinstance(decision, Reason) else []
