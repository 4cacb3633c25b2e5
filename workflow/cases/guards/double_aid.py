"""No double aid: "已经接受政府有关部门或其他社会机构救助的学生，不再重复救助" (county
summaries); Dalian: "避免重复救助". A manager may override with a reason, which is audited."""

from __future__ import annotations

from jinqiu.workflow.cases.facts import GuardContext
from jinqiu.workflow.errors import Reason


def not_already_aided(ctx: GuardContext) -> list[Reason]:
    if ctx.student.already_aided_by:
        return [
            Reason(
                "already_aided",
                f"该学生已获{ctx.student.already_aided_by}资助，不再重复救助",
            )
        ]
    return []
