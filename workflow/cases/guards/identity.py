"""Identity numbers of worker and student must be valid under GB 11643-1999."""

from __future__ import annotations

from jinqiu.workflow.cases.facts import GuardContext
from jinqiu.workflow.errors import Reason
from jinqiu.workflow.identity import problem_with


def identity_numbers_valid(ctx: GuardContext) -> list[Reason]:
    reasons: list[Reason] = []
    for who, number in (("职工", ctx.worker.id_number), ("学生", ctx.student.id_number)):
        problem = problem_with(number)
        if problem is not None:
            reasons.append(Reason(problem.code, f"{who}{problem.message}"))
    return reasons
