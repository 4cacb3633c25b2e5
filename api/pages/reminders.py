"""The reminders sent (`/reminders`), for those who run a campaign (campaign.manage): the reminder
ledger of a campaign for the units of a subtree (the user's own by default) — which deadline,
which unit owed the work, the kind (before the due day, overdue, escalated to the parent union)
and its working day, who was told, when — with what became of each message: the outbox's
delivery state per channel and whether the in-app notice was read. Newest first, a page at a
time. The messages' addresses are not shown (a robot webhook's URL is its key)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import func, select

from jinqiu.api.deps import Conn, ServicesDep
from jinqiu.api.pages import (
    OptionalCampaign,
    PageQueriedUnit,
    Session,
    pick_campaign,
    render,
    router,
)
from jinqiu.api.pages.admin import PAGE_SIZE, Page, page_require, pages_of
from jinqiu.notifications.models import Channel, InboxMessage, OutboxMessage, OutboxStatus
from jinqiu.workflow.campaigns.models import CampaignDeadline
from jinqiu.workflow.deadlines.models import ReminderLedger
from jinqiu.workflow.deadlines.schedule import ReminderKind
from jinqiu.workflow.roles import Grant
from jinqiu.workflow.units.models import Unit, in_subtree

ledger_t = ReminderLedger.__table__  # type: ignore[attr-defined]
deadline_t = CampaignDeadline.__table__  # type: ignore[attr-defined]
outbox_t = OutboxMessage.__table__  # type: ignore[attr-defined]
inbox_t = InboxMessage.__table__  # type: ignore[attr-defined]
owing_t = Unit.__table__  # type: ignore[attr-defined]
told_t = owing_t.alias("told")  # the unit told: itself, or its parent

KIND_LABELS = {
    ReminderKind.BEFORE.value: "截止前提醒",
    ReminderKind.OVERDUE.value: "逾期提醒",
    ReminderKind.ESCALATION.value: "督办（告知上级）",
}
DELIVERY_LABELS = {
    OutboxStatus.PENDING.value: "待发送",
    OutboxStatus.SENT.value: "已发送",
    OutboxStatus.FAILED.value: "发送失败",
}
CHANNEL_LABELS = {Channel.EMAIL.value: "邮件", Channel.WEBHOOK.value: "群机器人"}
Managers = Annotated[
    Session, Depends(page_require(Grant.MANAGE_CAMPAIGN, "当前角色无权查看提醒记录"))
]


def when_label(kind: str, occurrence: int) -> str:
    """T-3 … T0 before the due day, then the working days overdue (as the messages say)."""
    if kind == ReminderKind.BEFORE.value:
        return "截止当日" if occurrence == 0 else f"截止前 {occurrence} 个工作日"
    return f"逾期第 {occurrence} 个工作日"


def reminder_key(row: Any) -> str:
    """The messages' idempotency key prefix (workflow.deadlines.sweep writes them so)."""
    return f"reminder:{row.deadline_id}:{row.unit_id}:{row.kind}:{row.occurrence}"


@router.get("/reminders", response_class=HTMLResponse)
def reminders_page(
    request: Request,
    session: Managers,
    svc: ServicesDep,
    conn: Conn,
    top: PageQueriedUnit,
    campaign: OptionalCampaign = None,
    kind: ReminderKind | None = None,
    page: Page = 1,
) -> HTMLResponse:
    chosen, campaigns = pick_campaign(conn, session.actor, campaign)
    where = [ledger_t.c.campaign_id == chosen.id, in_subtree(owing_t.c.path, top.path)]
    if kind is not None:
        where.append(ledger_t.c.kind == kind.value)
    joined = ledger_t.join(owing_t, owing_t.c.id == ledger_t.c.unit_id)
    total = int(conn.execute(select(func.count()).select_from(joined).where(*where)).scalar_one())
    rows = conn.execute(
        select(
            ledger_t,
            deadline_t.c.title.label("deadline_title"),
            deadline_t.c.due,
            owing_t.c.code.label("unit_code"),
            owing_t.c.name.label("unit_name"),
            told_t.c.code.label("told_code"),
            told_t.c.name.label("told_name"),
        )
        .select_from(
            joined.join(deadline_t, deadline_t.c.id == ledger_t.c.deadline_id).join(
                told_t, told_t.c.id == ledger_t.c.notified_unit_id
            )
        )
        .where(*where)
        .order_by(ledger_t.c.created_at.desc(), ledger_t.c.id.desc())
        .offset((page - 1) * PAGE_SIZE)
        .limit(PAGE_SIZE)
    ).all()
    return render(
        request,
        "reminders.html",
        session,
        campaign=chosen,
        campaigns=campaigns,
        unit=top,
        kind=kind.value if kind else "",
        rows=[(r, reminder_key(r)) for r in rows],
        **deliveries(conn, [reminder_key(r) for r in rows]),
        total=total,
        page=page,
        pages=pages_of(total),
        query=urlencode(
            {"campaign": chosen.id, "unit": top.code, **({"kind": kind.value} if kind else {})}
        )
        + "&",
        kind_labels=KIND_LABELS,
        when_label=when_label,
        delivery_labels=DELIVERY_LABELS,
        channel_labels=CHANNEL_LABELS,
        sent_status=OutboxStatus.SENT.value,
    )


def deliveries(conn: Any, keys: list[str]) -> dict[str, Any]:
    """What became of the page's reminders: their outbox messages by key and channel, and
    whether each in-app notice was read (two indexed lookups by idempotency key)."""
    if not keys:
        return {"sent": {}, "read": {}}
    wanted = sorted(f"{k}:{c}" for k in keys for c in CHANNEL_LABELS)
    sent: dict[str, dict[str, Any]] = {}
    for r in conn.execute(
        select(
            outbox_t.c.idempotency_key,
            outbox_t.c.channel,
            outbox_t.c.status,
            outbox_t.c.attempts,
            outbox_t.c.sent_at,
        ).where(outbox_t.c.idempotency_key.in_(wanted))
    ):
        sent.setdefault(r.idempotency_key.rsplit(":", 1)[0], {})[r.channel] = r
    read = {
        r.idempotency_key.removesuffix(":inbox"): r.read_at
        for r in conn.execute(
            select(inbox_t.c.idempotency_key, inbox_t.c.read_at).where(
                inbox_t.c.idempotency_key.in_(sorted(f"{k}:inbox" for k in keys))
            )
        )
    }
    return {"sent": sent, "read": read}
