"""What guards and effects may read: plain read-only snapshots, no database handles."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import field
from functools import cached_property
from typing import Any

from jinqiu.states import CaseState
from jinqiu.workflow.campaigns.rules import CampaignRules
from jinqiu.workflow.campaigns.schema import AidRule
from jinqiu.workflow.cases.aid import (
    ARCHIVE_STATUSES,
    AidDecision,
    Applicant,
    amount_under,
    approver_amount,
    rule_for,
)
from jinqiu.workflow.donors.intent import Intent
from jinqiu.workflow.errors import Reason
from jinqiu.workflow.readonly import readonly


@readonly()
class WorkerFacts:
    id_number: str
    archive_status: str
    archived_on: dt.date | None
    categories: tuple[str, ...]


@readonly()
class StudentFacts:
    id_number: str
    education_level: str
    tier: str | None
    tuition_invoice_fen: int | None
    already_aided_by: str | None
    enrollment_year: int | None = None  # 入学年份: 当年考入 when it is the campaign's year


@readonly()
class CaseFacts:
    id: int
    state: CaseState
    version: int
    approval_step: int
    objection_open: bool
    publicity_ends_on: dt.date | None
    approved_amount_fen: int | None
    fund_source_id: int | None
    payment_failures: int
    unit_path: str
    payment_batch_id: int | None = None  # the batch whose bank file holds the case
    follow_up_visits: int = 0  # visits recorded in follow-up (回访)
    # Indices into the campaign's approval levels that exist on this case's unit path (市直
    # unions have no district): loaded in publicity and approval, the states where it matters.
    approval_chain: tuple[int, ...] = ()
    # The campaign's application type, the answers on its form, and the kinds of document
    # attached (loaded in the survey only, where submit asks for them).
    application_type: str | None = None
    form: Mapping[str, Any] = field(default_factory=dict)
    attached_kinds: frozenset[str] = frozenset()
    # The campaign level this case waits at: the first of its chain not yet passed (asked by
    # the selection, the role check and the effect of every approval: worked out once).
    _pending: int | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        pending = None
        for i in self.approval_chain:  # (a loop: ten thousand of these in a bulk read)
            if i >= self.approval_step:
                pending = i
                break
        object.__setattr__(self, "_pending", pending)

    def pending_step(self) -> int | None:
        """The campaign level this case waits at: the first of its chain not yet passed."""
        return self._pending


@readonly(slots=False)  # cached_property needs the instance dict
class GuardContext:
    """A case's facts as the engine hands them to its guards and effects."""

    case: CaseFacts
    worker: WorkerFacts
    student: StudentFacts
    campaign: CampaignRules
    today: dt.date
    data: dict[str, Any] = field(default_factory=dict)
    # The intent of the donor whose fund `data.fund_source` names (None: no donor fund named,
    # or none of that name in the campaign).
    donor: Intent | None = None

    @cached_property
    def applicant(self) -> Applicant:
        student = self.student
        return Applicant(
            education_level=student.education_level,
            tier=student.tier,
            tuition_invoice_fen=student.tuition_invoice_fen,
            archived=self.worker.archive_status in ARCHIVE_STATUSES,
            categories=self.worker.categories,
            freshman=student.enrollment_year == self.campaign.year,
            enrollment_year=student.enrollment_year,
        )

    @cached_property
    def aid_rule(self) -> AidRule | Reason:
        """The campaign's rule for this student (verify asks that one exists)."""
        return rule_for(self.campaign.aid_rules, self.applicant)

    @cached_property
    def aid(self) -> AidDecision | Reason:
        """The amount of the final approval, or why none: the rule's, or the one the approver
        set (`data.amount`) within it. Decided once per transition, read by the guard that
        refuses without it and the effect that reserves it."""
        rule = self.aid_rule
        if isinstance(rule, Reason):
            return rule
        given = self.data.get("amount")
        set_amount = None if given is None else approver_amount(given)
        if isinstance(set_amount, Reason):
            return set_amount
        return amount_under(rule, self.applicant, set_amount)
