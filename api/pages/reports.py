"""The reports page (`/reports`): for a campaign and a unit of the user's subtree (their own by
default), the report a deadline waits for — the statistics report's form holds the items the
campaign's tables take from it (what no case records) — filed, then corrected: each filing is
the next revision, and the history shows them all with the one that counts marked. Filing goes
through the API's service (POST /api/campaigns/{id}/reports) and needs report.submit; a refused
figure is shown beside its item, with what was typed kept."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy import Connection, select

from jinqiu.api.deps import Conn, ServicesDep, unit_named
from jinqiu.api.http.reports import ReportIn
from jinqiu.api.http.schemas import MAX_DB_INT
from jinqiu.api.pages import (
    OptionalCampaign,
    PageQueriedUnit,
    PageSession,
    Session,
    carried,
    check_csrf,
    form_int,
    pick_campaign,
    render,
    router,
    shown,
)
from jinqiu.api.pages.admin import field_errors, page_require
from jinqiu.workflow.campaigns.models import Campaign, CampaignDeadline
from jinqiu.workflow.clock import as_china
from jinqiu.workflow.errors import DomainError, ValidationFailed
from jinqiu.workflow.roles import Grant
from jinqiu.workflow.statistics.compute import campaign_tables
from jinqiu.workflow.statistics.reports import REPORT_KINDS, report_revisions, submit_report
from jinqiu.workflow.statistics.tables import BY_KEY, STATISTICS_KIND

deadline_t = CampaignDeadline.__table__  # type: ignore[attr-defined]
campaign_t = Campaign.__table__  # type: ignore[attr-defined]
FIELD_PREFIX = "figure:"  # a figure's input is named figure:<item code>
HISTORY = 100  # revisions shown
KindParam = Annotated[str | None, Query(pattern=r"^[a-z_]{1,32}$")]
Submits = Annotated[Session, Depends(page_require(Grant.SUBMIT_REPORT, "当前角色无权报送报表"))]


@dataclass(frozen=True)
class FormItem:
    code: str  # the figure's code, as filed ("H", "employment.09A")
    label: str
    unit: str
    table: str


def report_kinds(conn: Connection, campaign_id: int) -> dict[str, str]:
    """The reports this campaign asks for: the kinds its tables take figures from, then those
    its deadlines wait for (a report without figures), each with its title."""
    tables = [BY_KEY[k] for k in campaign_tables(conn, campaign_id)]
    kinds: dict[str, str] = {
        k.key: k.title
        for k in REPORT_KINDS.values()
        if any(i.input is not None and i.kind == k.key for t in tables for i in t.items)
    }
    for (done_when,) in conn.execute(
        select(deadline_t.c.done_when).where(deadline_t.c.campaign_id == campaign_id)
    ):
        key = done_when.get("report_submitted") if isinstance(done_when, dict) else None
        if isinstance(key, str) and key not in kinds:
            kinds[key] = REPORT_KINDS[key].title if key in REPORT_KINDS else key
    return kinds or {STATISTICS_KIND: REPORT_KINDS[STATISTICS_KIND].title}


def form_items(conn: Connection, campaign_id: int, kind: str) -> list[FormItem]:
    """The typed-in items of the campaign's tables filed with `kind`, each code once, in the
    tables' order."""
    out: dict[str, FormItem] = {}
    for key in campaign_tables(conn, campaign_id):
        table = BY_KEY[key]
        for item in table.items:
            if item.input is not None and item.kind == kind and item.input not in out:
                out[item.input] = FormItem(item.input, item.label, item.unit, table.title)
    return list(out.values())


def statistics_cutoff(conn: Connection, campaign_id: int) -> dt.date | None:
    """The campaign's statistics cut-off day (its file's `statistics.cutoff`), if it has one."""
    spec = conn.execute(
        select(campaign_t.c.statistics).where(campaign_t.c.id == campaign_id)
    ).scalar_one()
    cutoff = (spec or {}).get("cutoff")
    return dt.date.fromisoformat(cutoff) if isinstance(cutoff, str) else None


def counted_revision(history: list[dict[str, Any]], cutoff: dt.date | None) -> int | None:
    """The id of the revision the statistics tables take: the latest filed by the cut-off day
    (China time), as the tables count everything as at that day; without one, the latest."""
    for revision in history:  # newest first
        if cutoff is None or as_china(revision["submitted_at"]).date() <= cutoff:
            return int(revision["id"])
    return None


def chosen_kind(kinds: dict[str, str], kind: str | None) -> str:
    if kind is None:
        return STATISTICS_KIND if STATISTICS_KIND in kinds else next(iter(kinds))
    if kind not in kinds:
        raise ValidationFailed(
            f"本活动没有报表 {kind}",
            [{"field": "kind", "code": "unknown_report_kind", "message": "本活动没有该报表"}],
        )
    return kind


