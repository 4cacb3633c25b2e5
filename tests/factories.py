"""Factories that read like the notices: a Weihai tree, the Weihai campaign and a family in a line."""

from __future__ import annotations

import datetime as dt
import functools
import json
import random
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from sqlalchemy import Connection, Engine, select

from jinqiu.demo.synthetic import family
from jinqiu.demo.units import Tree, seed_weihai_tree
from jinqiu.states import MACHINE, CaseEvent, CaseState
from jinqiu.workflow.audit.models import AuditEntry
from jinqiu.workflow.campaigns.schema import CampaignFile
from jinqiu.workflow.campaigns.service import load_campaign
from jinqiu.workflow.cases.aid import AidDecision, Applicant, decide_aid
from jinqiu.workflow.cases.engine import CASES
from jinqiu.workflow.cases.models import Case
from jinqiu.workflow.cases.schema import CaseCreate
from jinqiu.workflow.cases.service import create_case
from jinqiu.workflow.clock import Clock
from jinqiu.workflow.db import transaction
from jinqiu.workflow.engine import Decision, combined
from jinqiu.workflow.engine.core import write
from jinqiu.workflow.identity import make_id_number
from jinqiu.workflow.roles import Actor
from jinqiu.workflow.units.models import Unit

ROOT = Path(__file__).resolve().parents[1]
WEIHAI = ROOT / "examples" / "campaigns" / "weihai-2024.json"
unit_t = Unit.__table__  # type: ignore[attr-defined]
case_t = Case.__table__  # type: ignore[attr-defined]
audit_t = AuditEntry.__table__  # type: ignore[attr-defined]
FACTORY = "factory"  # the actor of the audit entries a factory writes
# The cheapest Argon2id: for accounts a fixture inserts directly (see `password_hash`).
_CHEAP_ARGON2 = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


@functools.cache
def password_hash(password: str) -> str:
    """The stored hash of an account a fixture inserts directly: Argon2id, as the service
    stores, with the cheapest parameters. Signing in checks it through the service's own
    `password_matches`, which reads the parameters from the hash, in a millisecond instead of
    ~0.1 s (x every sign-in of the suite). Accounts made through the service (create_user, the
    API, the CLI) keep the service's parameters: tests/api/test_auth.py holds those."""
    return _CHEAP_ARGON2.hash(password)


# The Weihai deadlines by level, as the sweep's own tests exercise it: every grassroots union
# owes its survey cases by 7/31, every district-level union (district and industry) its
# statistics by 8/30. The notice's file names sets instead (市直各单位, 各区市总工会):
# tests/workflow/deadlines/test_responsibility.py holds those.
BY_LEVEL: list[dict[str, Any]] = [
    {
        "key": "survey_materials",
        "title": "报送新增困难职工档案申报材料和《困难职工子女金秋助学情况摸底表》",
        "due": "2024-07-31",
        "responsible_level": "grassroots",
        "done_when": {"no_cases_in": ["survey"]},
    },
    {
        "key": "statistics_report",
        "title": "报送活动总结和统计表",
        "due": "2024-08-30",
        "responsible_level": "district",
        "done_when": {"report_submitted": "statistics"},
    },
]


def weihai_file(**changes: Any) -> CampaignFile:
    raw = json.loads(WEIHAI.read_text(encoding="utf-8"))
    raw.update(changes)
    return CampaignFile.model_validate(raw)


def weihai_file_in(year: int, **changes: Any) -> CampaignFile:
    """The Weihai campaign file moved to `year`, every date with it (a later campaign, for
    renewals)."""
    raw = json.loads(WEIHAI.read_text(encoding="utf-8").replace("2024-", f"{year}-"))
    raw.update({"year": year, "name": f"{year}年度金秋助学活动", **changes})
    return CampaignFile.model_validate(raw)


def weihai_amount_fen(**student_changes: Any) -> int:
    """What the Weihai campaign file gives a student of `student()` with these changes: tests
    read the amounts from the file rather than restating them."""
    who = student(**student_changes)
    decision = decide_aid(
        weihai_file().aid_rules,
        Applicant(
            education_level=who["education_level"],
            tier=who.get("tier"),
            tuition_invoice_fen=None,
            freshman=who.get("enrollment_year") == 2024,
        ),
    )
    assert isinstance(decision, AidDecision), decision
    return decision.amount_fen


def weihai(engine: Engine, clock: Clock, **changes: Any) -> tuple[Tree, int]:
    """The Weihai tree (6 districts x 3 grassroots unions) and the 2024 campaign."""
    with transaction(engine) as conn:
        tree = seed_weihai_tree(conn, grassroots_per_district=3)
        campaign_id = load_campaign(conn, weihai_file(**changes), clock)
    return tree, campaign_id


def weihai_by_level(engine: Engine, clock: Clock, **changes: Any) -> tuple[Tree, int]:
    """The Weihai tree and campaign with its deadlines by level (BY_LEVEL)."""
    return weihai(engine, clock, **{"deadlines": BY_LEVEL, **changes})


def actor(conn: Connection, unit_code: str, *roles: str, username: str | None = None) -> Actor:
    row = conn.execute(select(unit_t).where(unit_t.c.code == unit_code)).one()
    return Actor(
        username=username or f"{roles[0]}@{unit_code}",
        unit_code=unit_code,
        unit_path=row.path,
        unit_level=row.level,
        roles=tuple(roles),
    )


def actor_of(engine: Engine, unit_code: str, *roles: str) -> Actor:
    with engine.connect() as conn:
        return actor(conn, unit_code, *roles)


