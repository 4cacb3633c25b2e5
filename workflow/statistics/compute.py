"""Computing the statistics tables for a unit's subtree from the cases themselves.

"Aided" means paid: a case whose aid was paid out (follow-up or closed) by the campaign's
cut-off date (`statistics.cutoff`: a case paid after it is not counted). Money is reported in
万元 with four decimals (exact, from fen).

The cut-off applies to every count, each by its own date, the day itself included (a timestamp
by the end of that day in China): cases registered (entering school) by their creation, in the
state their trail gave them then, paid by `paid_on`; 自筹 records and donors by when they were
recorded; reports by the revision's submission (the latest revision submitted by then); the
employment and work-study registers by theirs (statistics/records.py). The organiser's budgets
are the campaign's own and always count.

Funds "raised" (A = A1+A2+A3+A4) mean the same at every level: what the units of the subtree
raised — the organiser its campaign's own budgets by source, every unit its 自筹 records, and
the donors a unit brought in under 社会捐助 — so a district's figures add up to its city's.

Figures from reports count once per unit and kind (its latest revision), never across kinds;
a unit's report stands for its whole subtree, so the reports of units below a unit that
reported are not added to it (never twice)."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, and_, case, func, select

from jinqiu.states import ENDED_WITHOUT_AID
from jinqiu.workflow.audit.models import AuditEntry
from jinqiu.workflow.campaigns.models import Campaign, FundSource
from jinqiu.workflow.cases.models import Case, Student, Worker
from jinqiu.workflow.donors.intent import is_donor_fund
from jinqiu.workflow.donors.models import Donor, UnitFund
from jinqiu.workflow.money import FEN_PER_YUAN, format_wan_yuan, format_yuan
from jinqiu.workflow.statistics.models import ReportSubmission
from jinqiu.workflow.statistics.records import count_records, end_of
from jinqiu.workflow.statistics.tables import (
    BY_KEY,
    DONOR_COLUMNS,
    STATISTICS_KIND,
    TABLES,
    Item,
    Table,
)
from jinqiu.workflow.units.models import Unit, in_subtree

case_t = Case.__table__  # type: ignore[attr-defined]
audit_t = AuditEntry.__table__  # type: ignore[attr-defined]
worker_t = Worker.__table__  # type: ignore[attr-defined]
student_t = Student.__table__  # type: ignore[attr-defined]
unit_t = Unit.__table__  # type: ignore[attr-defined]
fund_t = FundSource.__table__  # type: ignore[attr-defined]
campaign_t = Campaign.__table__  # type: ignore[attr-defined]
report_t = ReportSubmission.__table__  # type: ignore[attr-defined]
donor_t = Donor.__table__  # type: ignore[attr-defined]
unit_fund_t = UnitFund.__table__  # type: ignore[attr-defined]

LEVEL_GROUP = {
    "college": "university",
    "undergraduate": "university",
    "postgraduate": "university",
    "senior": "senior",
    "vocational": "senior",
    "preschool": "basic",
    "primary": "basic",
    "junior": "basic",
    "special": "basic",  # 特殊教育: Weihai 附件1 "小学和初中学生及其他"
}
GROUPS = ("university", "senior", "basic")
SOURCES = ("government", "donation", "union", "other")


@dataclass(frozen=True)
class DonorRow:
    """One row of Weihai 附件2: a donor of the subtree and the students its fund aided."""

    name: str
    amount_fen: int
    aided: int
    summary: str


@dataclass
class Facts:
    """Everything the metrics need, gathered in one pass over the subtree's cases."""

    paid_fen: Counter[str] = field(default_factory=Counter)  # by group, and "migrant:basic"…
    aided: Counter[str] = field(default_factory=Counter)
    raised_fen: Counter[str] = field(default_factory=Counter)  # by fund source
    entering: Counter[str] = field(default_factory=Counter)  # in-archive students starting school
    # Submitted inputs by report kind, each unit's latest revision once (see _figures).
    figures: dict[str, dict[str, Decimal]] = field(default_factory=dict)
    donors: list[DonorRow] = field(default_factory=list)
    records: Counter[str] = field(default_factory=Counter)  # employment and work-study registers


def cutoff_of(campaign: Any) -> dt.date | None:
    spec = campaign.statistics or {}
    return None if spec.get("cutoff") is None else dt.date.fromisoformat(spec["cutoff"])


