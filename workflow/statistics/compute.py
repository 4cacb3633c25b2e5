"""Computing the statistics tables for a unit's subtree from the cases themselves.

"Aided" means paid: a case whose aid was paid out (follow-up or closed). Money is reported in
万元 with four decimals (exact, from fen). Funds "raised": for the organiser, the campaign's
budgets by source; for a unit below it, what its subtree's cases drew from each source."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, select

from jinqiu.states import ENDED_WITHOUT_AID
from jinqiu.workflow.campaigns.models import Campaign, FundSource
from jinqiu.workflow.cases.models import Case, Student, Worker
from jinqiu.workflow.money import FEN_PER_YUAN, format_wan_yuan
from jinqiu.workflow.statistics.models import ReportSubmission
from jinqiu.workflow.statistics.tables import STATISTICS_KIND, TABLES, Item, Table
from jinqiu.workflow.units.models import Unit, in_subtree

case_t = Case.__table__  # type: ignore[attr-defined]
worker_t = Worker.__table__  # type: ignore[attr-defined]
student_t = Student.__table__  # type: ignore[attr-defined]
unit_t = Unit.__table__  # type: ignore[attr-defined]
fund_t = FundSource.__table__  # type: ignore[attr-defined]
campaign_t = Campaign.__table__  # type: ignore[attr-defined]
report_t = ReportSubmission.__table__  # type: ignore[attr-defined]

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


@dataclass
class Facts:
    """Everything the metrics need, gathered in one pass over the subtree's cases."""

    paid_fen: Counter[str] = field(default_factory=Counter)  # by group, and "migrant:basic"…
    aided: Counter[str] = field(default_factory=Counter)
    raised_fen: Counter[str] = field(default_factory=Counter)  # by fund source
    entering: Counter[str] = field(default_factory=Counter)  # in-archive students starting school
    figures: dict[str, Decimal] = field(default_factory=dict)  # submitted inputs, summed


def gather(conn: Connection, campaign_id: int, unit: Any) -> Facts:
    campaign = conn.execute(select(campaign_t).where(campaign_t.c.id == campaign_id)).one()
    facts = Facts()
    sources = {
        r.id: r.source
        for r in conn.execute(
            select(fund_t.c.id, fund_t.c.source).where(fund_t.c.campaign_id == campaign_id)
        )
    }
    rows = conn.execution_options(yield_per=10_000).execute(
        select(
            case_t.c.state,
            case_t.c.approved_amount_fen,
            case_t.c.fund_source_id,
            case_t.c.paid_on,
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
        ):
            facts.entering[group] += 1
        if r.approved_amount_fen is not None and r.fund_source_id is not None:
            facts.raised_fen[sources.get(r.fund_source_id, "other")] += r.approved_amount_fen
        if r.paid_on is None or r.approved_amount_fen is None:
            continue
        amount = int(r.approved_amount_fen)
        tags = [group]
        for category in r.categories or ():
            tags += [category, f"{category}:{group}"]
        if sources.get(r.fund_source_id) == "donation":
            tags.append("donation")
        for tag in tags:
            facts.paid_fen[tag] += amount
            facts.aided[tag] += 1
    if campaign.organizer_unit_id == unit.id:
        facts.raised_fen = Counter(
            {
                r.source: r.budget_fen
                for r in conn.execute(
                    select(fund_t.c.source, fund_t.c.budget_fen).where(
                        fund_t.c.campaign_id == campaign_id
                    )
                )
            }
        )
    facts.figures = _figures(conn, campaign_id, unit.path)
    return facts


def _figures(conn: Connection, campaign_id: int, path: str) -> dict[str, Decimal]:
    """The submitted figures of the subtree's units, summed over units: per unit only the latest
    revision of its statistics report counts, and no other kind's figures (never twice)."""
    latest = report_t.alias("latest")
    newer = (
        select(latest.c.id)
        .where(
            latest.c.campaign_id == report_t.c.campaign_id,
            latest.c.unit_id == report_t.c.unit_id,
            latest.c.kind == report_t.c.kind,
            latest.c.revision > report_t.c.revision,
        )
        .exists()
    )
    totals: dict[str, Decimal] = {}
    for row in conn.execute(
        select(report_t.c.figures)
        .join(unit_t, unit_t.c.id == report_t.c.unit_id)
        .where(
            report_t.c.campaign_id == campaign_id,
            report_t.c.kind == STATISTICS_KIND,
            in_subtree(unit_t.c.path, path),
            ~newer,
        )
    ):
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


def _donation_yuan(f: Facts) -> Decimal:
    return (Decimal(f.paid_fen["donation"]) / FEN_PER_YUAN).quantize(Decimal("0.01"))


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
    "donation_paid_yuan": _donation_yuan,
    "aided_by_donation": _aided("donation"),
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
    value = facts.figures.get(item.input, Decimal(0))
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
    }


def _json_value(value: Decimal | int) -> str | int:
    return str(value) if isinstance(value, Decimal) else value


def statistics(
    conn: Connection, campaign_id: int, unit: Any, keys: list[str] | None = None
) -> dict[str, Any]:
    facts = gather(conn, campaign_id, unit)
    tables = [t for t in TABLES if keys is None or t.key in keys]
    return {
        "campaign": campaign_id,
        "unit": unit.code,
        "unit_name": unit.name,
        "tables": [compute_table(t, facts) for t in tables],
    }
