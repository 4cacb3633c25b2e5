"""Applications are submitted inside the survey phase (Weihai 2024: 7/16–7/31), unless a
manager overrides with a reason (audited)."""

from __future__ import annotations

from jinqiu.states import CaseState
from jinqiu.workflow.cases.facts import GuardContext
from jinqiu.workflow.errors import Reason


def within_survey_window(ctx: GuardContext) -> list[Reason]:
    phase = ctx.campaign.phase_cases_leave(CaseState.SURVEY.value)
    if phase is None:
        return []  # the campaign sets no survey window
    if ctx.today < phase.starts:
        return [
            Reason("survey_not_open", f"“{phase.name}”阶段尚未开始（{phase.starts.isoformat()}起）")
        ]
    if ctx.today > phase.ends:
        return [Reason("survey_closed", f"“{phase.name}”阶段已于{phase.ends.isoformat()}结束")]
    return []
