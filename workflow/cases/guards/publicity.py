"""Publicity (公示): the period runs its working days, and an open objection (异议) holds the case."""

from __future__ import annotations

from jinqiu.workflow.cases.facts import GuardContext
from jinqiu.workflow.errors import Reason


def no_open_objection(ctx: GuardContext) -> list[Reason]:
    if ctx.case.objection_open:
        return [Reason("objection_open", "公示期内有未处理的异议")]
    return []


def objection_is_open(ctx: GuardContext) -> list[Reason]:
    if not ctx.case.objection_open:
        return [Reason("no_objection", "该案件没有待处理的异议")]
    return []


def publicity_period_over(ctx: GuardContext) -> list[Reason]:
    ends = ctx.case.publicity_ends_on
    if ends is None:
        return [Reason("publicity_not_started", "尚未开始公示")]
    if ctx.campaign.publicity_working_days == 0:  # no publicity asked: over the day it starts
        return []
    # `ends` is the last day of publicity, inclusive: the case moves on the day after.
    if ctx.today <= ends:
        return [Reason("publicity_running", f"公示期至{ends.isoformat()}（含）结束")]
    return []
