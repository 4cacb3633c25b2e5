"""When a campaign cannot be swept: the failure is caught, logged, kept and told, and the sweep
goes on with the other campaigns.

`sweep_error` holds the last sweep's failures, one row per failing campaign (a row without a
campaign: the sweep as a whole). Each sweep replaces the table's rows in one transaction, so
every instance sees the same picture: /api/health counts the rows, admins list them, and a
repaired campaign drops out with the next sweep. The organizer unit hears of it in its inbox
and mailbox at most once per campaign and day: the idempotency key carries the date, as the
reminder ledger's key carries the occurrence."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, Connection, Engine, delete, func, insert, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Field, SQLModel

from jinqiu.notifications.models import Channel
from jinqiu.notifications.outbox import InboxItem, Outgoing, enqueue, post_to_inbox
from jinqiu.storage.sqltypes import UTCDateTime
from jinqiu.workflow.campaigns.models import Campaign
from jinqiu.workflow.db import transaction
from jinqiu.workflow.units.models import Unit

log = logging.getLogger("jinqiu.sweep")
ERROR_LENGTH = 500


class SweepError(SQLModel, table=True):
    __tablename__ = "sweep_error"

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int | None = Field(default=None, index=True)  # None: the sweep as a whole
    campaign_name: str = Field(default="", max_length=200)
    stage: str = Field(max_length=100)  # where it failed first: publicity, a deadline's key
    error: str = Field(max_length=ERROR_LENGTH)  # the first error, one line
    failures: int = 1  # consecutive sweeps that failed for it
    first_failed_at: dt.datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    last_failed_at: dt.datetime = Field(sa_column=Column(UTCDateTime, nullable=False))


sweep_error_t = SweepError.__table__  # type: ignore[attr-defined]
campaign_t = Campaign.__table__  # type: ignore[attr-defined]
unit_t = Unit.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class CampaignFailure:
    campaign_id: int | None
    campaign_name: str
    stage: str
    error: str


def describe(exc: BaseException) -> str:
    """One line, short, without SQL parameters (which may carry personal data): the log has
    the traceback."""
    if isinstance(exc, SQLAlchemyError):
        orig = getattr(exc, "orig", None)
        text = f"{type(exc).__name__}: {str(orig or '').splitlines()[0] if orig else ''}"
    else:
        text = f"{type(exc).__name__}: {exc}"
    return " ".join(text.split())[:ERROR_LENGTH]


def failed(campaign_id: int | None, name: str, stage: str, exc: BaseException) -> CampaignFailure:
    log.error("sweep: campaign %s (%s) failed at %s", campaign_id, name, stage, exc_info=exc)
    return CampaignFailure(campaign_id, name, stage, describe(exc))


def first_per_campaign(failures: list[CampaignFailure]) -> list[CampaignFailure]:
    seen: dict[int | None, CampaignFailure] = {}
    for f in failures:
        seen.setdefault(f.campaign_id, f)
    return list(seen.values())


def record_failures(
    engine: Engine, failures: list[CampaignFailure], now: dt.datetime, base_url: str
) -> None:
    """Replaces the last sweep's failures with these and tells each organizer (once a day)."""
    current = first_per_campaign(failures)
    if not current:
        with engine.connect() as conn:
            if conn.execute(select(sweep_error_t.c.id).limit(1)).first() is None:
                return  # the usual sweep: nothing failed, nothing to clear, no write lock
    with transaction(engine) as conn:
        if conn.dialect.name == "postgresql":  # concurrent sweeps replace the rows one at a time
            conn.execute(text("LOCK TABLE sweep_error IN EXCLUSIVE MODE"))
        before = {r.campaign_id: r for r in conn.execute(select(sweep_error_t))}
        conn.execute(delete(sweep_error_t))
        if current:
            conn.execute(
                insert(sweep_error_t),
                [
                    {
                        "campaign_id": f.campaign_id,
                        "campaign_name": f.campaign_name[:200],
                        "stage": f.stage[:100],
                        "error": f.error,
                        "failures": before[f.campaign_id].failures + 1
                        if f.campaign_id in before
                        else 1,
                        "first_failed_at": before[f.campaign_id].first_failed_at
                        if f.campaign_id in before
                        else now,
                        "last_failed_at": now,
                    }
                    for f in current
                ],
            )
        ids = [f.campaign_id for f in current if f.campaign_id is not None]
        organizers = (
            {
                r.campaign_id: r
                for r in conn.execute(
                    select(
                        campaign_t.c.id.label("campaign_id"),
                        unit_t.c.code,
                        unit_t.c.name,
                        unit_t.c.contact_name,
                        unit_t.c.contact_email,
                    )
                    .join(unit_t, unit_t.c.id == campaign_t.c.organizer_unit_id)
                    .where(campaign_t.c.id.in_(ids))
                )
            }
            if ids
            else {}
        )
        for f in current:
            organizer = organizers.get(f.campaign_id)
            if organizer is not None:
                _tell_organizer(conn, f, organizer, now, base_url)


def _tell_organizer(
    conn: Any, failure: CampaignFailure, organizer: Any, now: dt.datetime, base_url: str
) -> None:
    day = now.date().isoformat()
    key = f"sweep-error:{failure.campaign_id}:{day}"
    link = f"{base_url.rstrip('/')}/dashboard?campaign={failure.campaign_id}"
    subject = f"【定时任务出错】活动「{failure.campaign_name}」的提醒和公示处理未完成"
    body = (
        f"{organizer.contact_name or organizer.name}：\n\n"
        f"{day} 的定时任务处理活动「{failure.campaign_name}」（编号 {failure.campaign_id}）时出错，"
        "该活动的截止提醒、逾期通知或公示结束未能完成；其他活动照常处理。\n\n"
        f"出错环节：{failure.stage}\n错误：{failure.error}\n\n"
        "请检查该活动的设置（例如 calendar 是否缺少某一年度、提醒天数是否过大）。"
        "修正后，下一次定时任务会自动补做。本通知每个活动每天最多发送一次。\n"
    )
    if organizer.contact_email:
        enqueue(
            conn,
            [
                Outgoing(
                    f"{key}:email",
                    Channel.EMAIL.value,
                    organizer.contact_email,
                    subject,
                    body,
                    unit_code=organizer.code,
                )
            ],
            now,
        )
    post_to_inbox(conn, [InboxItem(f"{key}:inbox", organizer.code, subject, body, link)], now)


def count_sweep_errors(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(sweep_error_t)).scalar_one())
