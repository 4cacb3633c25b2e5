"""The inbox page: the reminders and notices addressed to the signed-in user's unit (the sweep's
T-3/T-1/T0 reminders, overdue notices, escalations, a publicity list held), those the user has
not read first, each marked read by a form (CSRF) — as GET /api/inbox and POST
/api/inbox/{id}/read do. The unit's users share the items; each reads them for themselves, and
sees who in the unit read one first."""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import case, func, select

from jinqiu.api.deps import Conn, ServicesDep, api_router
from jinqiu.api.pages import PageInboxItem, PageSession, carried, check_csrf, render, shown
from jinqiu.notifications import inbox as inbox_reads
from jinqiu.notifications.models import InboxMessage
from jinqiu.workflow.masking import masked_text
from jinqiu.workflow.roles import Grant

router = api_router(include_in_schema=False)
inbox_t = InboxMessage.__table__  # type: ignore[attr-defined]
PAGE_SIZE = 50


def safe_link(link: str | None, base_url: str) -> str | None:
    """A notification's link as a path of this site: the sweep writes links under the service's
    base URL (for e-mail), which the page shows as the path; anything else is not a link."""
    if not link:
        return None
    origin = base_url.rstrip("/")
    path = link[len(origin) :] if link.startswith(origin + "/") else link
    if path.startswith("/") and not path.startswith("//") and "\\" not in path:
        return path
    return None


@router.get("/inbox", response_class=HTMLResponse)
def inbox_page(
    request: Request,
    session: PageSession,
    svc: ServicesDep,
    conn: Conn,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
) -> HTMLResponse:
    me = session.actor
    unread_by_me = inbox_reads.read_t.c.read_at.is_(None)
    unread_first = case((unread_by_me, 0), else_=1)
    rows = conn.execute(
        inbox_reads.items_with_my_read(me.unit_code, me.username)
        .order_by(unread_first, inbox_t.c.id.desc())
        .limit(PAGE_SIZE)
        .offset((page - 1) * PAGE_SIZE)
    ).all()
    total = conn.execute(
        select(func.count()).select_from(inbox_t).where(inbox_t.c.unit_code == me.unit_code)
    ).scalar_one()
    unread = inbox_reads.unread_count(conn, me.unit_code, me.username)
    # Reminders name units and dates; a number typed into one is masked like any text.
    in_full = session.actor.may(Grant.READ_PII)
    items = [
        {
            "id": r.id,
            "title": r.title if in_full else masked_text(r.title),
            "body": r.body if in_full else masked_text(r.body),
            "link": safe_link(r.link, svc.settings.base_url),
            "created_at": r.created_at,
            "read_by_me_at": r.read_by_me_at,
            "unit_read_at": r.read_at,
            "unit_read_by": r.read_by,
        }
        for r in rows
    ]
    return render(
        request,
        "inbox.html",
        session,
        items=items,
        total=total,
        unread=unread,
        page=page,
        pages=max(1, -(-total // PAGE_SIZE)),
        flash=shown(request, svc, session, "flash"),
    )


@router.post("/inbox/{item_id}/read")
def inbox_mark_read(
    item: PageInboxItem,
    session: PageSession,
    svc: ServicesDep,
    conn: Conn,
    csrf_token: Annotated[str, Form(max_length=200)],
) -> Response:
    check_csrf(session, csrf_token)
    inbox_reads.mark_read(conn, item.id, session.actor.username, svc.clock.now())
    return RedirectResponse(
        f"/inbox?{carried(svc, session, 'flash', f'已标为已读：{masked_text(item.title)}')}",
        status_code=303,
    )


@router.post("/inbox/read-all")
def inbox_mark_all_read(
    session: PageSession,
    svc: ServicesDep,
    conn: Conn,
    csrf_token: Annotated[str, Form(max_length=200)],
) -> Response:
    check_csrf(session, csrf_token)
    me = session.actor
    done = inbox_reads.mark_all_read(conn, me.unit_code, me.username, svc.clock.now())
    return RedirectResponse(
        f"/inbox?{carried(svc, session, 'flash', f'已将 {done} 条标为已读')}",
        status_code=303,
    )