def gather(conn: Connection, campaign_id: int, unit: Any, kinds: set[str] | None = None) -> Facts:
    campaign = conn.execute(select(campaign_t).where(campaign_t.c.id == campaign_id)).one()
    cutoff = cutoff_of(campaign)
    until = end_of(cutoff)
    facts = Facts()
    sources = {
        r.id: r.source
        for r in conn.execute(
            select(fund_t.c.id, fund_t.c.source).where(fund_t.c.campaign_id == campaign_id)
        )
    }
    state: Any = case_t.c.state
    if until is not None:
        # As at the cut-off: a case changed since (every transition moves updated_at) has the
        # state its trail gave it last before the end of the day (a case rejected later was
        # still an applicant then).
        state = case(
            (case_t.c.updated_at < until, case_t.c.state),
            else_=select(audit_t.c.to_state)
            .where(audit_t.c.case_id == case_t.c.id, audit_t.c.at < until)
            .order_by(audit_t.c.seq.desc())
            .limit(1)
            .scalar_subquery(),
        )
    rows = conn.execution_options(yield_per=10_000).execute(
        select(
            state.label("state"),
            case_t.c.approved_amount_fen,
            case_t.c.fund_source_id,
            case_t.c.paid_on,
            case_t.c.created_at,
            student_t.c.education_level,
            student_t.c.enrollment_year,
            worker_t.c.categories,
            worker_t.c.archive_status,
        )
        .join(unit_t, unit_t.c.id == case_t.c.unit_id)
        .join(student_t, student_t.c.id == case_t.c.student_id)
        .join(worker_t, worker_t.c.id == case_t.c.worker_id)
        .where(case_t.c.campaign_id == campaign_id, in_subtree(unit_t.c.path, unit.path))
    )
    for r in rows:
        group = LEVEL_GROUP.get(r.education_level, "basic")
        if (
            r.state not in ENDED_WITHOUT_AID
            and r.archive_status != "none"
            and r.enrollment_year == campaign.year
            and (until is None or r.created_at < until)
        ):
            facts.entering[group] += 1
        if r.paid_on is None or r.approved_amount_fen is None:
            continue
        if cutoff is not None and r.paid_on > cutoff:
            continue  # paid after the cut-off date: next year's figures
        amount = int(r.approved_amount_fen)
        tags = [group]
        for category in r.categories or ():
            tags += [category, f"{category}:{group}"]
        source = sources.get(r.fund_source_id)
        if source == "donation" or is_donor_fund(source):
            tags.append("donation")
        for tag in tags:
            facts.paid_fen[tag] += amount
            facts.aided[tag] += 1
    facts.raised_fen = _raised_in(conn, campaign, unit.path, until)
    facts.donors = _donors(conn, campaign_id, unit.path, cutoff)
    for kind in sorted(kinds or {STATISTICS_KIND}):
        facts.figures[kind] = _figures(conn, campaign_id, unit.path, kind, until)
    facts.records = count_records(conn, campaign_id, campaign.year, unit.path, cutoff)
    return facts


def _raised_in(
    conn: Connection, campaign: Any, path: str, until: dt.datetime | None
) -> Counter[str]:
    """What the units of the subtree raised, by source: the organiser's own budgets (not the
    donors' funds, counted below by who brought them in), 自筹 records, and donors (those two
    recorded before `until`)."""
    raised: Counter[str] = Counter()
    organizer_path = conn.execute(
        select(unit_t.c.path).where(unit_t.c.id == campaign.organizer_unit_id)
    ).scalar_one()
    if organizer_path.startswith(path):
        for r in conn.execute(
            select(fund_t.c.source, fund_t.c.budget_fen).where(fund_t.c.campaign_id == campaign.id)
        ):
            if not is_donor_fund(r.source):
                raised[r.source] += int(r.budget_fen)
    funds_in = [unit_fund_t.c.campaign_id == campaign.id, in_subtree(unit_t.c.path, path)]
    donors_in = [donor_t.c.campaign_id == campaign.id, in_subtree(unit_t.c.path, path)]
    if until is not None:
        funds_in.append(unit_fund_t.c.recorded_at < until)
        donors_in.append(donor_t.c.created_at < until)
    for r in conn.execute(
        select(unit_fund_t.c.source, func.sum(unit_fund_t.c.amount_fen).label("fen"))
        .join(unit_t, unit_t.c.id == unit_fund_t.c.unit_id)
        .where(*funds_in)
        .group_by(unit_fund_t.c.source)
    ):
        raised[r.source] += int(r.fen)
    donated = conn.execute(
        select(func.coalesce(func.sum(donor_t.c.amount_fen), 0))
        .join(unit_t, unit_t.c.id == donor_t.c.unit_id)
        .where(*donors_in)
    ).scalar_one()
    raised["donation"] += int(donated)
    return raised


