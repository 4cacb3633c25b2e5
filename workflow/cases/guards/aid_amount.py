"""An aid rule of the campaign covers the student, and so an amount can be computed; and, to
pay, the amount was reserved at the final approval."""

from __future__ import annotations

from jinqiu.workflow.cases.facts import GuardContext
from jinqiu.workflow.errors import Reason


def aid_rule_applies(ctx: GuardContext) -> list[Reason]:
    return [ctx.aid] if isinstance(ctx.aid, Reason) else []


def aid_reserved(ctx: GuardContext) -> list[Reason]:
    case = ctx.case
    if case.fund_source_id is None or case.approved_amount_fen is None:
        return [Reason("nothing_reserved", "该案件没有预留的助学金")]
    return []
