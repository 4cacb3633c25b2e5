"""The life of one aid application (a case), as data.

    survey → archive_check → ready_for_publicity → publicity → approval (one step per
           approval level) → disbursement → follow_up → closed
    plus `return` (补正: back to survey, reason kept), `reject` and `withdraw`.

A verified case waits in ready_for_publicity (待公示) until a publicity list (公示名单,
states/publicity_list.py) that names it is published: the list fires `publish` on its cases
(their period is the list's), `unlist` when it is withdrawn, and `end_publicity` when it ends.
Those three are the system's (`schedule.run`), never a person's on one case.

This module is pure: no database, no HTTP. The declaration below is the single source of
truth (states/machine.py says what a declaration holds and what `transitions` does with it).
Guards and effects are named here and implemented in `workflow.cases.guards` and
`workflow.cases.effects` (one function per name).

Adding a state: declare it here (label, kind) with its transitions; add a migration only if it
stores new data, its guards and effects in workflow/, and tests. Pages, queues, the sweep, the
demo, statistics, the diagrams and the factories read it from here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from jinqiu.states.machine import Kind, Machine, State, Transition


class CaseState(StrEnum):
    SURVEY = "survey"  # 摸底 / 申报
    ARCHIVE_CHECK = "archive_check"  # 档案核查
    READY_FOR_PUBLICITY = "ready_for_publicity"  # 待公示: verified, waiting for a list
    PUBLICITY = "publicity"  # 公示
    APPROVAL = "approval"  # 审查 / 审核 / 审批, one step per level
    DISBURSEMENT = "disbursement"  # 发放
    FOLLOW_UP = "follow_up"  # 回访
    CLOSED = "closed"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"
    CANCELLED = "cancelled"  # approved, but cannot be paid: its reservation released


class CaseEvent(StrEnum):
    SUBMIT = "submit"
    VERIFY = "verify"
    RETURN = "return"
    REJECT = "reject"
    WITHDRAW = "withdraw"
    PUBLISH = "publish"
    UNLIST = "unlist"
    OBJECT = "object"
    RESOLVE_OBJECTION = "resolve_objection"
    END_PUBLICITY = "end_publicity"
    APPROVE = "approve"
    PAY = "pay"
    PAYMENT_FAILED = "payment_failed"
    CANCEL = "cancel"
    CLOSE = "close"
    END_FOLLOW_UP = "end_follow_up"


class Permission(StrEnum):
    """What a role must hold to fire an event (the role → permission table lives in workflow.roles)."""

    SUBMIT_CASE = "case.submit"
    WITHDRAW_CASE = "case.withdraw"
    REVIEW_CASE = "case.review"  # verify, return, reject, objections
    APPROVE_CASE = "case.approve"
    PAY_CASE = "case.pay"
    FOLLOW_UP_CASE = "case.follow_up"
    RUN_SCHEDULE = "schedule.run"  # the system's: the sweep, and a publicity list for its cases
    # 阳光就业 and 勤工俭学: an employment record's events and help, work-study posts
    RECORD_EMPLOYMENT = "employment.record"


@dataclass(frozen=True, slots=True)
class ApprovalProgress:
    """What the approval routes read: levels approved so far (0-based) on the case's chain of
    levels, and how many levels that chain has."""

    step: int
    levels: int


def more_approval_levels(progress: ApprovalProgress) -> bool:
    return progress.step + 1 < progress.levels


def last_approval_level(progress: ApprovalProgress) -> bool:
    return progress.step + 1 >= progress.levels


S = CaseState
E = CaseEvent
P = Permission
CaseTransition = Transition[CaseState, CaseEvent, ApprovalProgress]
_REVIEWABLE = (S.ARCHIVE_CHECK, S.READY_FOR_PUBLICITY, S.PUBLICITY, S.APPROVAL)

STATES: tuple[State[CaseState], ...] = (
    State(S.SURVEY, "摸底申报"),
    State(S.ARCHIVE_CHECK, "档案核查"),
    State(S.READY_FOR_PUBLICITY, "待公示"),
    State(S.PUBLICITY, "公示"),
    State(S.APPROVAL, "审批", levels=True),
    State(S.DISBURSEMENT, "发放"),
    State(S.FOLLOW_UP, "回访"),
    State(S.CLOSED, "办结", Kind.TERMINAL),
    State(S.REJECTED, "不予资助", Kind.ENDED_WITHOUT_AID),
    State(S.WITHDRAWN, "撤回", Kind.ENDED_WITHOUT_AID),
    State(S.CANCELLED, "取消发放", Kind.ENDED_WITHOUT_AID),
)

TRANSITIONS: tuple[CaseTransition, ...] = (
    Transition(
        E.SUBMIT,
        (S.SURVEY,),
        S.ARCHIVE_CHECK,
        P.SUBMIT_CASE,
        "提交",
        guards=(
            "identity_numbers_valid",
            "worker_is_eligible",
            "not_already_aided",
            "within_survey_window",
            "application_complete",
        ),
        overridable=("not_already_aided", "within_survey_window"),
        bulk=True,
    ),
    Transition(
        E.VERIFY,
        (S.ARCHIVE_CHECK,),
        S.READY_FOR_PUBLICITY,
        P.REVIEW_CASE,
        "核查通过",
        guards=("identity_numbers_valid", "worker_is_eligible", "aid_rule_applies"),
        bulk=True,
    ),
    # Fired by a publicity list on all its cases at once (its period in `data`); without
    # `data` (test factories) the campaign's default period from today.
    Transition(
        E.PUBLISH,
        (S.READY_FOR_PUBLICITY,),
        S.PUBLICITY,
        P.RUN_SCHEDULE,
        "公示",
        effects=("start_publicity",),
        data_keys=("publicity_list", "starts_on", "ends_on"),
    ),
    # A published list withdrawn: its cases wait for another list.
    Transition(
        E.UNLIST,
        (S.PUBLICITY,),
        S.READY_FOR_PUBLICITY,
        P.RUN_SCHEDULE,
        "撤回公示",
        guards=("no_open_objection",),
        effects=("clear_publicity",),
        data_keys=("publicity_list",),
    ),
    Transition(
        E.OBJECT,
        (S.PUBLICITY,),
        S.PUBLICITY,
        P.REVIEW_CASE,
        "登记异议",
        opinion_required=True,
        effects=("open_objection",),
        data_keys=("objection",),
    ),
    Transition(
        E.RESOLVE_OBJECTION,
        (S.PUBLICITY,),
        S.PUBLICITY,
        P.REVIEW_CASE,
        "异议处理",
        guards=("objection_is_open",),
        opinion_required=True,
        effects=("close_objection",),
        data_keys=("objection", "outcome"),
    ),
    Transition(
        E.END_PUBLICITY,
        (S.PUBLICITY,),
        S.APPROVAL,
        P.RUN_SCHEDULE,
        "公示期满",
        guards=("no_open_objection", "publicity_period_over"),
        effects=("enter_approval",),  # the first approval level on the case's own unit path
    ),
    Transition(
        E.APPROVE,
        (S.APPROVAL,),
        S.APPROVAL,
        P.APPROVE_CASE,
        "审批通过",
        guards=("amount_only_at_last_level",),
        route=more_approval_levels,
        effects=("advance_approval_level",),
        # accepted at every level, used at the last (an amount before it is refused)
        data_keys=("fund_source", "amount"),
        bulk=True,
    ),
    Transition(
        E.APPROVE,
        (S.APPROVAL,),
        S.DISBURSEMENT,
        P.APPROVE_CASE,
        "审批通过",
        # the amount: the rule's, or the approver's (data.amount) within a range or cap; a donor
        # fund chosen (data.fund_source "donor:<id>") pays only what its donor meant
        guards=("aid_amount_decided", "donor_intent_matches"),
        route=last_approval_level,
        effects=("advance_approval_level", "reserve_aid"),  # reserve fails: insufficient_funds
        data_keys=("fund_source", "amount"),
        bulk=True,
    ),
    Transition(
        E.PAY,
        (S.DISBURSEMENT,),
        S.FOLLOW_UP,
        P.PAY_CASE,
        "发放",
        guards=("aid_reserved", "paid_through_its_batch"),
        effects=("record_payment",),
        data_keys=("payment_reference", "payment_batch"),
        bulk=True,
    ),
    Transition(
        E.PAYMENT_FAILED,
        (S.DISBURSEMENT,),
        S.DISBURSEMENT,
        P.PAY_CASE,
        "发放失败",
        guards=("paid_through_its_batch",),
        opinion_required=True,
        effects=("record_payment_failure",),
        data_keys=("payment_batch",),
        notifies=("case_payment_failed",),
    ),
    # A case that cannot be paid (the family cannot be reached, the student left school …):
    # its reservation goes back to the fund. Not while a bank file holding it is out.
    Transition(
        E.CANCEL,
        (S.DISBURSEMENT,),
        S.CANCELLED,
        P.PAY_CASE,
        "取消发放",
        guards=("not_in_open_batch",),
        opinion_required=True,
        effects=("release_reservation",),
    ),
    # Closed by the visit that meets the campaign's follow-up rule (workflow/followup/), or by
    # hand; a manager may close short of the visits with a reason (the family cannot be found).
    Transition(
        E.CLOSE,
        (S.FOLLOW_UP,),
        S.CLOSED,
        P.FOLLOW_UP_CASE,
        "回访办结",
        guards=("follow_up_visits_done",),
        overridable=("follow_up_visits_done",),
    ),
    # The campaign is over (the day after its `follow_up.closes_on`): the sweep closes every case
    # still in follow-up, as the system, its trail noting the visits recorded. A distinct event,
    # not a second route of `close`: `close` is a person's (case.follow_up) after the visits or
    # a manager's override, this one is the scheduler's by date and nobody else's; a route is
    # chosen on approval progress, not on the calendar; and the trail and the statistics can
    # tell "closed after its visits" from "closed because the campaign ended". Declared after
    # `close`, so a new case's shortest history to `closed` stays the visited one.
    Transition(
        E.END_FOLLOW_UP,
        (S.FOLLOW_UP,),
        S.CLOSED,
        P.RUN_SCHEDULE,
        "活动结束办结",
        guards=("campaign_ended",),
        effects=("note_visits_at_campaign_end",),
    ),
    Transition(
        E.RETURN,
        _REVIEWABLE,
        S.SURVEY,
        P.REVIEW_CASE,
        "退回补正",
        opinion_required=True,
        effects=("keep_return_reason",),
        notifies=("case_returned",),
        bulk=True,
    ),
    Transition(
        E.REJECT,
        _REVIEWABLE,
        S.REJECTED,
        P.REVIEW_CASE,
        "不予资助",
        opinion_required=True,
        notifies=("case_rejected",),
    ),
    # The applicant may withdraw whatever level the approval waits at.
    Transition(
        E.WITHDRAW, (S.SURVEY, *_REVIEWABLE), S.WITHDRAWN, P.WITHDRAW_CASE, "撤回", any_level=True
    ),
)

MACHINE: Machine[CaseState, CaseEvent, ApprovalProgress] = Machine(
    name="case",
    label="案件状态机",
    states=STATES,
    events=CaseEvent,
    transitions=TRANSITIONS,
    initial=S.SURVEY,
)

# The declaration's answers under the names the service has always imported.
STATE_NAMES: Mapping[CaseState, str] = MACHINE.state_labels
TERMINAL_STATES: frozenset[CaseState] = MACHINE.terminal_states
# Cases that ended without aid; any other case (closed ones too) counts as the student's
# one application in a campaign.
ENDED_WITHOUT_AID: frozenset[CaseState] = MACHINE.ended_without_aid
OPEN_STATES: tuple[CaseState, ...] = MACHINE.open_states


def events_from(state: CaseState) -> list[CaseEvent]:
    """Events the lifecycle allows from a state, in declaration order (before roles and guards)."""
    return MACHINE.events_from(state)


def select_transition(
    state: CaseState, event: CaseEvent, *, approval_step: int, approval_levels: int
) -> CaseTransition | None:
    """The transition `event` takes from `state`, or None when the lifecycle does not allow it.

    `approval_step` counts levels already approved (0-based); with three levels the third
    `approve` is the last one and moves the case on to disbursement.
    """
    return MACHINE.select(state, event, ApprovalProgress(approval_step, approval_levels))


def history_to(state: CaseState, *, levels: int, approved: int = 0) -> list[CaseTransition]:
    """The transitions a new case takes to reach `state` on the shortest way, the approval
    routes applied along a chain of `levels` levels: reaching disbursement with three levels is
    two approvals that stay in approval, then the last one. A case left waiting in approval has
    `approved` levels behind it. For factories and benchmarks that create cases in a state."""
    history: list[CaseTransition] = []
    at, step = MACHINE.initial, 0

    def fire(event: CaseEvent) -> CaseTransition:
        nonlocal at, step
        t = MACHINE.select(at, event, ApprovalProgress(step, levels))
        if t is None:
            raise ValueError(f"{event} is not possible from {at} with {levels} levels")
        history.append(t)
        if MACHINE.level_bound(t, at) and MACHINE.forward(t, at):  # one level approved
            step += 1
        at = t.dest
        return t

    for planned in MACHINE.path_to(state):
        while fire(planned.event).dest != planned.dest:  # the levels before the last
            pass
    for _ in range(approved):
        (loop,) = {t.event for t in MACHINE.work(state) if t.dest == state}
        fire(loop)
    if at != state:
        raise ValueError(f"{approved} approvals of {levels} leave the case in {at}, not {state}")
    return history


def to_mermaid() -> str:
    """The machine as a Mermaid state diagram, drawn by `transitions` from the machine."""
    return MACHINE.to_mermaid()
