"""The phase dashboard of one campaign for one unit: where the cases are, which child units are
behind, what reminders went out, what the funds look like, what is due next.

Read from counters and small tables only: the cost grows with the number of child units shown,
not with the number of cases."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from itertools import compress
from typing import Any

from sqlalchemy import (
    CompoundSelect,
    Connection,
    String,
    bindparam,
    cast,
    func,
    null,
    select,
    union_all,
)

from jinqiu.states import CaseState
from jinqiu.workflow.campaigns.models import Campaign, FundSource
from jinqiu.workflow.campaigns.rules import RULES, CampaignRules
from jinqiu.workflow.cases.counters import (
    STATES,
    states_of,
    unit_case_count,
    write_pending,
)
from jinqiu.workflow.cases.models import Case
from jinqiu.workflow.deadlines.pending import Responsibility, responsible_label, still_owed
from jinqiu.workflow.deadlines.reminder_counts import REMINDER_COUNTS
from jinqiu.workflow.driver import driver_batch, id_in
from jinqiu.workflow.errors import NotFound
from jinqiu.workflow.money import format_yuan
from jinqiu.workflow.paths import path_codes
from jinqiu.workflow.payments.reconcile import FUND_ROWS, FundRow, fund_row
from jinqiu.workflow.roles import Actor
from jinqiu.workflow.statistics.compute import tables_named
from jinqiu.workflow.statistics.models import ReportSubmission
from jinqiu.workflow.statistics.report_counts import REPORT_COUNTS
from jinqiu.workflow.statistics.tables import BY_KEY
from jinqiu.workflow.units.counts import UNIT_COUNTS
from jinqiu.workflow.units.models import Unit, in_subtree, subtree_bounds

campaign_t = Campaign.__table__  # type: ignore[attr-defined]
fund_t = FundSource.__table__  # type: ignore[attr-defined]
unit_t = Unit.__table__  # type: ignore[attr-defined]
case_t = Case.__table__  # type: ignore[attr-defined]
report_t = ReportSubmission.__table__  # type: ignore[attr-defined]
count_t = unit_case_count
reminder_t = REMINDER_COUNTS.table
organizer_t = unit_t.alias("organizer")

FUNNEL = [s.value for s in CaseState]


@dataclass(frozen=True)
class DashboardQuery:
    campaign_id: int
    unit_code: str | None  # None: the actor's own unit


def _overdue(counts: dict[str, int], overdue_states: set[str]) -> int:
    return sum(n for state, n in counts.items() if state in overdue_states)


# The statements are built once, their values bound per call: building each select and its
# cache key on every call was about a tenth of a dashboard's CPU (cProfile of the bench).

# The campaign, its organiser's path and the unit asked for (NULL columns: no such unit).
_HEAD = (
    select(
        campaign_t.c.id,
        campaign_t.c.name,
        campaign_t.c.year,
        campaign_t.c.rules_token,
        campaign_t.c.statistics,
        organizer_t.c.path.label("organizer_path"),
        unit_t.c.id.label("unit_id"),
        unit_t.c.code.label("unit_code"),
        unit_t.c.name.label("unit_name"),
        unit_t.c.level.label("unit_level"),
        unit_t.c.path.label("unit_path"),
        unit_t.c.parent_id.label("unit_parent_id"),
    )
    .select_from(
        campaign_t.join(organizer_t, organizer_t.c.id == campaign_t.c.organizer_unit_id).outerjoin(
            unit_t, unit_t.c.code == bindparam("code")
        )
    )
    .where(campaign_t.c.id == bindparam("campaign_id"))
)

# The unit's children in code order (the unit's own name and level are the head's).
_UNITS = (
    select(unit_t.c.code, unit_t.c.name, unit_t.c.level)
    .where(unit_t.c.parent_id == bindparam("unit_id"))
    .order_by(unit_t.c.code)
)
# The reminders sent to each child's subtree: one range of ix_reminder_count_parent (a probe of
# the key per child was, after the counters, most of PostgreSQL's time for a district).
_SENT = select(reminder_t.c.unit_code, reminder_t.c.n).where(
    reminder_t.c.campaign_id == bindparam("campaign_id"),
    reminder_t.c.parent_code == bindparam("code"),
    reminder_t.c.n != 0,
)
# The unit's children's counters (one range of ix_unit_case_count_parent) and its own (one
# probe of the key). Probing the key once per child (a district: ~500) was half of PostgreSQL's
# time for the dashboard, and as a join its generic plan hashed the campaign's 100,000 counter
# rows. Two selects, not one OR: SQLite does not split `campaign_id = ? AND (parent_code = ? OR
# unit_code = ?)` over the two indexes and scanned the campaign's rows (15 ms a dashboard).
_COUNTERS = union_all(
    select(count_t.c.unit_code, *(count_t.c[state] for state in STATES)).where(
        count_t.c.campaign_id == bindparam("campaign_id"),
        count_t.c.parent_code == bindparam("code"),
    ),
    select(count_t.c.unit_code, *(count_t.c[state] for state in STATES)).where(
        count_t.c.campaign_id == bindparam("campaign_id"),
        count_t.c.unit_code == bindparam("code"),
    ),
)


def dashboard(
    conn: Connection, query: DashboardQuery, actor: Actor, *, today: dt.date
) -> dict[str, Any]:
    code = query.unit_code or actor.unit_code
    head = conn.execute(_HEAD, {"campaign_id": query.campaign_id, "code": code}).first()
    if head is None or not actor.concerned_by(head.organizer_path):
        raise NotFound(f"活动 {query.campaign_id} 不存在")
    if head.unit_id is None or not actor.sees(head.unit_path):
        raise NotFound(f"单位 {code} 不存在")
    unit = _Unit(head.unit_id, head.unit_code, head.unit_path)
    rules = RULES.get(conn, head.id, head.rules_token)
    overdue_states = _overdue_states(rules, today)
    write_pending(conn)  # a transaction's own moves are counted at its commit: write them first
    # The rest of the dashboard's reads depend only on the unit found: one round trip for all.
    lower, upper = subtree_bounds(unit.path)
    dialect = conn.dialect.name
    unit_rows, counter_rows, sent_rows, ancestors, fund_values, renewal_rows, subtree_rows = (
        driver_batch(
            conn,
            [
                (_UNITS, {"unit_id": unit.id}),
                (_COUNTERS, {"campaign_id": head.id, "code": unit.code}),
                (_SENT, {"campaign_id": head.id, "code": unit.code}),
                (_ANCESTORS[dialect], {"codes": path_codes(unit.path)}),
                (FUND_ROWS, {"campaign_id": head.id}),
                (_RENEWALS, {"campaign_id": head.id, "lower": lower, "upper": upper}),
                (_SUBTREE_COUNTS, {"campaign_id": head.id, "code": unit.code}),
            ],
        )
    )
    own: dict[str, int] = {}
    units = _children(unit_rows, counter_rows, dict(sent_rows), unit, overdue_states, own)
    return {
        "campaign": {"id": head.id, "name": head.name, "year": head.year},
        "unit": {
            "code": unit.code,
            "name": head.unit_name,
            "level": head.unit_level,
            # The materialised path names the parent: no query.
            "parent": path_codes(unit.path)[-2] if head.unit_parent_id is not None else None,
            "breadcrumb": _breadcrumb(ancestors, unit.path, actor),
        },
        "phase": _phase(rules, today),
        "states": {state: own.get(state, 0) for state in FUNNEL},
        "total": sum(own.values()),
        "overdue": _overdue(own, overdue_states),
        "units": units,
        "funds": _funds([fund_row(values) for values in fund_values], head.id),
        "renewals": _renewals(renewal_rows),
        "statistics": _tables(head.statistics),
        "deadlines": _deadlines(conn, head.id, unit, own, today, rules, subtree_rows),
    }


@dataclass(frozen=True, slots=True)
class _Unit:
    id: int
    code: str
    path: str


def _children(
    rows: list[tuple[Any, ...]],
    counter_rows: list[tuple[Any, ...]],
    sent: dict[str, int],
    unit: _Unit,
    overdue_states: set[str],
    own: dict[str, int],
) -> list[dict[str, Any]]:
    """The child units as shown (the rows of _UNITS, with their counters from the rows of
    _COUNTERS and the reminders sent to them from _SENT's); the unit's own counters are put
    into `own`."""
    counters = {row[0]: row[1:] for row in counter_rows}
    mine = counters.get(unit.code)
    if mine is not None:
        own.update(states_of(mine))
    # A district has ~500 children: each is shaped from its row's columns directly (a quarter of
    # the CPU of going through its states).
    overdue_mask = [state in overdue_states for state in STATES]
    out = []
    for code, name, level in rows:
        columns = counters.get(code)
        if columns is None:  # no counters row: no case of the campaign has been there
            states, total, overdue = {}, 0, 0
        else:
            states, total = states_of(columns), sum(columns)
            overdue = sum(compress(columns, overdue_mask))
        out.append(
            {
                "code": code,
                "name": name,
                "level": level,
                "states": states,
                "total": total,
                "overdue": overdue,
                "reminders_sent": sent.get(code, 0),
            }
        )
    return out


_RENEWALS = (
    select(case_t.c.state, func.count())
    .select_from(case_t.join(unit_t, unit_t.c.id == case_t.c.unit_id))
    .where(
        case_t.c.campaign_id == bindparam("campaign_id"),
        case_t.c.renewal_of.is_not(None),
        # in_subtree's range, its bounds bound per call
        unit_t.c.path >= bindparam("lower"),
        unit_t.c.path < bindparam("upper"),
    )
    .group_by(case_t.c.state)
)


def _renewals(rows: list[tuple[Any, ...]]) -> dict[str, Any]:
    """Renewal cases (续助) of the subtree, per state (the rows of _RENEWALS): read through the
    partial index of renewals (ix_case_renewals), so the count costs the renewals, not the
    campaign's cases."""
    states = {str(state): int(n) for state, n in rows}
    return {"total": sum(states.values()), "states": states}


_ANCESTORS = {
    dialect: select(unit_t.c.code, unit_t.c.name, unit_t.c.path).where(
        id_in(unit_t.c.code, "codes", dialect)
    )
    for dialect in ("postgresql", "sqlite")
}


def _breadcrumb(rows: list[tuple[Any, ...]], path: str, actor: Actor) -> list[dict[str, str]]:
    """The unit's ancestors and itself (the rows of _ANCESTORS: code, name, path), those the
    actor sees, from the root down."""
    by_code = {code: (name, unit_path) for code, name, unit_path in rows}
    return [
        {"code": c, "name": by_code[c][0]}
        for c in path_codes(path)
        if c in by_code and actor.sees(by_code[c][1])
    ]


def _overdue_states(rules: CampaignRules, today: dt.date) -> set[str]:
    """States whose cases should have left them by now: each state's latest phase end among
    the phases that name it (`cases_leave`), as load_campaign writes campaign_state_deadline —
    read from the compiled rules (cached per revision), not from the table."""
    leave_by: dict[str, dt.date] = {}
    for phase in rules.phases:
        for state in phase.cases_leave:
            leave_by[state] = max(phase.ends, leave_by.get(state, phase.ends))
    return {state for state, day in leave_by.items() if day < today}


def _phase(rules: CampaignRules, today: dt.date) -> dict[str, Any]:
    """The campaign's phases from its compiled rules (in position order, cached per revision)."""
    phases = rules.phases
    calendar = rules.calendar
    current = next((p for p in phases if p.starts <= today <= p.ends), None)
    upcoming = next((p for p in phases if p.starts > today), None)

    def describe(p: Any) -> dict[str, Any]:
        return {
            "key": p.key,
            "name": p.name,
            "starts": p.starts.isoformat(),
            "ends": p.ends.isoformat(),
        }

    out: dict[str, Any] = {
        "current": describe(current) if current else None,
        "next": describe(upcoming) if upcoming else None,
        "all": [describe(p) for p in phases],
    }
    if current is not None:
        out["working_days_left"] = _working_days(calendar, today, current.ends)
    return out


def _working_days(calendar: Any, today: dt.date, end: dt.date) -> int | None:
    try:
        return int(calendar.working_days_between(today, end))
    except ValueError:  # the calendar of that year is not known
        return None


def _funds(rows: list[FundRow], campaign_id: int) -> dict[str, Any]:
    """The funds per source and per donor's fund as their rows hold them — kept by every
    transition that moves money, in its transaction, as the case counters are. Recounting the
    campaign's funded cases on every view (a province: hundreds of thousands) was the
    dashboard's largest cost; that recount is the reconciliation's (资金对账,
    `GET /api/campaigns/{id}/funds` and the payments page), which the answer links to."""
    total = {
        "budget": sum(b.budget_fen for b in rows),
        "reserved": sum(b.reserved_fen for b in rows),
        "paid": sum(b.paid_fen for b in rows),
    }
    return {
        "sources": [
            {
                "source": b.source,
                "donor": None if b.donor_id is None else {"id": b.donor_id, "name": b.donor_name},
                "budget": format_yuan(b.budget_fen),
                "reserved": format_yuan(b.reserved_fen),
                "paid": format_yuan(b.paid_fen),
                "available": format_yuan(b.free_fen),
            }
            for b in rows
        ],
        "budget": format_yuan(total["budget"]),
        "reserved": format_yuan(total["reserved"]),
        "paid": format_yuan(total["paid"]),
        "available": format_yuan(total["budget"] - total["reserved"] - total["paid"]),
        "reconciliation": f"/api/campaigns/{campaign_id}/funds",
    }


def _tables(spec: dict[str, Any] | None) -> list[dict[str, str]]:
    """The statistics tables the campaign names (what its export holds), from its row."""
    return [
        {"key": key, "title": BY_KEY[key].title, "source": BY_KEY[key].source}
        for key in tables_named(spec)
    ]


def _deadlines(
    conn: Connection,
    campaign_id: int,
    unit: _Unit,
    own: dict[str, int],
    today: dt.date,
    rules: CampaignRules,
    subtree_rows: list[tuple[Any, ...]],
) -> list[dict[str, Any]]:
    """The campaign's deadlines (from its compiled rules, cached per revision) and how far
    the unit's subtree is with each."""
    out = []
    calendar = rules.calendar
    subtree = _Subtree(subtree_rows)
    for d in rules.deadlines:
        item: dict[str, Any] = {
            "key": d.key,
            "title": d.title,
            "due": d.due.isoformat(),
            "responsible_level": d.responsible_level,
            "responsible": responsible_label(d.responsible_level, d.responsible),
            "working_days_left": _working_days(calendar, today, d.due),
            "passed": d.due < today,
        }
        if "no_cases_in" in d.done_when and "reached_level" in d.done_when:
            # Which approval level a case waits at is on its row, not in the counters.
            pending = conn.execute(
                select(func.count())
                .select_from(case_t.join(unit_t, unit_t.c.id == case_t.c.unit_id))
                .where(
                    case_t.c.campaign_id == campaign_id,
                    in_subtree(unit_t.c.path, unit.path),
                    still_owed(conn, campaign_id, d.done_when),
                )
            ).scalar_one()
            item.update(pending_cases=int(pending), done=pending == 0)
        elif "no_cases_in" in d.done_when:
            states = set(d.done_when["no_cases_in"])
            pending = sum(n for s, n in own.items() if s in states)
            item.update(pending_cases=pending, done=pending == 0)
        else:
            kind = str(d.done_when.get("report_submitted"))
            responsibility = Responsibility.of(d.responsible_level, d.responsible)
            owing = _units_owing(conn, campaign_id, unit, kind, responsibility, subtree)
            item.update(report=kind, units_owing=owing, done=owing == 0)
        out.append(item)
    return out


class _Subtree:
    """The unit's subtree counts (the rows of _SUBTREE_COUNTS): units per level, and the units
    that filed each report kind per level (units.counts, statistics.report_counts)."""

    def __init__(self, rows: list[tuple[Any, ...]]) -> None:
        self._units: dict[str, int] = {}
        self._reported: dict[tuple[str, str], int] = {}
        for kind, level, n in rows:
            if kind is None:
                self._units[level] = n
            else:
                self._reported[kind, level] = n

    def owing(self, kind: str, levels: tuple[str, ...] | None) -> int:
        """Units of `levels` (None: any) in the subtree that have not filed `kind`."""
        return sum(
            n - self._reported.get((kind, level), 0)
            for level, n in self._units.items()
            if levels is None or level in levels
        )


def _subtree_counts() -> CompoundSelect[Any]:
    """One statement: the subtree's units per level (kind NULL), then its units that filed
    each kind per level."""
    units, reports = UNIT_COUNTS.table.c, REPORT_COUNTS.table.c
    return union_all(
        select(cast(null(), String).label("kind"), units.level, units.n).where(
            units.unit_code == bindparam("code"), units.n != 0
        ),
        select(reports.kind, reports.level, reports.n).where(
            reports.campaign_id == bindparam("campaign_id"),
            reports.unit_code == bindparam("code"),
            reports.n != 0,
        ),
    )


_SUBTREE_COUNTS = _subtree_counts()


def _units_owing(
    conn: Connection,
    campaign_id: int,
    unit: Any,
    kind: str,
    responsibility: Responsibility,
    subtree: _Subtree,
) -> int:
    """Responsible units of the subtree without the report. A set given by level alone (the
    usual one) is a difference of pre-aggregated rows; one naming a parent or units is small by
    construction and counted from the units."""
    if responsibility.parent is None and responsibility.units is None:
        return subtree.owing(kind, responsibility.levels)
    return int(
        conn.execute(
            select(func.count())
            .select_from(unit_t)
            .where(
                *responsibility.where(),
                in_subtree(unit_t.c.path, unit.path),
                ~select(report_t.c.id)
                .where(
                    report_t.c.campaign_id == campaign_id,
                    report_t.c.unit_id == unit_t.c.id,
                    report_t.c.kind == kind,
                )
                .exists(),
            )
        ).scalar_one()
    )
