"""What a campaign file must satisfy beyond its fields' own shapes, checked before it is written
(API and CLI both load through `load_campaign`): its dates lie in its year, and the working-day
calendar is known for every day the engine and the sweep will ever count for it — so no
campaign can make the sweep fail later."""

from __future__ import annotations

import datetime as dt
import json

from jinqiu.states import CaseState
from jinqiu.workflow.calendar import CalendarUnknown, WorkingCalendar
from jinqiu.workflow.campaigns.schema import LOOKBACK, CampaignFile

Problem = dict[str, str]


def campaign_problems(spec: CampaignFile) -> list[Problem]:
    """Every problem, each naming its field (as `ValidationFailed.details`)."""
    problems = (
        _outside_the_year(spec) + _conditions_without_a_field(spec) + _entrants_of_later_years(spec)
    )
    if problems:
        return problems  # the calendar check would only repeat them
    missing = uncovered_years(spec)
    if missing:
        years = sorted({*spec.calendar.years, *missing})
        named = "、".join(str(y) for y in missing)
        problems.append(
            {
                "field": "calendar",
                "code": "calendar_unknown",
                "message": (
                    f"{named} 年的法定节假日安排未知（活动的阶段、公示期、截止日前提醒或逾期通知会用到）："
                    f'请在活动文件的 calendar 中补充，例如 "calendar": {{"years": {json.dumps(years)}}}'
                    "（该年按周一至周五为工作日），并在 holidays、workdays 中列出该年的放假日和调休上班日"
                ),
            }
        )
    return problems


def _outside_the_year(spec: CampaignFile) -> list[Problem]:
    dated = [
        (f"phases.{i}.{end}", getattr(p, end))
        for i, p in enumerate(spec.phases)
        for end in ("starts", "ends")
    ]
    dated += [(f"deadlines.{i}.due", d.due) for i, d in enumerate(spec.deadlines)]
    if spec.statistics is not None and spec.statistics.cutoff is not None:
        dated.append(("statistics.cutoff", spec.statistics.cutoff))
    return [
        {
            "field": field,
            "code": "outside_campaign_year",
            "message": f"日期 {day.isoformat()} 不在活动年度 {spec.year} 年内",
        }
        for field, day in dated
        if day.year != spec.year
    ]


def _conditions_without_a_field(spec: CampaignFile) -> list[Problem]:
    """A category's condition names a yes/no field some application type's form asks."""
    asked = {f.key for a in spec.application_types for f in a.fields if f.kind == "yes_no"}
    return [
        {
            "field": f"categories.{i}.condition.form_field",
            "code": "unknown_form_field",
            "message": (
                f"类别「{c.label}」的条件「{c.condition.label}」所用的 {c.condition.form_field} "
                "不是任何申请类型表单中的是/否项"
            ),
        }
        for i, c in enumerate(spec.categories)
        if c.condition is not None and c.condition.form_field not in asked
    ]


def _entrants_of_later_years(spec: CampaignFile) -> list[Problem]:
    """A rule for earlier entrants (enrolled_in) names no year after the campaign's."""
    return [
        {
            "field": f"aid_rules.{i}.enrolled_in",
            "code": "outside_campaign_year",
            "message": f"入学年份 {max(r.enrolled_in)} 晚于活动年度 {spec.year} 年",
        }
        for i, r in enumerate(spec.aid_rules)
        if r.enrolled_in is not None and max(r.enrolled_in) > spec.year
    ]


def uncovered_years(spec: CampaignFile) -> list[int]:
    """The years neither the official calendar nor the campaign's overrides know, among those
    the campaign's working-day counts touch. Each pass finds one; a campaign spans a few years."""
    missing: list[int] = []
    for _ in range(12):
        calendar = WorkingCalendar(
            holidays=frozenset(spec.calendar.holidays),
            workdays=frozenset(spec.calendar.workdays),
            known_years=frozenset([*spec.calendar.years, *missing]),
        )
        try:
            _count_every_day_the_campaign_will(spec, calendar)
        except CalendarUnknown as exc:
            if exc.year in missing:
                break  # cannot happen: a year in `years` is known
            missing.append(exc.year)
            continue
        break
    return sorted(missing)


def _count_every_day_the_campaign_will(spec: CampaignFile, calendar: WorkingCalendar) -> None:
    """Walks the calendar as the engine and the sweep do: every day of every phase (a verify on
    any of them starts a publicity period), the publicity period after the last day, the
    reminders before each due date and the overdue notices up to the sweep's look-back."""
    for phase in spec.phases:
        day = phase.starts
        while day <= phase.ends:
            calendar.is_working_day(day)
            day += dt.timedelta(days=1)
        calendar.add_working_days(phase.ends, spec.publicity_working_days)
    lead = max(spec.reminders.before_working_days, default=0)
    for deadline in spec.deadlines:
        calendar.working_days_before(deadline.due, lead)
        calendar.working_days_between(deadline.due, deadline.due + LOOKBACK)


