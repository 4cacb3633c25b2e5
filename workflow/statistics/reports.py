"""Units submit reports (a district's statistics table): what `report_submitted` waits for.

Each report kind declares the figures it carries, with their type and range; anything else is
refused, naming the item. The statistics tables take the figures no case records from the
`statistics` kind (its items are the tables' `input` items, so they are declared once). A
resubmission is a new revision: the latest counts, every revision stays in the table."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from sqlalchemy import Connection, func, insert, select
from sqlalchemy.exc import IntegrityError

from jinqiu.workflow.campaigns.models import CampaignDeadline
from jinqiu.workflow.clock import Clock
from jinqiu.workflow.errors import Conflict, PermissionDenied, ValidationFailed
from jinqiu.workflow.roles import Actor, Grant
from jinqiu.workflow.statistics.models import ReportSubmission
from jinqiu.workflow.statistics.report_counts import count_first_report
from jinqiu.workflow.statistics.tables import STATISTICS_KIND, TABLES
from jinqiu.workflow.units.models import Unit, in_subtree

report_t = ReportSubmission.__table__  # type: ignore[attr-defined]
unit_t = Unit.__table__  # type: ignore[attr-defined]
deadline_t = CampaignDeadline.__table__  # type: ignore[attr-defined]

# Sane ceilings: a province-wide campaign counts far fewer than ten million of anything and
# raises far less than ten billion yuan (10^12 fen); above that a figure is a typo or an attack.
MAX_COUNT = 10_000_000
MAX_MONEY_FEN = 10**12
MAX_PROBLEMS = 20  # listed in one refusal; the first is named in the message
MAX_TEXT = 32  # characters of a figure written as a string
FigureType = Literal["count", "money"]


@dataclass(frozen=True)
class Figure:
    code: str  # "H", "donors", "employment.01A" (nested {"employment": {"01A": …}} is the same)
    label: str
    unit: str  # 人, 人次, 个, 万元, 元 …
    type: FigureType
    max: Decimal
    places: int  # decimals allowed (money: 元 to the fen, 万元 to the yuan as the tables print)


@dataclass(frozen=True)
class ReportKind:
    key: str
    title: str
    figures: Mapping[str, Figure] = field(default_factory=dict)


class ReportAlreadySubmitted(Conflict):
    """Kept for the contract's error list; a resubmission is now a new revision instead."""

    code = "report_already_submitted"


def _figure(code: str, label: str, unit: str) -> Figure:
    if unit == "万元":
        return Figure(code, label, unit, "money", Decimal(MAX_MONEY_FEN) / 1_000_000, 4)
    if unit == "元":
        return Figure(code, label, unit, "money", Decimal(MAX_MONEY_FEN) / 100, 2)
    return Figure(code, label, unit, "count", Decimal(MAX_COUNT), 0)


def _table_figures(kind: str) -> dict[str, Figure]:
    """The `input` items every statistics table takes from reports of `kind`, declared once,
    by the code they are filed under. Two tables may label one code differently; its type
    must agree."""
    out: dict[str, Figure] = {}
    for table in TABLES:
        for item in table.items:
            if item.input is None or item.kind != kind:
                continue
            figure = _figure(item.input, item.label, item.unit)
            known = out.setdefault(item.input, figure)
            if known.type != figure.type:
                raise RuntimeError(
                    f"statistics input {item.input} is both {known.type} and {figure.type}"
                )
    return out


REPORT_KINDS: dict[str, ReportKind] = {
    k.key: k
    for k in (
        ReportKind(STATISTICS_KIND, "活动总结和统计表", _table_figures(STATISTICS_KIND)),
        ReportKind("demand_summary", "资金需求情况汇总表", _table_figures("demand_summary")),
        ReportKind("interim", "阶段性情况报告"),
    )
}


def report_kind(conn: Connection, campaign_id: int, key: str) -> ReportKind:
    """A declared kind, or one the campaign's own deadlines wait for (a report without figures)."""
    if key in REPORT_KINDS:
        return REPORT_KINDS[key]
    for (done_when,) in conn.execute(
        select(deadline_t.c.done_when).where(deadline_t.c.campaign_id == campaign_id)
    ):
        if isinstance(done_when, dict) and done_when.get("report_submitted") == key:
            return ReportKind(key, key)
    raise ValidationFailed(
        f"未知的报表类型 {key}",
        [
            {
                "field": "kind",
                "code": "unknown_report_kind",
                "message": f"可选：{', '.join(REPORT_KINDS)}，或本活动截止事项所列的报表",
            }
        ],
    )


def check_figures(kind: ReportKind, figures: Mapping[str, Any]) -> dict[str, int | str]:
    """The figures flattened to their codes and checked against the kind's declaration:
    {"H": 12, "employment.09B": "1.5"}. Every problem names its item (figures.<code>)."""
    problems: list[dict[str, str]] = []
    out: dict[str, int | str] = {}

    def refuse(code: str, kind_: str, message: str) -> None:
        problems.append({"field": f"figures.{code}", "code": kind_, "message": message})

    for code, value in _flatten(figures):
        if len(problems) >= MAX_PROBLEMS:
            break
        figure = kind.figures.get(code)
        if figure is None:
            refuse(
                code,
                "unknown_item",
                f"报表 {kind.key} 没有该项目" if kind.figures else f"报表 {kind.key} 不报送数据项",
            )
        elif code in out:
            refuse(code, "duplicate_item", "该项目填写了两次")
        else:
            checked = _check(figure, value)
            if isinstance(checked, tuple):
                refuse(code, *checked)
            else:
                out[code] = checked
    if problems:
        first = problems[0]
        raise ValidationFailed(f"输入有误：{first['field']} {first['message']}", problems)
    return out


