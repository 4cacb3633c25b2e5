"""A campaign compiled for the engine and the sweep: the rules cases are checked against, built
once per campaign row (its rules_token) and cached in each process."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from threading import Lock
from typing import Any

from sqlalchemy import Connection, select

from jinqiu.workflow.calendar import WorkingCalendar
from jinqiu.workflow.campaigns.models import Campaign, CampaignDeadline, CampaignPhase
from jinqiu.workflow.campaigns.schema import (
    AidRule,
    ApplicationType,
    CategorySpec,
    Eligibility,
    Opinion,
    Priority,
)
from jinqiu.workflow.errors import NotFound

campaign_table = Campaign.__table__  # type: ignore[attr-defined]
phase_table = CampaignPhase.__table__  # type: ignore[attr-defined]
deadline_table = CampaignDeadline.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class PhaseWindow:
    key: str
    name: str
    starts: dt.date
    ends: dt.date
    cases_leave: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DeadlineRule:
    """A campaign deadline as its row holds it (written with the campaign, never changed)."""

    key: str
    title: str
    due: dt.date
    responsible_level: str | None
    responsible: dict[str, Any] | None
    done_when: dict[str, Any]


@dataclass(frozen=True, slots=True)
class CampaignRules:
    """A campaign compiled for the engine: built once per campaign row and reused."""

    id: int
    token: str  # the campaign row's rules_token: the cache key
    name: str
    year: int
    approval_levels: tuple[str, ...]
    publicity_working_days: int
    archive: Eligibility  # the archive rule: age limit against a fixed reference date
    categories: dict[str, CategorySpec]  # by code, in the file's order
    application_types: dict[str, ApplicationType]  # by code
    aid_rules: tuple[AidRule, ...]
    phases: tuple[PhaseWindow, ...]
    calendar: WorkingCalendar
    # Visits a case in follow-up needs before it closes; 0: no rule (a bare close).
    visits_required: int = 0
    # The campaign's last day (follow_up.closes_on): after it, follow-up ends by date; None: never.
    follow_up_closes_on: dt.date | None = None
    # By event: the opinion the notice asks for (Dalian: 审查/审核/审批意见 at each level).
    opinions: dict[str, Opinion] = field(default_factory=dict, hash=False, compare=False)
    aid_priority: Priority | None = (
        None  # 同等条件优先考虑新入学: who comes first when funds run short
    )
    # By due date: what the dashboard lists (read with the rules, not on every view).
    deadlines: tuple[DeadlineRule, ...] = field(default=(), hash=False, compare=False)

    def opinion_at(self, event: str, level: str | None) -> tuple[str, bool] | None:
        """(label, required) of the opinion the campaign asks for on `event` at `level`."""
        opinion = self.opinions.get(event)
        if opinion is None or (opinion.levels is not None and level not in opinion.levels):
            return None
        label = next((text for at, text in opinion.labels.items() if at == level), "意见")
        return label, opinion.required

    def phase_cases_leave(self, state: str) -> PhaseWindow | None:
        """The phase by whose end cases in `state` must have moved on (e.g. survey)."""
        for phase in self.phases:
            if state in phase.cases_leave:
                return phase
        return None


def compile_rules(conn: Connection, campaign_id: int) -> CampaignRules:
    row = conn.execute(select(campaign_table).where(campaign_table.c.id == campaign_id)).first()
    if row is None:
        raise NotFound(f"活动 {campaign_id} 不存在")
    phases = conn.execute(
        select(phase_table)
        .where(phase_table.c.campaign_id == campaign_id)
        .order_by(phase_table.c.position)
    ).all()
    deadlines = conn.execute(
        select(deadline_table)
        .where(deadline_table.c.campaign_id == campaign_id)
        .order_by(deadline_table.c.due, deadline_table.c.id)
    ).all()
    eligibility: dict[str, Any] = row.eligibility
    return CampaignRules(
        id=row.id,
        token=row.rules_token,
        name=row.name,
        year=row.year,
        approval_levels=tuple(row.approval_levels),
        publicity_working_days=row.publicity_working_days,
        archive=_archive_rule(eligibility),
        categories={c["code"]: CategorySpec.model_validate(c) for c in row.categories or ()},
        application_types={
            a["code"]: ApplicationType.model_validate(a) for a in row.application_types or ()
        },
        aid_rules=tuple(AidRule.model_validate(r) for r in row.aid_rules),
        phases=tuple(
            PhaseWindow(p.key, p.name, p.starts, p.ends, tuple(p.cases_leave)) for p in phases
        ),
        calendar=WorkingCalendar.from_overrides(row.calendar),
        visits_required=int((row.follow_up or {}).get("visits_required", 0)),
        follow_up_closes_on=follow_up_closes_on(row.follow_up),
        opinions={k: Opinion.model_validate(v) for k, v in (row.opinions or {}).items()},
        aid_priority=None
        if row.aid_priority is None
        else Priority.model_validate(row.aid_priority),
        deadlines=tuple(
            DeadlineRule(d.key, d.title, d.due, d.responsible_level, d.responsible, d.done_when)
            for d in deadlines
        ),
    )


def follow_up_closes_on(stored: dict[str, Any] | None) -> dt.date | None:
    """The campaign row's `follow_up.closes_on` (the JSON column keeps it as an ISO string)."""
    closes_on = (stored or {}).get("closes_on")
    return None if closes_on is None else dt.date.fromisoformat(str(closes_on))


def _archive_rule(stored: dict[str, Any]) -> Eligibility:
    """The campaign row's eligibility; rows loaded before 0019 hold a category list (dropped:
    categories are the campaign's own list now) and an age without its reference date (the
    age is then not checked: no campaign file said against which day)."""
    rule = {k: v for k, v in stored.items() if k != "categories"}
    if rule.get("archive_reference_date") is None:
        rule.pop("archive_max_age_months", None)
    return Eligibility.model_validate(rule)


class RulesCache:
    """Compiled campaign rules per (id, rules_token). Campaign rows are the truth; a rewritten
    row carries a new token and simply misses the cache, so any number of processes agree."""

    def __init__(self) -> None:
        self._rules: dict[tuple[int, str], CampaignRules] = {}
        self._lock = Lock()

    def get(self, conn: Connection, campaign_id: int, token: str) -> CampaignRules:
        rules = self._rules.get((campaign_id, token))
        if rules is None:
            rules = compile_rules(conn, campaign_id)
            with self._lock:
                self._rules[(campaign_id, rules.token)] = rules
        return rules


RULES = RulesCache()
