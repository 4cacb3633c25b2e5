"""What a case's transition changes besides its state, by name (the lifecycle table names them).

Effects are pure: each reads the case's facts (and the opinion) and returns an `Outcome` — the
columns of the case row to change, what the audit entry should say, and side records for money
(`Reserve`, `Pay`), which the case noun writes with conditional UPDATEs so that concurrent
approvals never overdraw (`workflow.cases.funds`). They run only after every guard passed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache

from jinqiu.states import CaseEvent
from jinqiu.workflow.calendar import WorkingCalendar
from jinqiu.workflow.cases.aid import AidDecision
from jinqiu.workflow.cases.facts import GuardContext
from jinqiu.workflow.engine import Effect, Outcome
from jinqiu.workflow.money import format_yuan


@dataclass(frozen=True, slots=True)
class Reserve:
    """Reserve `amount_fen` from the campaign's fund sources in order (or only `source`)."""

    amount_fen: int
    source: str | None


@dataclass(frozen=True, slots=True)
class Pay:
    """The reservation of `amount_fen` on fund `fund_id` becomes a payment."""

    fund_id: int
    amount_fen: int


@dataclass(frozen=True, slots=True)
class Release:
    """The reservation of `amount_fen` on fund `fund_id` goes back to the fund's free money."""

    fund_id: int
    amount_fen: int


@lru_cache(maxsize=4096)
def publicity_ends(calendar: WorkingCalendar, start: dt.date, working_days: int) -> dt.date:
    """Memoised: the calendar is immutable and every case verified on a day ends on the same day
    (walking the official calendar day by day is the costly part of a `verify`)."""
    return calendar.add_working_days(start, working_days)


def start_publicity(ctx: GuardContext, opinion: str | None) -> Outcome:
    """公示: the period of the list that publishes the case (`data`: its id and dates, the same
    for every case of a list, so one bulk decides them all); without a list (test factories),
    the campaign's number of working days from today."""
    campaign, today = ctx.campaign, ctx.today
    if "ends_on" in ctx.data:
        starts = dt.date.fromisoformat(str(ctx.data["starts_on"]))
        ends = dt.date.fromisoformat(str(ctx.data["ends_on"]))
    else:
        starts = today
        ends = publicity_ends(campaign.calendar, today, campaign.publicity_working_days)
    audit: dict[str, object] = {"publicity_ends_on": ends.isoformat()}
    if campaign.publicity_working_days == 0 and "ends_on" not in ctx.data:
        audit["publicity_working_days"] = 0  # the notice asks for none: over at once
    if "publicity_list" in ctx.data:
        audit["publicity_list"] = ctx.data["publicity_list"]
    return Outcome(
        changes={
            "publicity_started_on": starts,
            "publicity_ends_on": ends,
            "objection_open": False,
        },
        audit=audit,
    )


def clear_publicity(ctx: GuardContext, opinion: str | None) -> Outcome:
    """The list was withdrawn: the case waits for another one, with no period of its own."""
    audit = {"publicity_list": ctx.data["publicity_list"]} if "publicity_list" in ctx.data else {}
    return Outcome(changes={"publicity_started_on": None, "publicity_ends_on": None}, audit=audit)


def _objection_notes(ctx: GuardContext) -> dict[str, object]:
    return {k: ctx.data[k] for k in ("objection", "outcome") if k in ctx.data}


def open_objection(ctx: GuardContext, opinion: str | None) -> Outcome:
    return Outcome(changes={"objection_open": True}, audit=_objection_notes(ctx))


def close_objection(ctx: GuardContext, opinion: str | None) -> Outcome:
    return Outcome(changes={"objection_open": False}, audit=_objection_notes(ctx))


def _wait_at_next_level(ctx: GuardContext, approved: int | None) -> Outcome:
    """Moves the case on to the next campaign level that exists on its unit path (past the
    end after the last one) and writes the levels skipped on the way into the audit entry."""
    case, levels = ctx.case, ctx.campaign.approval_levels
    start = case.approval_step if approved is None else approved + 1
    following = len(levels)
    for i in case.approval_chain:  # (a loop, not next(…): a bulk asks it ten thousand times)
        if i >= start:
            following = i
            break
    audit: dict[str, object] = {} if approved is None else {"approval_level": levels[approved]}
    if following - case.approval_step > (approved is not None):  # some level passed over
        audit["skipped_levels"] = [
            levels[i] for i in range(case.approval_step, following) if i != approved
        ]
    return Outcome(changes={"approval_step": following}, audit=audit)


def enter_approval(ctx: GuardContext, opinion: str | None) -> Outcome:
    """Publicity over: the case waits at the first of the campaign's levels on its path."""
    return _wait_at_next_level(ctx, None)


