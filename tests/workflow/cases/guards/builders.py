"""Guard contexts built by hand, no database: the Weihai 2024 campaign compiled the way the
engine compiles it (workflow.campaigns.rules.compile_rules), and a family that passes every
guard on 2024-07-20 unless a test changes one fact."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Any

from jinqiu.states import CaseState
from jinqiu.workflow.calendar import WorkingCalendar
from jinqiu.workflow.campaigns.rules import CampaignRules, PhaseWindow
from jinqiu.workflow.campaigns.schema import AidRule, CampaignFile
from jinqiu.workflow.cases.facts import CaseFacts, GuardContext, StudentFacts, WorkerFacts
from jinqiu.workflow.identity import make_id_number
from tests.factories import WEIHAI as WEIHAI_FILE

IN_SURVEY = dt.date(2024, 7, 20)  # inside Weihai's 宣传发动，调查摸底 phase (7/16–7/31)


def weihai_raw() -> dict[str, Any]:
    return json.loads(WEIHAI_FILE.read_text(encoding="utf-8"))


def compile_campaign(spec: CampaignFile, campaign_id: int = 1) -> CampaignRules:
    """CampaignFile → CampaignRules, through the same JSON forms the database stores."""
    return CampaignRules(
        id=campaign_id,
        token="test",
        name=spec.name,
        year=spec.year,
        approval_levels=tuple(spec.approval_levels),
        publicity_working_days=spec.publicity_working_days,
        archive=spec.eligibility,
        categories={c.code: c for c in spec.categories},
        application_types={a.code: a for a in spec.application_types},
        aid_rules=tuple(
            AidRule.model_validate(r.model_dump(mode="json", exclude_none=True))
            for r in spec.aid_rules
        ),
        phases=tuple(
            PhaseWindow(p.key, p.name, p.starts, p.ends, tuple(s.value for s in p.cases_leave))
            for p in spec.phases
        ),
        calendar=WorkingCalendar.from_overrides(spec.calendar.model_dump(mode="json")),
        opinions={str(event): opinion for event, opinion in spec.opinions.items()},
        aid_priority=spec.aid_priority,
    )


def weihai_rules(**changes: Any) -> CampaignRules:
    """The Weihai 2024 campaign, with top-level fields of the file replaced by `changes`."""
    raw = weihai_raw()
    raw.update(changes)
    return compile_campaign(CampaignFile.model_validate(raw))


WEIHAI = weihai_rules()


def worker(**changes: Any) -> WorkerFacts:
    """A deep-hardship worker archived this spring (current for the 2024 campaign)."""
    facts = WorkerFacts(
        id_number=make_id_number("371002", dt.date(1978, 3, 14), 31),
        archive_status="deep",
        archived_on=dt.date(2024, 3, 1),
        categories=(),
    )
    return dataclasses.replace(facts, **changes)


def student(**changes: Any) -> StudentFacts:
    """An undergraduate admitted to a first-tier (一本) university this year."""
    facts = StudentFacts(
        id_number=make_id_number("371002", dt.date(2006, 9, 1), 12),
        education_level="undergraduate",
        tier="first",
        tuition_invoice_fen=None,
        already_aided_by=None,
    )
    return dataclasses.replace(facts, **changes)


def case(**changes: Any) -> CaseFacts:
    facts = CaseFacts(
        id=1,
        state=CaseState.SURVEY,
        version=1,
        approval_step=0,
        objection_open=False,
        publicity_ends_on=None,
        approved_amount_fen=None,
        fund_source_id=None,
        payment_failures=0,
        unit_path="/WH/WH-HC/WH-HC-001/",
    )
    return dataclasses.replace(facts, **changes)


def context(
    *,
    today: dt.date = IN_SURVEY,
    campaign: CampaignRules | None = None,
    worker_facts: WorkerFacts | None = None,
    student_facts: StudentFacts | None = None,
    case_facts: CaseFacts | None = None,
    data: dict[str, Any] | None = None,
) -> GuardContext:
    return GuardContext(
        case=case_facts or case(),
        worker=worker_facts or worker(),
        student=student_facts or student(),
        campaign=campaign or WEIHAI,
        today=today,
        data=data or {},
    )


def codes(reasons: list[Any]) -> list[str]:
    return [r.code for r in reasons]