def _donors(
    conn: Connection, campaign_id: int, path: str, cutoff: dt.date | None
) -> list[DonorRow]:
    """The donors brought in by the subtree's units by the cut-off date, each with the students
    its fund paid by then, wherever they study."""
    paid = case_t.c.paid_on.is_not(None)
    donors_in = [donor_t.c.campaign_id == campaign_id, in_subtree(unit_t.c.path, path)]
    if cutoff is not None:
        paid = and_(paid, case_t.c.paid_on <= cutoff)
        donors_in.append(donor_t.c.created_at < end_of(cutoff))
    aided = (
        select(case_t.c.fund_source_id, func.count().label("n"))
        .where(case_t.c.campaign_id == campaign_id, paid)
        .group_by(case_t.c.fund_source_id)
        .subquery()
    )
    return [
        DonorRow(name=r.name, amount_fen=int(r.amount_fen), aided=int(r.n), summary=r.summary)
        for r in conn.execute(
            select(
                donor_t.c.name,
                donor_t.c.amount_fen,
                donor_t.c.summary,
                func.coalesce(aided.c.n, 0).label("n"),
            )
            .join(unit_t, unit_t.c.id == donor_t.c.unit_id)
            .outerjoin(aided, aided.c.fund_source_id == donor_t.c.fund_source_id)
            .where(*donors_in)
            .order_by(donor_t.c.id)
        )
    ]


def _figures(
    conn: Connection, campaign_id: int, path: str, kind: str, until: dt.datetime | None
) -> dict[str, Decimal]:
    """The submitted figures of the subtree's units for one report kind, summed over units:
    per unit only its latest revision submitted before `until` counts, no other kind's figures,
    and a unit whose superior in the subtree reported too is left out — the superior's report
    covers it."""
    latest = report_t.alias("latest")
    later = [
        latest.c.campaign_id == report_t.c.campaign_id,
        latest.c.unit_id == report_t.c.unit_id,
        latest.c.kind == report_t.c.kind,
        latest.c.revision > report_t.c.revision,
    ]
    submitted = [
        report_t.c.campaign_id == campaign_id,
        report_t.c.kind == kind,
        in_subtree(unit_t.c.path, path),
    ]
    if until is not None:
        later.append(latest.c.submitted_at < until)
        submitted.append(report_t.c.submitted_at < until)
    newer = select(latest.c.id).where(*later).exists()
    latest_reports = conn.execute(
        select(unit_t.c.path, report_t.c.figures)
        .join(unit_t, unit_t.c.id == report_t.c.unit_id)
        .where(*submitted, ~newer)
    ).all()
    counted: list[str] = []  # the paths whose report counts, superiors first
    totals: dict[str, Decimal] = {}
    for row in sorted(latest_reports, key=lambda r: (len(r.path), r.path)):
        if any(row.path.startswith(above) for above in counted):
            continue
        counted.append(row.path)
        for key, value in _flatten(row.figures or {}).items():
            totals[key] = totals.get(key, Decimal(0)) + value
    return totals


def _flatten(figures: dict[str, Any], prefix: str = "") -> dict[str, Decimal]:
    out: dict[str, Decimal] = {}
    for key, value in figures.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, f"{name}."))
        elif isinstance(value, (int, str, Decimal)) and not isinstance(value, bool):
            try:
                out[name] = Decimal(str(value))
            except ArithmeticError:
                continue
    return out


def wan(fen: int) -> Decimal:
    return format_wan_yuan(fen)


Metric = Callable[[Facts], Decimal | int]


def _raised(source: str) -> Metric:
    return lambda f: wan(f.raised_fen[source])


def _paid(tag: str) -> Metric:
    return lambda f: wan(f.paid_fen[tag])


def _aided(tag: str) -> Metric:
    return lambda f: f.aided[tag]


def _entering(group: str) -> Metric:
    return lambda f: f.entering[group]


def _yuan(fen: int) -> Decimal:
    return (Decimal(fen) / FEN_PER_YUAN).quantize(Decimal("0.01"))


def _counted(key: str) -> Metric:
    return lambda f: f.records[key]


def _counted_wan(key: str) -> Metric:
    return lambda f: wan(f.records[key])


def _counted_yuan(key: str) -> Metric:
    return lambda f: (Decimal(f.records[key]) / FEN_PER_YUAN).quantize(Decimal("0.01"))


# From the registers (workflow.statistics.records says what each key counts).
RECORD_METRICS: dict[str, Metric] = {
    **{
        key: _counted(key)
        for key in (
            "graduates",
            "graduates_fresh",
            "graduates_previous",
            "employed_helped",
            "employed_self",
            "needs_help",
            "fresh_local_unplaced",
            "previous_unplaced",
            "posts",
            "post_employers",
            "participants",
        )
    },
    **{
        f"help_{kind}": _counted(f"help:{kind}")
        for kind in (
            "internship",
            "training",
            "certificate",
            "startup_guidance",
            "startup_training",
            "loan",
            "policy",
            "subsidy",
        )
    },
    "help_loan_yuan": _counted_yuan("help_fen:loan"),
    "help_subsidy_wan": _counted_wan("help_fen:subsidy"),
}

