"""Guards by name: the lifecycle table (states/) names them, this registry finds them.

Each guard is a pure function of a `GuardContext` returning the reasons it refuses
(an empty list lets the transition through). All guards of a transition run, so a refusal
lists every reason at once.
"""

from __future__ import annotations

from collections.abc import Callable

from jinqiu.states import TRANSITIONS
from jinqiu.workflow.cases.facts import GuardContext
from jinqiu.workflow.cases.guards.aid_amount import (
    aid_amount_decided,
    aid_reserved,
    aid_rule_applies,
    amount_only_at_last_level,
)
from jinqiu.workflow.cases.guards.documents import application_complete
from jinqiu.workflow.cases.guards.donor import donor_intent_matches
from jinqiu.workflow.cases.guards.double_aid import not_already_aided
from jinqiu.workflow.cases.guards.eligibility import worker_is_eligible
from jinqiu.workflow.cases.guards.follow_up import campaign_ended, follow_up_visits_done
from jinqiu.workflow.cases.guards.identity import identity_numbers_valid
from jinqiu.workflow.cases.guards.payment_batch import not_in_open_batch, paid_through_its_batch
from jinqiu.workflow.cases.guards.phase_window import within_survey_window
from jinqiu.workflow.cases.guards.publicity import (
    no_open_objection,
    objection_is_open,
    publicity_period_over,
)
from jinqiu.workflow.errors import Reason

Guard = Callable[[GuardContext], list[Reason]]

GUARDS: dict[str, Guard] = {
    "identity_numbers_valid": identity_numbers_valid,
    "worker_is_eligible": worker_is_eligible,
    "application_complete": application_complete,
    "not_already_aided": not_already_aided,
    "within_survey_window": within_survey_window,
    "aid_rule_applies": aid_rule_applies,
    "aid_amount_decided": aid_amount_decided,
    "amount_only_at_last_level": amount_only_at_last_level,
    "aid_reserved": aid_reserved,
    "donor_intent_matches": donor_intent_matches,
    "paid_through_its_batch": paid_through_its_batch,
    "not_in_open_batch": not_in_open_batch,
    "no_open_objection": no_open_objection,
    "objection_is_open": objection_is_open,
    "publicity_period_over": publicity_period_over,
    "follow_up_visits_done": follow_up_visits_done,
    "campaign_ended": campaign_ended,
}

_missing = {g for t in TRANSITIONS for g in t.guards} - GUARDS.keys()
if _missing:  # a typo in the lifecycle table fails at import, not when the event fires
    raise ImportError(f"guards named in states/ but not implemented: {sorted(_missing)}")


def run_guards(names: tuple[str, ...], ctx: GuardContext, *, skip: frozenset[str]) -> list[Reason]:
    reasons: list[Reason] = []
    for name in names:
        if name not in skip:
            reasons.extend(GUARDS[name](ctx))
    return reasons
