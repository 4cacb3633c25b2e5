"""The life of a publicity list (公示名单), as data.

    draft → published → ended,  and draft | published → withdrawn

A unit builds a draft from its cases waiting for publicity (待公示); publishing it fixes its
period (a start date and a number of working days, holidays skipped) and moves all its cases
into publicity; the day after the period the sweep ends it, which moves its cases on to
approval — unless an objection (异议) recorded against the list is still open. Recording and
resolving an objection are events on the list (its trail shows them) as well as on the case.
Withdrawing a published list returns its cases to waiting.

Pure: guards and effects are named here and implemented in `workflow.publicity_lists`.
"""

from __future__ import annotations

from enum import StrEnum

from jinqiu.states.case_lifecycle import Permission
from jinqiu.states.machine import Kind, Machine, State, Transition


class ListState(StrEnum):
    DRAFT = "draft"  # 草拟
    PUBLISHED = "published"  # 公示中
    ENDED = "ended"  # 公示期满
    WITHDRAWN = "withdrawn"  # 撤回


class ListEvent(StrEnum):
    PUBLISH = "publish"
    OBJECT = "object"
    RESOLVE_OBJECTION = "resolve_objection"
    END_PUBLICITY = "end_publicity"
    WITHDRAW = "withdraw"


S = ListState
E = ListEvent
P = Permission
ListTransition = Transition[ListState, ListEvent, object]

TRANSITIONS: tuple[ListTransition, ...] = (
    Transition(
        E.PUBLISH,
        (S.DRAFT,),
        S.PUBLISHED,
        P.REVIEW_CASE,
        "发布公示",
        guards=("has_cases", "period_in_calendar"),
        effects=("fix_period",),
    ),
    Transition(
        E.OBJECT,
        (S.PUBLISHED,),
        S.PUBLISHED,
        P.REVIEW_CASE,
        "登记异议",
        opinion_required=True,
        effects=("note_objection",),
        data_keys=("objection", "case"),
    ),
    Transition(
        E.RESOLVE_OBJECTION,
        (S.PUBLISHED,),
        S.PUBLISHED,
        P.REVIEW_CASE,
        "异议处理",
        opinion_required=True,
        effects=("note_objection",),
        data_keys=("objection", "case", "outcome"),
    ),
    Transition(
        E.END_PUBLICITY,
        (S.PUBLISHED,),
        S.ENDED,
        P.RUN_SCHEDULE,
        "公示期满",
        guards=("no_open_objection", "period_over"),
    ),
    Transition(
        E.WITHDRAW,
        (S.DRAFT, S.PUBLISHED),
        S.WITHDRAWN,
        P.REVIEW_CASE,
        "撤回名单",
        guards=("no_open_objection",),
        opinion_required=True,
    ),
)

MACHINE: Machine[ListState, ListEvent, object] = Machine(
    name="publicity_list",
    label="公示名单状态机",
    states=(
        State(S.DRAFT, "草拟"),
        State(S.PUBLISHED, "公示中"),
        State(S.ENDED, "公示期满", Kind.TERMINAL),
        State(S.WITHDRAWN, "已撤回", Kind.ENDED_WITHOUT_AID),
    ),
    events=ListEvent,
    transitions=TRANSITIONS,
    initial=S.DRAFT,
)
