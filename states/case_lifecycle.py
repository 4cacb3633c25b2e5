"""The life of one aid application (a case), as data.

    survey → archive_check → publicity → approval (one step per approval level)
           → disbursement → follow_up → closed
    plus `return` (补正: back to survey, reason kept), `reject` and `withdraw`.

This module is pure: no database, no HTTP. The table below is the single source of
truth; one `transitions.Machine` is built from it once at import (never one per case),
and the engine reads its compiled table. Guards are named here and implemented in
`workflow.guards` (one function per name, each returning the reasons it refuses).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from transitions import Machine


class CaseState(StrEnum):
    SURVEY = "survey"  # 摸底 / 申报
    ARCHIVE_CHECK = "archive_check"  # 档案核查
    PUBLICITY = "publicity"  # 公示
    APPROVAL = "approval"  # 审查 / 审核 / 审批, one step per level
    DISBURSEMENT = "disbursement"  # 发放
    FOLLOW_UP = "follow_up"  # 回访
    CLOSED = "closed"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"


class CaseEvent(StrEnum):
    SUBMIT = "submit"
    VERIFY = "verify"
    RETURN = "return"
    REJECT = "reject"
    WITHDRAW = "withdraw"
    OBJECT = "object"
    RESOLVE_OBJECTION = "resolve_objection"
    END_PUBLICITY = "end_publicity"
    APPROVE = "approve"
    PAY = "pay"
    PAYMENT_FAILED = "payment_failed"
    CLOSE = "close"


class Permission(StrEnum):
    """What a role must hold to fire an event (the role → permission table lives in workflow.roles)."""

    SUBMIT_CASE = "case.submit"
    WITHDRAW_CASE = "case.withdraw"
    REVIEW_CASE = "case.review"  # verify, return, reject, objections
    APPROVE_CASE = "case.approve"
    PAY_CASE = "case.pay"
    FOLLOW_UP_CASE = "case.follow_up"
    RUN_SCHEDULE = "schedule.run"


STATE_NAMES: dict[CaseState, str] = {
    CaseState.SURVEY: "摸底申报", CaseState.ARCHIVE_CHECK: "档案核查", CaseState.PUBLICITY: "公示",
    CaseState.APPROVAL: "审批", CaseState.DISBURSEMENT: "发放", CaseState.FOLLOW_UP: "回访",
    CaseState.CLOSED: "办结", CaseState.REJECTED: "不予资助", CaseState.WITHDRAWN: "撤回",
}

TERMINAL_STATES: frozenset[CaseState] = frozenset(
    {CaseState.CLOSED, CaseState.REJECTED, CaseState.WITHDRAWN}
)
# Cases that ended without aid; any other case (closed ones too) counts as the student's
# one application in a campaign.
ENDED_WITHOUT_AID: frozenset[CaseState] = frozenset({CaseState.REJECTED, CaseState.WITHDRAWN})
OPEN_STATES: tuple[CaseState, ...] = tuple(s for s in CaseState if s not in TERMINAL_STATES)


class Route(StrEnum):
    """Conditions that pick between two transitions of the same event (not refusals)."""

    MORE_APPROVAL_LEVELS = "more_approval_levels"
    LAST_APPROVAL_LEVEL = "last_approval_level"


@dataclass(frozen=True, slots=True)
class Transition:
    event: CaseEvent
    sources: tuple[CaseState, ...]
    dest: CaseState
    permission: Permission
    guards: tuple[str, ...] = ()  # names in workflow.guards.GUARDS, all run, all reasons kept
    route: Route | None = None
    opinion_required: bool = False  # returning or rejecting must say why
    overridable: tuple[str, ...] = ()  # guards a manager may override, with a reason (audited)
    effects: tuple[str, ...] = ()  # names in workflow.effects.EFFECTS, run after the guards pass


S = CaseState
E = CaseEvent
P = Permission
_REVIEWABLE = (S.ARCHIVE_CHECK, S.PUBLICITY, S.APPROVAL)

TRANSITIONS: tuple[Transition, ...] = (
    Transition(
        E.SUBMIT,
        (S.SURVEY,),
        S.ARCHIVE_CHECK,
        P.SUBMIT_CASE,
        guards=(
            "identity_numbers_valid",
            "worker_is_eligible",
            "not_already_aided",
            "within_survey_window",
        ),
        overridable=("not_already_aided", "within_survey_window"),
    ),
    Transition(
        E.VERIFY,
        (S.ARCHIVE_CHECK,),
        S.PUBLICITY,
        P.REVIEW_CASE,
        guards=("identity_numbers_valid", "worker_is_eligible", "aid_rule_applies"),
        effects=("start_publicity",),
    ),
    Transition(
        E.OBJECT,
        (S.PUBLICITY,),
        S.PUBLICITY,
        P.REVIEW_CASE,
        opinion_required=True,
        effects=("open_objection",),
    ),
    Transition(
        E.RESOLVE_OBJECTION,
        (S.PUBLICITY,),
        S.PUBLICITY,
        P.REVIEW_CASE,
        guards=("objection_is_open",),
        opinion_required=True,
        effects=("close_objection",),
    ),
    Transition(
        E.END_PUBLICITY,
        (S.PUBLICITY,),
        S.APPROVAL,
        P.RUN_SCHEDULE,
        guards=("no_open_objection", "publicity_period_over"),
        effects=("enter_approval",),  # the first approval level on the case's own unit path
    ),
    Transition(
        E.APPROVE,
        (S.APPROVAL,),
        S.APPROVAL,
        P.APPROVE_CASE,
        route=Route.MORE_APPROVAL_LEVELS,
        effects=("advance_approval_level",),
    ),
    Transition(
        E.APPROVE,
        (S.APPROVAL,),
        S.DISBURSEMENT,
        P.APPROVE_CASE,
        guards=("aid_rule_applies",),
        route=Route.LAST_APPROVAL_LEVEL,
        effects=("advance_approval_level", "reserve_aid"),  # reserve fails: insufficient_funds
    ),
    Transition(E.PAY, (S.DISBURSEMENT,), S.FOLLOW_UP, P.PAY_CASE, effects=("record_payment",)),
    Transition(
        E.PAYMENT_FAILED,
        (S.DISBURSEMENT,),
        S.DISBURSEMENT,
        P.PAY_CASE,
        opinion_required=True,
        effects=("record_payment_failure",),
    ),
    Transition(E.CLOSE, (S.FOLLOW_UP,), S.CLOSED, P.FOLLOW_UP_CASE),
    Transition(
        E.RETURN,
        _REVIEWABLE,
        S.SURVEY,
        P.REVIEW_CASE,
        opinion_required=True,
        effects=("keep_return_reason",),
    ),
    Transition(E.REJECT, _REVIEWABLE, S.REJECTED, P.REVIEW_CASE, opinion_required=True),
    Transition(E.WITHDRAW, (S.SURVEY, *_REVIEWABLE), S.WITHDRAWN, P.WITHDRAW_CASE),
)


def build_machine() -> Machine:
    """The lifecycle as a `transitions` machine: the diagram and the compiled table come from it.

    Built with `auto_transitions=False` (no implicit `to_<state>` events) and no model:
    cases are rows, and the engine never attaches one model per case.
    """
    return Machine(
        model=None,
        states=[s.value for s in CaseState],
        initial=CaseState.SURVEY.value,
        transitions=[_as_machine_dict(t) for t in TRANSITIONS],
        auto_transitions=False,
    )


def _as_machine_dict(t: Transition) -> dict[str, object]:
    spec: dict[str, object] = {
        "trigger": t.event.value,
        "source": [s.value for s in t.sources],
        "dest": t.dest.value,
    }
    if t.route is not None:
        spec["conditions"] = [t.route.value]
    return spec


MACHINE: Machine = build_machine()


def _compile(machine: Machine) -> dict[tuple[CaseState, CaseEvent], tuple[Transition, ...]]:
    """(state, event) → candidate transitions, read from the machine once at start-up."""
    by_key = {(t.event, s, t.dest, t.route): t for t in TRANSITIONS for s in t.sources}
    table: dict[tuple[CaseState, CaseEvent], list[Transition]] = {}
    for name, event in machine.events.items():
        for source, candidates in event.transitions.items():
            for candidate in candidates:
                routes = [str(c.func) for c in candidate.conditions]
                route = Route(routes[0]) if routes else None
                key = (CaseEvent(name), CaseState(source), CaseState(str(candidate.dest)), route)
                table.setdefault((CaseState(source), CaseEvent(name)), []).append(by_key[key])
    return {k: tuple(v) for k, v in table.items()}


TABLE: dict[tuple[CaseState, CaseEvent], tuple[Transition, ...]] = _compile(MACHINE)


def events_from(state: CaseState) -> list[CaseEvent]:
    """Events the lifecycle allows from a state, in declaration order (before roles and guards)."""
    return [e for e in CaseEvent if (state, e) in TABLE]


def select_transition(
    state: CaseState, event: CaseEvent, *, approval_step: int, approval_levels: int
) -> Transition | None:
    """The transition `event` takes from `state`, or None when the lifecycle does not allow it.

    `approval_step` counts levels already approved (0-based); with three levels the third
    `approve` is the last one and moves the case on to disbursement.
    """
    candidates = TABLE.get((state, event))
    if not candidates:
        return None
    last_level = approval_step + 1 >= approval_levels
    for t in candidates:
        if t.route is None:
            return t
        if (t.route is Route.LAST_APPROVAL_LEVEL) == last_level:
            return t
    return None


def transitions_for(event: CaseEvent) -> Iterable[Transition]:
    return (t for t in TRANSITIONS if t.event is event)


def to_mermaid() -> str:
    """The machine as a Mermaid state diagram, drawn from the same table."""
    lines = ["stateDiagram-v2", f"    [*] --> {CaseState.SURVEY.value}"]
    for t in TRANSITIONS:
        label = t.event.value
        if t.route is not None:
            label += f" [{t.route.value}]"
        if t.guards:
            label += " / " + ", ".join(t.guards)
        if t.effects:
            label += " → " + ", ".join(t.effects)
        for s in t.sources:
            lines.append(f"    {s.value} --> {t.dest.value}: {label}")
    for s in sorted(TERMINAL_STATES):
        lines.append(f"    {s.value} --> [*]")
    return "\n".join(lines) + "\n"