def worker(**changes: Any) -> dict[str, Any]:
    """A deep-hardship worker archived this spring (current for the 2024 campaign)."""
    data: dict[str, Any] = {
        "name": "王建国",
        "id_number": make_id_number("371002", dt.date(1978, 3, 14), 31),
        "phone": "13806301234",
        "work_unit": "威海市某纺织有限公司",
        "address": "山东省威海市环翠区新威路18号",
        "household_size": 4,
        "monthly_income_per_capita": "850",
        "employment_status": "在岗",
        "hardship_cause": "配偶患重病，长期医治",
        "archive_status": "deep",
        "archived_on": "2024-03-01",
        "categories": [],
    }
    data.update(changes)
    return data


_students = iter(range(1, 10**6))


def student(**changes: Any) -> dict[str, Any]:
    """An undergraduate admitted to a first-tier university this year."""
    n = next(_students)
    data: dict[str, Any] = {
        "name": "王小明",
        "id_number": make_id_number("371002", dt.date(2006, 1 + n % 12, 1 + n % 28), n % 1000),
        "relation": "子",
        "ethnicity": "汉族",
        "education_level": "undergraduate",
        "tier": "first",
        "school": "山东大学（威海）",
        "major": "机械工程",
        "enrollment_year": 2024,
        "program_years": 4,
        "exam_score": 612,
        "admitted_school": "山东大学（威海）",
    }
    data.update(changes)
    return data


def new_case(
    engine: Engine,
    clock: Clock,
    campaign_id: int,
    unit: str,
    *,
    worker_changes: dict[str, Any] | None = None,
    student_changes: dict[str, Any] | None = None,
) -> int:
    with transaction(engine) as conn:
        spec = CaseCreate.model_validate(
            {
                "campaign": campaign_id,
                "unit": unit,
                "worker": worker(**(worker_changes or {})),
                "student": student(**(student_changes or {})),
            }
        )
        return create_case(conn, spec, actor=actor(conn, unit, "clerk"), clock=clock)


def random_case_input(rng: random.Random, campaign_id: int, unit: str) -> CaseCreate:
    fam = family(rng, 2024, today=dt.date(2024, 7, 20))
    return CaseCreate.model_validate({"campaign": campaign_id, "unit": unit, **fam})


def case_row(engine: Engine, case_id: int) -> Any:
    with engine.connect() as conn:
        return conn.execute(select(case_t).where(case_t.c.id == case_id)).one()


def case_in(
    engine: Engine,
    clock: Clock,
    campaign_id: int,
    unit: str,
    state: CaseState,
    *,
    approved: int = 0,
    worker_changes: dict[str, Any] | None = None,
    student_changes: dict[str, Any] | None = None,
) -> int:
    """A new case put straight into `state`, consistent as if it had got there: each transition
    of the lifecycle's shortest way there (MACHINE.path_to; the approvals along the case's own
    chain of levels) is written as the engine writes it — its effects (publicity dates, approval
    step, the fund reservation, the payment), the version, the counters and an audit entry by
    `factory` — but without guards, roles or dates, so a test sets up in one call what it would
    otherwise drive event by event. In approval, `approved` levels are behind it."""
    case_id = new_case(
        engine,
        clock,
        campaign_id,
        unit,
        worker_changes=worker_changes,
        student_changes=student_changes,
    )
    with transaction(engine) as conn:
        for planned in MACHINE.path_to(state):
            while _write_transition(conn, case_id, planned.event, clock) != planned.dest:
                pass  # an approval level before the last
        for _ in range(approved):
            (loop,) = {t.event for t in MACHINE.work(state) if t.dest == state}
            _write_transition(conn, case_id, loop, clock)
        reached = conn.execute(select(case_t.c.state).where(case_t.c.id == case_id)).scalar_one()
    if reached != state:
        raise ValueError(f"{approved} approvals take the case past {state} to {reached}")
    return case_id


_FACTORY_ACTOR = Actor(FACTORY, None, "/", None, ())


def _write_transition(conn: Connection, case_id: int, event: CaseEvent, clock: Clock) -> str:
    """One transition written by the engine's own writer, minus the checks: the engine's
    selection along the case's chain, the named effects, the version-bumped row, counters,
    audit (no guards, roles or dates)."""
    now = clock.now()
    loaded = CASES.load(conn, case_id, today=now.date(), data={})
    assert loaded is not None
    t = CASES.select(loaded, event)
    if t is None:
        raise ValueError(f"{event} is not possible from {loaded.state}")
    opinion = "（测试数据）" if t.opinion_required else None
    outcome = combined([CASES.effects[name](loaded.facts, opinion) for name in t.effects])
    decision = Decision(t, outcome, opinion, dict(outcome.audit))
    return str(write(conn, CASES, loaded, decision, actor=_FACTORY_ACTOR, now=now).state)


def rows_not_naming_their_parent(conn: Connection) -> list[str]:
    """Every case counter and reminder count row whose parent_code is not its unit's parent (a
    dashboard reads a unit's children's rows by it)."""
    from jinqiu.workflow.cases.counters import unit_case_count
    from jinqiu.workflow.deadlines.reminder_counts import REMINDER_COUNTS

    unit_t = Unit.__table__  # type: ignore[attr-defined]
    parent_t = unit_t.alias("parent")
    out = []
    for table in (unit_case_count, REMINDER_COUNTS.table):
        misnamed = (
            select(table.c.unit_code, table.c.parent_code, parent_t.c.code)
            .join(unit_t, unit_t.c.code == table.c.unit_code)
            .outerjoin(parent_t, parent_t.c.id == unit_t.c.parent_id)
            .where(table.c.parent_code.is_distinct_from(parent_t.c.code))
        )
        out += [
            f"{table.name} {code}: parent {kept}, not {parent}"
            for code, kept, parent in conn.execute(misnamed)
        ]
    return out