def reports_page(
    request: Request,
    session: Session,
    svc: Any,
    conn: Connection,
    campaign: int | None,
    unit: Any,
    kind: str | None,
    *,
    values: dict[str, str] | None = None,
    note: str | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    chosen, campaigns = pick_campaign(conn, session.actor, campaign)
    kinds = report_kinds(conn, chosen.id)
    key = chosen_kind(kinds, kind)
    history = report_revisions(conn, chosen.id, unit.path, kind=key, unit_id=unit.id, limit=HISTORY)
    latest = next((r for r in history if r["latest"]), None)
    cutoff = statistics_cutoff(conn, chosen.id)
    if values is None:  # a correction starts from what counts now
        values = {code: str(v) for code, v in (latest["figures"] if latest else {}).items()}
        note = latest["note"] if latest else ""
    items = form_items(conn, chosen.id, key)
    response = render(
        request,
        "reports.html",
        session,
        campaign=chosen,
        campaigns=campaigns,
        unit=unit,
        kinds=kinds,
        kind=key,
        items=items,
        labels={i.code: i.label for i in items},
        history=history,
        latest=latest,
        cutoff=cutoff,
        counted=counted_revision(history, cutoff),
        values=values,
        note=note or "",
        errors=errors or {},
        may_submit=session.actor.may(Grant.SUBMIT_REPORT),
        flash=shown(request, svc, session, "flash"),
    )
    response.status_code = status
    return response


@router.get("/reports", response_class=HTMLResponse)
def reports(
    request: Request,
    session: PageSession,
    svc: ServicesDep,
    conn: Conn,
    unit: PageQueriedUnit,
    campaign: OptionalCampaign = None,
    kind: KindParam = None,
) -> HTMLResponse:
    return reports_page(request, session, svc, conn, campaign, unit, kind)


async def typed_figures(request: Request) -> dict[str, str]:
    """The form's figure:<code> fields that were filled in (the body is bounded at 1 MB)."""
    form = await request.form()
    return {
        key.removeprefix(FIELD_PREFIX): value.strip()
        for key, value in form.items()
        if key.startswith(FIELD_PREFIX) and isinstance(value, str) and value.strip()
    }


@router.post("/reports", response_class=HTMLResponse)
def report_post(
    request: Request,
    session: Submits,
    svc: ServicesDep,
    conn: Conn,
    figures: Annotated[dict[str, str], Depends(typed_figures)],
    csrf_token: Annotated[str, Form()],
    campaign: Annotated[str, Form(max_length=12)],
    unit: Annotated[str, Form(max_length=200)],
    kind: Annotated[str, Form(max_length=40)] = STATISTICS_KIND,
    note: Annotated[str, Form(max_length=4000)] = "",
) -> Response:
    """Files the report; again, its next revision. A refusal shows the form with what was typed
    and each problem beside its item."""
    check_csrf(session, csrf_token)
    campaign_id = form_int(campaign)
    if not isinstance(campaign_id, int) or not 1 <= campaign_id <= MAX_DB_INT:
        raise ValidationFailed(
            "请选择活动", [{"field": "campaign", "code": "invalid", "message": "请选择活动"}]
        )
    chosen, _ = pick_campaign(conn, session.actor, campaign_id)
    fields: dict[str, Any] = {"unit": unit.strip(), "kind": kind, "figures": figures}
    if note.strip():
        fields["note"] = note.strip()
    try:
        body = ReportIn.model_validate(fields)
        chosen_kind(report_kinds(conn, chosen.id), body.kind)
        with conn.begin_nested():  # a refusal leaves nothing written
            filed = submit_report(
                conn,
                campaign_id=chosen.id,
                unit_code=body.unit,
                kind=body.kind,
                note=body.note,
                actor=session.actor,
                clock=svc.clock,
                figures=body.figures,
            )
    except (ValidationError, DomainError) as refused:
        errors = {
            key.removeprefix("figures."): message for key, message in _by_item(refused).items()
        }
        if "unit" in errors or "kind" in errors:  # the form itself is wrong: say so on a page
            raise ValidationFailed(
                f"输入有误：{errors.get('unit') or errors.get('kind')}",
                [{"field": k, "code": "invalid", "message": v} for k, v in errors.items()],
            ) from None
        return reports_page(
            request,
            session,
            svc,
            conn,
            chosen.id,
            unit_named(conn, fields["unit"], session.actor),  # in scope: it was checked
            kind,
            values=figures,
            note=note,
            errors=errors,
            status=422,
        )
    query = urlencode({"campaign": chosen.id, "unit": body.unit, "kind": body.kind})
    done = f"已报送第 {filed.revision} 版" + ("（更正，以此版为准）" if filed.revision > 1 else "")
    return RedirectResponse(
        f"/reports?{query}&{carried(svc, session, 'flash', done)}", status_code=303
    )


def _by_item(refused: ValidationError | DomainError) -> dict[str, str]:
    """field_errors, but keeping a figure's whole code ("figures.employment.09A")."""
    details = refused.details if isinstance(refused, DomainError) else None
    if isinstance(details, list) and all(isinstance(d, dict) for d in details):
        out: dict[str, str] = {}
        for d in details:
            field = str(d.get("field", ""))
            key = field if field.startswith("figures.") else field.split(".")[0]
            out.setdefault(key, str(d.get("message", "")))
        return out
    return field_errors(refused)