def _flatten(figures: Mapping[str, Any]) -> list[tuple[str, Any]]:
    pairs: list[tuple[str, Any]] = []
    for key, value in figures.items():
        if isinstance(value, dict):
            pairs.extend((f"{key}.{sub}", v) for sub, v in value.items())
        else:
            pairs.append((str(key), value))
    return pairs


def _check(figure: Figure, value: Any) -> int | str | tuple[str, str]:
    """The stored value, or (error code, message)."""
    count = figure.type == "count"
    wrong = ("int_type", "须为整数") if count else ("decimal_type", "须为金额：整数或十进制字符串")
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        return wrong
    text = str(value).strip()
    too_big = ("less_than_equal", f"数值过大（上限 {figure.max:,} {figure.unit}）")
    if len(text) > MAX_TEXT:
        return too_big
    if count and not (text.isascii() and text.lstrip("-").isdigit()):
        return ("int_parsing", "须为整数")
    try:
        number = Decimal(text)
    except InvalidOperation:
        return ("decimal_parsing", "须为金额：整数或十进制字符串")
    if not number.is_finite():
        return ("finite_number", "须为有限的数")
    if number < 0:
        return ("greater_than_equal", "不能为负数")
    if number > figure.max:
        return too_big
    exponent = number.normalize().as_tuple().exponent
    if isinstance(exponent, int) and -exponent > figure.places:
        return ("decimal_max_places", f"最多 {figure.places} 位小数")
    if count:
        return int(number)
    return format(number.quantize(Decimal(1).scaleb(-figure.places)).normalize(), "f")


@dataclass(frozen=True)
class Submitted:
    id: int
    revision: int


def submit_report(
    conn: Connection,
    *,
    campaign_id: int,
    unit_code: str,
    kind: str,
    note: str | None,
    actor: Actor,
    clock: Clock,
    figures: Mapping[str, Any] | None = None,
) -> Submitted:
    """Files a report; filing the same kind again for the unit is its next revision."""
    if not actor.may(Grant.SUBMIT_REPORT):
        raise PermissionDenied("当前角色无权报送")
    unit = conn.execute(
        select(unit_t.c.id, unit_t.c.path, unit_t.c.level).where(unit_t.c.code == unit_code)
    ).first()
    if unit is None or not actor.sees(unit.path):
        raise ValidationFailed(
            f"单位 {unit_code} 不存在",
            [{"field": "unit", "code": "unknown_unit", "message": "单位不存在"}],
        )
    declared = report_kind(conn, campaign_id, kind)
    checked = check_figures(declared, figures or {})
    for _attempt in range(3):  # two filings at once: the loser takes the next revision
        latest = conn.execute(
            select(func.max(report_t.c.revision)).where(
                report_t.c.campaign_id == campaign_id,
                report_t.c.unit_id == unit.id,
                report_t.c.kind == kind,
            )
        ).scalar_one()
        revision = int(latest or 0) + 1
        try:
            with conn.begin_nested():
                report_id = conn.execute(
                    insert(report_t)
                    .values(
                        campaign_id=campaign_id,
                        unit_id=unit.id,
                        kind=kind,
                        revision=revision,
                        note=note,
                        figures=checked,
                        submitted_by=actor.username,
                        submitted_at=clock.now(),
                    )
                    .returning(report_t.c.id)
                ).scalar_one()
                if revision == 1:  # the unit's first filing of the kind: it no longer owes it
                    count_first_report(conn, campaign_id, kind, unit.path, unit.level)
            return Submitted(id=int(report_id), revision=revision)
        except IntegrityError:
            continue
    raise Conflict("该报表正被同时报送，请稍后重试", {"unit": unit_code, "kind": kind})


def report_revisions(
    conn: Connection,
    campaign_id: int,
    path: str,
    *,
    kind: str | None = None,
    limit: int = 100,
    unit_id: int | None = None,
) -> list[dict[str, Any]]:
    """Every revision filed by the units of the subtree at `path` (or by the unit `unit_id`
    alone: the reports page's history), newest first; `latest` marks the one that counts."""
    newest = (
        select(report_t.c.unit_id, report_t.c.kind, func.max(report_t.c.revision).label("top"))
        .where(report_t.c.campaign_id == campaign_id)
        .group_by(report_t.c.unit_id, report_t.c.kind)
        .subquery()
    )
    query = (
        select(report_t, unit_t.c.code.label("unit_code"), newest.c.top)
        .join(unit_t, unit_t.c.id == report_t.c.unit_id)
        .join(newest, (newest.c.unit_id == report_t.c.unit_id) & (newest.c.kind == report_t.c.kind))
        .where(report_t.c.campaign_id == campaign_id, in_subtree(unit_t.c.path, path))
    )
    if kind is not None:
        query = query.where(report_t.c.kind == kind)
    if unit_id is not None:
        query = query.where(report_t.c.unit_id == unit_id)
    rows = conn.execute(
        query.order_by(report_t.c.submitted_at.desc(), report_t.c.id.desc()).limit(limit)
    )
    return [
        {
            "id": r.id,
            "unit": r.unit_code,
            "kind": r.kind,
            "revision": r.revision,
            "latest": r.revision == r.top,
            "note": r.note,
            "figures": r.figures or {},
            "submitted_by": r.submitted_by,
            "submitted_at": r.submitted_at,
        }
        for r in rows
    ]