def advance_approval_level(ctx: GuardContext, opinion: str | None) -> Outcome:
    step = ctx.case.pending_step()
    # The engine refused by role already when no level on the path acts (refusal_by_role).
    assert step is not None, "a level-bound transition fired with no level to act at"
    outcome = _wait_at_next_level(ctx, step)
    if not opinion or not ctx.campaign.opinions:
        return outcome
    # The notice's name for this level's opinion (Dalian: 审查意见 / 审核意见 / 审批意见),
    # kept with the entry so the history shows it as the form did.
    asked = ctx.campaign.opinion_at(CaseEvent.APPROVE, ctx.campaign.approval_levels[step])
    if asked is None:
        return outcome
    return Outcome(changes=outcome.changes, audit={**outcome.audit, "opinion_label": asked[0]})


def reserve_aid(ctx: GuardContext, opinion: str | None) -> Outcome:
    """The final approval reserves the amount (decided by the campaign's rules) from a fund
    source: the case noun writes the reservation and says which source paid."""
    decision = ctx.aid
    # The transition's guard `aid_rule_applies` refused already when no rule gives an amount.
    assert isinstance(decision, AidDecision), "aid_rule_applies runs before reserve_aid"
    source = ctx.data.get("fund_source")
    audit: dict[str, object] = {}
    if decision.set_by_approver:  # the amount is the approver's, within the rule (opinion: why)
        audit["amount_set_by_approver"] = True
    if decision.uplift_fen:  # 可适当提高
        audit["uplift"] = format_yuan(decision.uplift_fen)
    return Outcome(
        audit=audit,
        records=(Reserve(decision.amount_fen, None if source is None else str(source)),),
    )


def record_payment(ctx: GuardContext, opinion: str | None) -> Outcome:
    """发放 by bank card: the reservation becomes a payment."""
    case = ctx.case
    # The transition's guard `aid_reserved` refused already when nothing was reserved.
    assert case.fund_source_id is not None and case.approved_amount_fen is not None
    audit: dict[str, object] = {"amount": format_yuan(case.approved_amount_fen)}
    if "payment_reference" in ctx.data:
        audit["payment_reference"] = str(ctx.data["payment_reference"])
    if case.payment_batch_id is not None:
        audit["payment_batch"] = case.payment_batch_id
    return Outcome(
        changes={"paid_on": ctx.today, "payment_batch_id": None},
        audit=audit,
        records=(Pay(case.fund_source_id, case.approved_amount_fen),),
    )


def record_payment_failure(ctx: GuardContext, opinion: str | None) -> Outcome:
    """退票: the case stays payable, out of the batch that failed it (a retry batch takes it)."""
    audit: dict[str, object] = {}
    if ctx.case.payment_batch_id is not None:
        audit["payment_batch"] = ctx.case.payment_batch_id
    return Outcome(
        changes={"payment_failures": ctx.case.payment_failures + 1, "payment_batch_id": None},
        audit=audit,
    )


def release_reservation(ctx: GuardContext, opinion: str | None) -> Outcome:
    """取消发放: the reserved amount goes back to its fund."""
    case = ctx.case
    # Only disbursement cases are cancelled, and every one of them holds a reservation.
    assert case.fund_source_id is not None and case.approved_amount_fen is not None
    return Outcome(
        audit={"released": format_yuan(case.approved_amount_fen)},
        records=(Release(case.fund_source_id, case.approved_amount_fen),),
    )


def keep_return_reason(ctx: GuardContext, opinion: str | None) -> Outcome:
    """补正: back to survey with the reason kept; the approvals start over when resubmitted."""
    return Outcome(
        changes={
            "return_reason": opinion,
            "approval_step": 0,
            "objection_open": False,
            "publicity_started_on": None,
            "publicity_ends_on": None,
        }
    )


def note_visits_at_campaign_end(ctx: GuardContext, opinion: str | None) -> Outcome:
    """活动结束办结: the trail keeps the day the campaign ended and the visits made by then, so
    a case closed unvisited is never mistaken for one whose follow-up was done."""
    closes_on = ctx.campaign.follow_up_closes_on
    return Outcome(
        audit={
            "campaign_ended_on": None if closes_on is None else closes_on.isoformat(),
            "visits": ctx.case.follow_up_visits,
            "visits_required": ctx.campaign.visits_required,
        }
    )


EFFECTS: dict[str, Effect[GuardContext]] = {
    "start_publicity": start_publicity,
    "clear_publicity": clear_publicity,
    "open_objection": open_objection,
    "close_objection": close_objection,
    "enter_approval": enter_approval,
    "advance_approval_level": advance_approval_level,
    "reserve_aid": reserve_aid,
    "record_payment": record_payment,
    "record_payment_failure": record_payment_failure,
    "release_reservation": release_reservation,
    "keep_return_reason": keep_return_reason,
    "note_visits_at_campaign_end": note_visits_at_campaign_end,
}
