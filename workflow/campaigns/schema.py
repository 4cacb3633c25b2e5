"""The campaign file (docs/CONTRACT.md), validated field by field before anything is written."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from decimal import Decimal
from functools import cached_property
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from jinqiu.states import CaseEvent, CaseState
from jinqiu.workflow.campaigns.documents import DocumentKind
from jinqiu.workflow.money import (
    MAX_BUDGET_FEN,
    MAX_CASE_AMOUNT_FEN,
    InvalidAmount,
    yuan_to_fen,
)
from jinqiu.workflow.units.models import UnitLevel

EducationLevel = Literal[
    "preschool",
    "primary",
    "junior",
    "senior",
    "vocational",
    "college",
    "undergraduate",
    "postgraduate",
    "special",  # 特殊教育 (Bozhou: 接受特殊教育的残疾儿童)
]
FundSourceName = Literal["government", "donation", "union", "other"]
ApprovalLevel = Literal["province", "city", "district", "grassroots"]
# The printable forms a campaign's notice prescribes (workflow/forms): Dalian's approval
# registration forms (附件1 当年考入大学 / 附件2 大学在读, by the student) and Weihai's 摸底表 (附件3).
FormName = Literal["dalian_approval", "weihai_survey"]
# A code the campaign gives one of its categories, application types or form fields.
Code = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[a-z][a-z0-9_]*$")]
# Where a rule comes from: a sentence copied verbatim from the campaign's notice, or a local
# decision with its reason (LOCAL_DECISION first) where the notice is silent.
LOCAL_DECISION = "本地决定："
Source = Annotated[str, Field(min_length=2, max_length=500)]

# How far a campaign's reminders reach, in working days (the sweep walks them), and how long
# after a due date the sweep still reminds: what a campaign's calendar must cover.
MAX_WORKING_DAYS = 30
LOOKBACK = dt.timedelta(days=120)

CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# Working-day offsets: a campaign spans a season, so a few dozen at most (the sweep walks them).
WorkingDays = Annotated[int, Field(strict=True, ge=0, le=MAX_WORKING_DAYS)]
CalendarYear = Annotated[int, Field(strict=True, ge=2000, le=2100)]


def exact_money(max_fen: int) -> Callable[[object], object]:
    """Yuan as an integer or a plain decimal string: never a float, never below a fen, never
    negative, never above `max_fen` (workflow/money.py's documented maxima)."""

    def check(v: object) -> object:
        if isinstance(v, float):
            raise ValueError("金额须写成整数或字符串，不能是浮点数")
        if isinstance(v, (int, str, Decimal)) and not isinstance(v, bool):
            try:
                yuan_to_fen(v, max_fen=max_fen)
            except InvalidAmount as exc:
                raise ValueError(str(exc)) from exc
        return v

    return check


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*")
    @classmethod
    def _no_control_characters(cls, v: object) -> object:
        # NUL cannot be stored by PostgreSQL; the others garble mails, pages and terminals.
        if isinstance(v, str) and CONTROL_CHARACTERS.search(v):
            raise ValueError("不能包含控制字符（如 NUL、换行、制表符）")
        return v


class Phase(_Strict):
    key: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    starts: dt.date
    ends: dt.date
    cases_leave: list[CaseState] = Field(default_factory=list, max_length=10)
    source: Source | None = None

    @field_validator("ends")
    @classmethod
    def _ordered(cls, ends: dt.date, info: ValidationInfo) -> dt.date:
        starts = info.data.get("starts")
        if starts is not None and ends < starts:
            raise ValueError("阶段结束日期早于开始日期")
        return ends


class DoneWhen(_Strict):
    """A deadline is met when no case is left in `no_cases_in` — and, with `reached_level`, none
    is still waiting in approval at a level before that one (Dalian 8/10: the package sent to the
    city carries the 审查 and 审核 opinions: every case waits for the city's 审批) — or when the
    units have submitted the report `report_submitted`."""

    no_cases_in: list[CaseState] | None = Field(default=None, max_length=20)
    reached_level: ApprovalLevel | None = None
    report_submitted: str | None = Field(default=None, max_length=64)

    @model_validator(mode="after")
    def _one(self) -> Self:
        if (self.no_cases_in is None) == (self.report_submitted is None):
            raise ValueError("done_when 须且只能给出 no_cases_in 或 report_submitted 之一")
        if self.reached_level is not None and self.no_cases_in is None:
            raise ValueError("done_when.reached_level 只能与 no_cases_in 一起给出")
        return self


class Responsible(_Strict):
    """The set of units a deadline falls on, within the organizer's tree: those at `levels`,
    those whose parent is the unit `parent`, those `units` listed — every criterion given must
    hold (Weihai 7/31 "市直各单位": parent WH, levels industry and grassroots)."""

    levels: list[UnitLevel] | None = Field(default=None, min_length=1, max_length=6)
    parent: str | None = Field(default=None, min_length=1, max_length=64)
    units: list[Annotated[str, Field(min_length=1, max_length=64)]] | None = Field(
        default=None, min_length=1, max_length=500
    )
    label: str = Field(min_length=1, max_length=100)  # 市直各单位, 各区市总工会 …

    @model_validator(mode="after")
    def _some(self) -> Self:
        if self.levels is None and self.parent is None and self.units is None:
            raise ValueError("responsible 须给出 levels、parent、units 中至少一项")
        return self


class Deadline(_Strict):
    key: str = Field(min_length=1, max_length=64)
    title: str = Field(min_length=1, max_length=300)
    due: dt.date
    # By level (every unit acting at that level: district includes industry unions), or a set.
    responsible_level: UnitLevel | None = None
    responsible: Responsible | None = None
    done_when: DoneWhen
    source: Source | None = None

    @model_validator(mode="after")
    def _one_responsibility(self) -> Self:
        if (self.responsible_level is None) == (self.responsible is None):
            raise ValueError("截止事项须且只能给出 responsible_level 或 responsible 之一")
        return self


class Reminders(_Strict):
    """Offsets in working days, a few dozen at most: the sweep walks the calendar that far."""

    before_working_days: list[WorkingDays] = Field(default_factory=lambda: [3, 1, 0], max_length=10)
    overdue_every_working_days: int = Field(default=1, strict=True, ge=1, le=MAX_WORKING_DAYS)
    escalate_after_working_days: int = Field(default=2, strict=True, ge=0, le=MAX_WORKING_DAYS)


class Eligibility(_Strict):
    """The archive rule: a worker in the hardship archive, archived no longer than
    `archive_max_age_months` before `archive_reference_date` (Weihai: "建档满1年的困难职工需要
    重新申报", by the 7/31 submission). Checked against that fixed date, never against today, so
    a case's answer never changes as the season passes. No age limit when the notice sets none."""

    archive_max_age_months: int | None = Field(default=None, strict=True, ge=1, le=120)
    archive_reference_date: dt.date | None = None
    source: Source | None = None

    @model_validator(mode="after")
    def _dated(self) -> Self:
        if self.archive_max_age_months is not None and self.archive_reference_date is None:
            raise ValueError(
                "给出建档时限 archive_max_age_months 时须给出参照日期 archive_reference_date"
            )
        return self


class CategoryCondition(_Strict):
    """A category that holds only when a yes/no field of the application form is yes (Bozhou
    (三) "在城市上学的…")."""

    form_field: Code
    label: str = Field(min_length=1, max_length=100)


class CategorySpec(_Strict):
    """Whom the notice serves (服务对象 / 活动对象): code, label, its sentence, and whether a
    worker of this category is aided without being in the archive."""

    code: Code
    label: str = Field(min_length=1, max_length=100)
    source: Source
    waives_archive_check: bool = Field(default=False, strict=True)
    condition: CategoryCondition | None = None


class FormField(_Strict):
    """One field of an application form (申请表 / 审批登记表) beyond the survey form's own."""

    key: Code
    label: str = Field(min_length=1, max_length=100)
    kind: Literal["text", "yes_no", "year", "number"] = "text"
    required: bool = Field(default=False, strict=True)
    source: Source | None = None


class RequiredDocument(_Strict):
    kind: DocumentKind
    label: str = Field(min_length=1, max_length=100)  # as the notice names it
    source: Source


class ApplicationType(_Strict):
    """A kind of application the notice names (Bozhou 附件1 新入校 / 附件2 在校"圆梦计划";
    Dalian 当年考入 / 大学在读): its form's fields and the documents a submit requires."""

    code: Code
    label: str = Field(min_length=1, max_length=100)
    source: Source
    fields: list[FormField] = Field(default_factory=list, max_length=40)
    documents: list[RequiredDocument] = Field(default_factory=list, max_length=20)

    @model_validator(mode="after")
    def _unique(self) -> Self:
        keys = [f.key for f in self.fields]
        kinds = [d.kind for d in self.documents]
        if len(keys) != len(set(keys)) or len(kinds) != len(set(kinds)):
            raise ValueError(f"申请类型 {self.code} 的表单字段或材料重复")
        return self


# Where a rule, an amount or a requirement comes from: the notice's sentence (`source`) or, where
# the notice is silent, the campaign's own decision and why (`local_decision`). Never neither.
Citation = Annotated[str, Field(min_length=2, max_length=500)]


class _Cited(_Strict):
    source: Citation | None = None
    local_decision: Citation | None = None

    @model_validator(mode="after")
    def _cited(self) -> Self:
        if self.source is None and self.local_decision is None:
            raise ValueError("须注明依据：source（通知原文）或 local_decision（本地决定及理由）")
        return self


class Uplift(_Cited):
    """可适当提高: the last approver may raise the amount by up to `max`, giving the reason (e.g.
    双子女就学) in the opinion."""

    max: Decimal
    when: str = Field(min_length=1, max_length=200)  # 适用情形, shown to the approver

    _exact = field_validator("max", mode="before")(exact_money(MAX_CASE_AMOUNT_FEN))

    @cached_property
    def max_fen(self) -> int:
        return yuan_to_fen(self.max)


AidBasis = Literal["fixed", "tuition_invoice", "range", "up_to"]


class AidRule(_Cited):
    """One standard of a notice. `basis`: a fixed `amount`; the tuition invoice up to `cap`; a
    `range` (min–max, "2000元-4000元") or `up_to` a cap ("不超过2000元/人") within which the last
    approver sets the amount with a reason. Who it is for: an education level, and optionally a
    tier, archived or not (建档), a worker category, only students admitted in the campaign's
    year (当年考入), or only students admitted in the years `enrolled_in` lists (Dalian: "对2009年和
    2010年资助的…以奖学金形式实施资助直至完成学业" — the 2009 and 2010 entrants)."""

    education_level: EducationLevel
    tier: str | None = Field(default=None, max_length=20)
    archived: bool | None = None  # True: 建档困难职工 only; False: those not archived; None: any
    category: str | None = Field(default=None, min_length=1, max_length=64)
    freshman_only: bool = False  # 当年考入: enrollment_year == the campaign's year
    # 考取年度 in these years (a continuing scholar of earlier campaigns); None: any year.
    enrolled_in: list[CalendarYear] | None = Field(default=None, min_length=1, max_length=10)
    basis: AidBasis = "fixed"
    amount: Decimal | None = None
    cap: Decimal | None = None
    min: Decimal | None = None
    max: Decimal | None = None
    uplift: Uplift | None = None

    _exact = field_validator("amount", "cap", "min", "max", mode="before")(
        exact_money(MAX_CASE_AMOUNT_FEN)
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        given = {k for k in ("amount", "cap", "min", "max") if getattr(self, k) is not None}
        needs: dict[str, tuple[set[str], set[str]]] = {  # basis: (required, allowed)
            "fixed": ({"amount"}, {"amount", "cap"}),
            "tuition_invoice": ({"cap"}, {"cap"}),
            "range": ({"min", "max"}, {"min", "max"}),
            "up_to": ({"cap"}, {"cap"}),
        }
        required, allowed = needs[self.basis]
        if missing := sorted(required - given):
            raise ValueError(f"资助标准（{self.basis}）须给出 {'、'.join(missing)}")
        if extra := sorted(given - allowed):
            raise ValueError(f"资助标准（{self.basis}）不接受 {'、'.join(extra)}")
        if self.amount is not None and self.cap is not None and self.amount > self.cap:
            raise ValueError("资助金额 amount 不能超过上限 cap")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("资助区间的下限 min 不能高于上限 max")
        if self.freshman_only and self.enrolled_in is not None:
            raise ValueError(
                "freshman_only 与 enrolled_in 只能给出其一（当年考入即入学年份为活动年度）"
            )
        for what, value in (("cap", self.cap), ("max", self.max), ("min", self.min)):
            if value is not None and value <= 0:
                raise ValueError(f"{what} 须大于 0")
        return self

    # Computed once per rule: a bulk approval asks every case's rule (yuan_to_fen checks bounds
    # and exactness, dearer than the rest of the decision).
    @cached_property
    def amount_fen(self) -> int | None:
        return None if self.amount is None else yuan_to_fen(self.amount)

    @cached_property
    def cap_fen(self) -> int:
        """The most the rule gives before any uplift."""
        ceiling = {"fixed": self.cap or self.amount, "range": self.max}.get(self.basis, self.cap)
        assert ceiling is not None  # _consistent requires it for each basis
        return yuan_to_fen(ceiling)

    @cached_property
    def min_fen(self) -> int:
        """The least the approver may set (range); a fen for up_to."""
        return 1 if self.min is None else yuan_to_fen(self.min)

    @property
    def approver_sets_amount(self) -> bool:
        return self.basis in ("range", "up_to")

    @property
    def specificity(self) -> int:
        """How many conditions beyond the education level the rule names: the most specific
        matching rule wins (a tier's rule over the whole level's, as before)."""
        return sum(
            (
                self.tier is not None,
                self.archived is not None,
                self.category is not None,
                self.freshman_only,
                self.enrolled_in is not None,
            )
        )


OpinionRequirement = Literal["required", "optional"]


class Opinion(_Cited):
    """What a notice asks the approver of an event to write (Dalian: 审查意见 / 审核意见 /
    审批意见, each with a stamp and date): required or not, and its label per approval level."""

    required: bool = True
    levels: list[ApprovalLevel] | None = Field(default=None, max_length=4)  # None: every level
    labels: dict[ApprovalLevel, Annotated[str, Field(min_length=1, max_length=20)]] = Field(
        default_factory=dict, max_length=4
    )


PriorityCriterion = Literal["freshman", "archived"]


class Priority(_Cited):
    """同等条件优先考虑新入学: when a fund cannot cover every case waiting at the last level, cases
    meeting the first criterion come first, then the second …; equal cases by case number."""

    order: list[PriorityCriterion] = Field(min_length=1, max_length=4)


class Fund(_Strict):
    source: FundSourceName
    budget: Decimal = Field(ge=0)

    _exact = field_validator("budget", mode="before")(exact_money(MAX_BUDGET_FEN))


class CalendarOverrides(_Strict):
    holidays: list[dt.date] = Field(default_factory=list, max_length=400)
    workdays: list[dt.date] = Field(default_factory=list, max_length=400)
    years: list[CalendarYear] = Field(default_factory=list, max_length=10)


class FollowUpRule(_Strict):
    """When a paid case's follow-up (回访) is done: `visits_required` visits recorded, the last
    of which closes the case. The notices ask for visits without a number, so the number cites
    the sentence that asks (`source`) or says why the campaign chose it (`local_decision`).

    `closes_on`: the campaign's last day (Weihai: 助学活动…至8月31日结束); from the day after,
    the sweep closes every case still in follow-up (`end_follow_up`). Its own citation
    (`closes_on_source`: the notice's sentence, or 本地决定：…), as the date is not the visits'
    rule. Absent: cases stay in follow-up until visited or closed by hand — a notice that asks
    for visits "while the student is at school" (Dalian) gives no day on which they stop."""

    visits_required: int = Field(strict=True, ge=1, le=12)
    source: str | None = Field(default=None, min_length=1, max_length=500)
    local_decision: str | None = Field(default=None, min_length=1, max_length=500)
    closes_on: dt.date | None = None
    closes_on_source: Source | None = None

    @model_validator(mode="after")
    def _cited(self) -> Self:
        if self.source is None and self.local_decision is None:
            raise ValueError("follow_up 须给出通知原文 source 或本地决定 local_decision")
        if (self.closes_on is None) != (self.closes_on_source is None):
            raise ValueError(
                "follow_up.closes_on 须与 closes_on_source（通知原文或“本地决定：”）一并给出"
            )
        return self


TableKey = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_]+$")]


class CampaignStatistics(_Strict):
    """The statistics tables the notice asks for (keys of workflow.statistics.tables, checked
        when the file is loaded), and its cut-off date: every count stands as at the end of that day
    (workflow/statistics/compute.py)."""

    tables: list[TableKey] = Field(min_length=1, max_length=20)
    cutoff: dt.date | None = None
    source: str | None = Field(default=None, min_length=1, max_length=500)
    local_decision: bool = False  # the notice names no table: the campaign decided

    @model_validator(mode="after")
    def _cited(self) -> Self:
        if len(set(self.tables)) != len(self.tables):
            raise ValueError("statistics.tables 中有重复的统计表")
        if self.source is None and not self.local_decision:
            raise ValueError("statistics 须引用通知原文（source），或标明 local_decision")
        return self


class Note(_Strict):
    """The source of a part of the file that has no `source` field of its own (the funds'
    budgets, the aid rules, the approval levels …): a notice sentence or a local decision."""

    about: str = Field(min_length=1, max_length=64)  # a top-level key: funds, aid_rules …
    source: Source


class CampaignFile(_Strict):
    name: str = Field(min_length=1, max_length=200)
    # The notice this campaign comes from (examples/notices/<notice>.md holds its text).
    notice: str | None = Field(default=None, max_length=64, pattern=r"^[a-z0-9-]+$")
    year: int = Field(strict=True, ge=2000, le=2100)
    organizer: str = Field(min_length=1, max_length=64)
    # 0: the notice asks for no publicity (Dalian 2011): a verified case goes straight to approval.
    publicity_working_days: int = Field(default=5, strict=True, ge=0, le=30)
    approval_levels: list[ApprovalLevel] = Field(min_length=1, max_length=4)
    # By case event (only `approve` asks for one today): the opinion the notice asks for.
    opinions: dict[CaseEvent, Opinion] = Field(default_factory=dict, max_length=4)
    phases: list[Phase] = Field(min_length=1, max_length=20)
    deadlines: list[Deadline] = Field(default_factory=list, max_length=50)
    reminders: Reminders = Field(default_factory=Reminders)
    eligibility: Eligibility = Field(default_factory=Eligibility)
    categories: list[CategorySpec] = Field(default_factory=list, max_length=20)
    application_types: list[ApplicationType] = Field(default_factory=list, max_length=10)
    aid_rules: list[AidRule] = Field(min_length=1, max_length=100)
    aid_priority: Priority | None = None
    funds: list[Fund] = Field(min_length=1, max_length=10)
    calendar: CalendarOverrides = Field(default_factory=CalendarOverrides)
    # Absent: a case in follow-up closes with a bare `close`, as before the rule existed.
    follow_up: FollowUpRule | None = None
    # The first is a case's form (GET /api/cases/{id}/form); none: the campaign prints no form.
    forms: list[FormName] = Field(default_factory=list, max_length=2)
    statistics: CampaignStatistics | None = None  # None: every table, no cut-off
    notes: list[Note] = Field(default_factory=list, max_length=50)

    @model_validator(mode="after")
    def _unique_keys(self) -> Self:
        for what, keys in (
            ("phases", [p.key for p in self.phases]),
            ("deadlines", [d.key for d in self.deadlines]),
            ("funds", [f.source for f in self.funds]),
            ("forms", list(self.forms)),
            ("categories", [c.code for c in self.categories]),
            ("application_types", [a.code for a in self.application_types]),
        ):
            if len(keys) != len(set(keys)):
                raise ValueError(f"{what} 中有重复的 key")
        closes_on = None if self.follow_up is None else self.follow_up.closes_on
        if closes_on is not None and closes_on < min(p.starts for p in self.phases):
            raise ValueError("follow_up.closes_on 早于活动的第一个阶段开始日期")
        if len(set(self.approval_levels)) != len(self.approval_levels):
            raise ValueError("approval_levels 中有重复的层级")
        for d in self.deadlines:
            if d.done_when.reached_level not in (None, *self.approval_levels):
                raise ValueError(
                    f"deadlines {d.key} 的 done_when.reached_level 不在 approval_levels 中："
                    f"{d.done_when.reached_level}"
                )
        for event, opinion in self.opinions.items():
            named = set(opinion.levels or ()) | set(opinion.labels)
            if stray := sorted(named - set(self.approval_levels)):
                raise ValueError(f"opinions.{event} 提到的层级不在 approval_levels 中：{stray}")
        return self
