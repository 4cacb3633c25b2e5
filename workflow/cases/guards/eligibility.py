"""Who may be aided: a worker in the hardship archive (深度/相对/意外致困), archived no longer
before the campaign's reference date than its notice allows — Weihai 2024: "建档满1年的困难职工
需要重新申报", reckoned at the 7/31 submission, so the answer never changes as the season passes —
or a worker of one of the campaign's categories that waives the archive (Bozhou's 送温暖对象 …),
when that category's condition on the application form holds (Bozhou (三) "在城市上学")."""

from __future__ import annotations

import datetime as dt

from jinqiu.workflow.cases.aid import ARCHIVE_STATUSES
from jinqiu.workflow.cases.facts import GuardContext
from jinqiu.workflow.errors import Reason


def add_months(day: dt.date, months: int) -> dt.date:
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    # 31 January + 1 month is the last day of February.
    for last in (31, 30, 29, 28):
        try:
            return dt.date(year, month, min(day.day, last))
        except ValueError:
            continue
    raise AssertionError("unreachable")


def archive_is_current(ctx: GuardContext) -> list[Reason]:
    """In the archive, and archived less than the campaign's age limit before its reference
    date (a fixed day of the campaign, never today). Expired: the family re-declares (重新申报),
    so the case stays in (or goes back to) the survey with this reason."""
    worker = ctx.worker
    if worker.archive_status not in ARCHIVE_STATUSES:
        return [Reason("not_in_archive", "职工不在困难职工档案内（深度、相对或意外致困）")]
    if worker.archived_on is None:
        return [Reason("archive_date_missing", "缺少建档日期")]
    if worker.archived_on > ctx.today:
        return [Reason("archive_date_in_future", "建档日期晚于今天")]
    rule = ctx.campaign.archive
    if rule.archive_max_age_months is None or rule.archive_reference_date is None:
        return []
    reference = rule.archive_reference_date
    if add_months(worker.archived_on, rule.archive_max_age_months) <= reference:
        cited = f"（{rule.source}）" if rule.source else ""
        return [
            Reason(
                "archive_expired",
                f"建档已满{rule.archive_max_age_months}个月（{worker.archived_on.isoformat()}建档，"
                f"按{reference.isoformat()}计），须重新申报建档后再提交{cited}",
            )
        ]
    return []


def waiving_category(ctx: GuardContext) -> tuple[str | None, list[Reason]]:
    """The first of the worker's categories that waives the archive and whose condition holds;
    else the reasons the waiving ones do not hold."""
    reasons: list[Reason] = []
    for code in ctx.worker.categories:
        category = ctx.campaign.categories.get(code)
        if category is None or not category.waives_archive_check:
            continue
        condition = category.condition
        if condition is None or ctx.case.form.get(condition.form_field) is True:
            return code, []
        reasons.append(
            Reason(
                "category_condition_unmet",
                f"「{category.label}」须{condition.label}（{category.source}）",
            )
        )
    return None, reasons


def worker_is_eligible(ctx: GuardContext) -> list[Reason]:
    archive_reasons = archive_is_current(ctx)
    if not archive_reasons:
        return []
    category, category_reasons = waiving_category(ctx)
    if category is not None:
        return []
    return archive_reasons + category_reasons