def campaign_warnings(spec: CampaignFile) -> list[Problem]:
    """What loads but will hurt: see each check."""
    return (
        _deadlines_outside_the_campaign(spec)
        + _phases_too_short_for_publicity(spec)
        + _publicity_after_payment_window(spec)
        + _follow_up_closes_before_payment(spec)
    )


def _follow_up_closes_before_payment(spec: CampaignFile) -> list[Problem]:
    """The campaign's end (`follow_up.closes_on`) before its payment window closes: a case paid
    after that day is closed by the next sweep as not visited, before anyone could visit."""
    closes_on = None if spec.follow_up is None else spec.follow_up.closes_on
    paying = [p for p in spec.phases if CaseState.DISBURSEMENT.value in p.cases_leave]
    if closes_on is None or not paying:
        return []
    window_ends = max(p.ends for p in paying)
    if closes_on >= window_ends:
        return []
    return [
        {
            "field": "follow_up.closes_on",
            "code": "follow_up_closes_before_payment",
            "message": (
                f"活动结束日 {closes_on.isoformat()} 早于发放阶段的结束日 "
                f"{window_ends.isoformat()}：此后发放的案件会在次日按“活动结束，未回访”办结"
            ),
        }
    ]


def _deadlines_outside_the_campaign(spec: CampaignFile) -> list[Problem]:
    """A due date before the first phase starts or after the last one ends."""
    starts, ends = min(p.starts for p in spec.phases), max(p.ends for p in spec.phases)
    return [
        {
            "field": f"deadlines.{i}.due",
            "code": "deadline_outside_campaign",
            "message": (
                f"截止事项「{d.title}」的截止日 {d.due.isoformat()} 不在活动期间"
                f"（{starts.isoformat()}—{ends.isoformat()}）内"
            ),
        }
        for i, d in enumerate(spec.deadlines)
        if not starts <= d.due <= ends
    ]


def _phases_too_short_for_publicity(spec: CampaignFile) -> list[Problem]:
    """A phase by whose end cases must have left publicity, with fewer working days than the
    publicity lasts: a case published on its first day is still in publicity at its end."""
    if spec.publicity_working_days <= 0:
        return []
    calendar = _calendar(spec)
    out = []
    for i, phase in enumerate(spec.phases):
        if CaseState.PUBLICITY.value not in phase.cases_leave:
            continue
        try:
            days = calendar.working_days_between(phase.starts - dt.timedelta(days=1), phase.ends)
        except CalendarUnknown:
            continue  # reported as a problem
        if days < spec.publicity_working_days:
            out.append(
                {
                    "field": f"phases.{i}",
                    "code": "phase_shorter_than_publicity",
                    "message": (
                        f"阶段「{phase.name}」（{phase.starts.isoformat()}—{phase.ends.isoformat()}）"
                        f"只有 {days} 个工作日，容不下 {spec.publicity_working_days} 个工作日的公示期"
                    ),
                }
            )
    return out


def _calendar(spec: CampaignFile) -> WorkingCalendar:
    return WorkingCalendar(
        holidays=frozenset(spec.calendar.holidays),
        workdays=frozenset(spec.calendar.workdays),
        known_years=frozenset(spec.calendar.years),
    )


def _publicity_after_payment_window(spec: CampaignFile) -> list[Problem]:
    """What loads but will hurt: a case verified on the last day of the phase that verifies
    whose publicity (the campaign's working days, from that day) is not over before the payment
    window (the phase cases leave disbursement in) has closed — Weihai 2024: verified on 8/22,
    publicity ends 8/29, the case reaches approval on 8/30, after the 8/23–8/29 window. Only
    for a campaign whose calendar is known (problems are checked first)."""
    verifying = [p for p in spec.phases if CaseState.ARCHIVE_CHECK.value in p.cases_leave]
    paying = [p for p in spec.phases if CaseState.DISBURSEMENT.value in p.cases_leave]
    if not verifying or not paying:
        return []
    last_verified = max(p.ends for p in verifying)
    window = min(paying, key=lambda p: p.starts)
    calendar = WorkingCalendar(
        holidays=frozenset(spec.calendar.holidays),
        workdays=frozenset(spec.calendar.workdays),
        known_years=frozenset(spec.calendar.years),
    )
    try:
        ends = calendar.add_working_days(last_verified, spec.publicity_working_days)
    except CalendarUnknown:
        return []
    if ends < window.ends:
        return []
    return [
        {
            "field": "phases",
            "code": "publicity_after_payment_window",
            "message": (
                f"{last_verified.isoformat()} 核查通过的案件，公示 {spec.publicity_working_days} "
                f"个工作日至 {ends.isoformat()} 才结束，{(ends + dt.timedelta(days=1)).isoformat()} "
                f"才能进入审批，已在发放阶段「{window.name}」（{window.starts.isoformat()}—"
                f"{window.ends.isoformat()}）之后：请提前核查截止日，或缩短公示期、推后发放阶段"
            ),
        }
    ]