METRICS: dict[str, Metric] = {
    **{f"raised_{s}": _raised(s) for s in SOURCES},
    **{f"paid_{g}": _paid(g) for g in GROUPS},
    **{f"aided_{g}": _aided(g) for g in GROUPS},
    **{f"entering_{g}": _entering(g) for g in GROUPS},
    "aided_migrant": _aided("migrant_worker"),
    "paid_migrant": _paid("migrant_worker"),
    "aided_gig": _aided("gig_worker"),
    "paid_gig": _paid("gig_worker"),
    "aided_single_mother": _aided("single_mother"),
    "paid_single_mother": _paid("single_mother"),
    **{f"aided_migrant_{g}": _aided(f"migrant_worker:{g}") for g in GROUPS},
    **{f"paid_migrant_{g}": _paid(f"migrant_worker:{g}") for g in GROUPS},
    "donor_amount_yuan": lambda f: _yuan(sum(d.amount_fen for d in f.donors)),
    "aided_by_donors": lambda f: sum(d.aided for d in f.donors),
    "donors": lambda f: len(f.donors),
    **RECORD_METRICS,
}


def item_value(item: Item, facts: Facts, done: dict[str, Decimal | int]) -> Decimal | int:
    if item.metric is not None:
        return METRICS[item.metric](facts)
    if item.sum_of:
        total: Decimal | int = sum((done[c] for c in item.sum_of), start=0)
        return (
            total.quantize(Decimal("0.0001"))
            if isinstance(total, Decimal) and item.unit == "万元"
            else total
        )
    assert item.input is not None
    value = facts.figures.get(item.kind, {}).get(item.input, Decimal(0))
    if item.unit in {"万元", "元"}:
        return value
    return int(value)


def compute_table(table: Table, facts: Facts) -> dict[str, Any]:
    done: dict[str, Decimal | int] = {}
    # Sums refer to items listed after them (A before A1…): compute the parts first.
    for item in sorted(table.items, key=lambda i: bool(i.sum_of)):
        done[item.code] = item_value(item, facts, done)
    return {
        "key": table.key,
        "title": table.title,
        "source": table.source,
        "columns": list(table.columns),
        "note": table.note,
        "items": [
            {
                "code": i.code,
                "label": i.label,
                "unit": i.unit,
                "group": i.group,
                "value": _json_value(done[i.code]),
                "kind": "metric" if i.metric else "sum" if i.sum_of else "input",
                **({"sum_of": list(i.sum_of)} if i.sum_of else {}),
            }
            for i in table.items
        ],
        **(
            {
                "row_columns": list(DONOR_COLUMNS),
                "rows": [
                    {
                        "name": d.name,
                        "amount": format_yuan(d.amount_fen),
                        "aided": d.aided,
                        "summary": d.summary,
                    }
                    for d in facts.donors
                ],
            }
            if table.layout == "per_donor"
            else {}
        ),
    }


def _json_value(value: Decimal | int) -> str | int:
    return str(value) if isinstance(value, Decimal) else value


def campaign_tables(conn: Connection, campaign_id: int) -> list[str]:
    """The tables the campaign names (its file's `statistics.tables`, in that order); a
    campaign loaded before it could name them shows every table."""
    spec = conn.execute(
        select(campaign_t.c.statistics).where(campaign_t.c.id == campaign_id)
    ).scalar_one()
    return tables_named(spec)


def tables_named(spec: dict[str, Any] | None) -> list[str]:
    """`campaign_tables` of a campaign row's `statistics` already read."""
    if not spec or not spec.get("tables"):
        return [t.key for t in TABLES]
    return [key for key in spec["tables"] if key in BY_KEY]


def statistics(
    conn: Connection, campaign_id: int, unit: Any, keys: list[str] | None = None
) -> dict[str, Any]:
    """The tables `keys` (default: the campaign's own) for the unit's subtree. The faces ask
    only for the campaign's tables; the tests compute any table over any campaign."""
    campaign = conn.execute(
        select(campaign_t.c.statistics).where(campaign_t.c.id == campaign_id)
    ).one()
    tables = [BY_KEY[k] for k in (campaign_tables(conn, campaign_id) if keys is None else keys)]
    facts = gather(
        conn, campaign_id, unit, {i.kind for t in tables for i in t.items if i.input is not None}
    )
    spec = campaign.statistics or {}
    return {
        "campaign": campaign_id,
        "unit": unit.code,
        "unit_name": unit.name,
        "cutoff": spec.get("cutoff"),
        "source": spec.get("source"),
        "tables": [compute_table(t, facts) for t in tables],
    }
