"""Who may be aided: a worker in the hardship archive (深度/相对/意外致困) whose entry is
no older than the campaign allows — Weihai 2024: "建档满1年的困难职工需要重新申报" — or a
worker of a category the campaign admits (migrant worker, gig worker, single mother, model worker)."""

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
    """In the archive, and archived no longer ago than `archive_max_age_months`."""
    worker = ctx.worker
    if worker.archive_status not in ARCHIVE_STATUSES:
        return [Reason("not_in_archive", "职工不在困难职工档案内（深度、相对或意外致困）")]
    if worker.archived_on is None:
        return [Reason("archive_date_missing", "缺少建档日期")]
    if worker.archived_on > ctx.today:
        return [Reason("archive_date_in_future", "建档日期晚于今天")]
    expires = add_months(worker.archived_on, ctx.campaign.archive_max_age_months)
    if expires <= ctx.today:
        return [
            Reason(
                "archive_expired",
                f"建档已满{ctx.campaign.archive_max_age_months}个月（{worker.archived_on.isoformat()}建档），须重新申报",
            )
        ]
    return []


def in_admitted_category(ctx: GuardContext) -> bool:
    return bool(ctx.campaign.admitted_categories.intersection(ctx.worker.categories))


def worker_is_eligible(ctx: GuardContext) -> list[Reason]:
    archive_reasons = archive_is_current(ctx)
    if not archive_reasons or in_admitted_category(ctx):
        return []
    return archive_reasons
