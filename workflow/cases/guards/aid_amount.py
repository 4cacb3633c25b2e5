"""An aid rule of the campaign covers the student, and so an amount can be computed; and, to
pay, the amount was reserved at the final approval."""

from __future__ import annotations

from jinqiu.workflow.cases.facts import GuardContext
from jinqiu.workflow.errors import Reason


def aid_rule_applies(ctx: GuardContext) -> list[Reason]:
    """A rule covers the student (verify): the amount itself may be the last approver's."""
    return [ctx.aid_rule] if isinstance(ctx.aid_rule, Reason) else []


def aid_amount_decided(ctx: GuardContext) -> list[Reason]:
    """The final approval: the rule's amount, or the approver's within its bounds."""
    return [ctx.aid] if isinstance(ctx.aid, Reason) else []


def amount_only_at_last_level(ctx: GuardContext) -> list[Reason]:
    """Only the last level sets an amount: an earlier one's would silently be dropped."""
    if "amount" in ctx.data:
        return [
            Reason("amount_not_at_this_level", "只有最后一级审批可以确定资助金额（data.amount）")
        ]
    return []


def aid_reserved(ctx: GuardContext) -> list[Reason]:
    case = ctx.case
    if case.fund_source_id is None or case.approved_amount_fen is None:
        return [Reason("nothing_reserved", "该案件没有预留的助学金")]
    return []
