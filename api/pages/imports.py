"""The survey import page (clerks and managers): the template to download, a filled 摸底表 to
upload, the dry run's bad rows as a table (and the file back with a 错误说明 column), then the
import. The same service as POST /api/campaigns/{id}/imports; the page posts and shows the
result (the button says it is working meanwhile). The register it fills (摸底登记) downloads as a
workbook for the chosen campaign and unit (GET /imports/register, as the API's
survey-register?format=xlsx)."""

from __future__ import annotations

import base64
from typing import Annotated, Any

from fastapi import Depends, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select

from jinqiu.api.deps import Conn, ServicesDep
from jinqiu.api.http.imports import XLSX, xlsx_download
from jinqiu.api.pages import (
    OptionalCampaign,
    PageQueriedUnit,
    PageSession,
    Session,
    check_csrf,
    form_int,
    page_records_full_reads,
    pick_campaign,
    render,
    router,
)
from jinqiu.workflow.campaigns.models import Campaign
from jinqiu.workflow.errors import DomainError, PermissionDenied
from jinqiu.workflow.masking import masked_text
from jinqiu.workflow.roles import Grant
from jinqiu.workflow.survey.register import MAX_ROWS as REGISTER_MAX_ROWS
from jinqiu.workflow.survey.register import may_read, register_rows, workbook
from jinqiu.workflow.survey.service import import_survey
from jinqiu.workflow.survey.sheet import MAX_FILE_BYTES, MAX_ROWS
from jinqiu.workflow.survey.workbook import annotated_workbook, template_workbook

campaign_t = Campaign.__table__  # type: ignore[attr-defined]


def importers_only(session: Session) -> None:
    if not session.actor.may(Grant.CREATE_CASE):
        raise PermissionDenied("当前角色无权导入摸底表")


def _page(
    request: Request, session: Session, conn: Any, campaign: int | None, **context: Any
) -> HTMLResponse:
    chosen, campaigns = pick_campaign(conn, session.actor, campaign)
    return render(
        request,
        "imports.html",
        session,
        campaign=chosen,
        campaigns=campaigns,
        max_mb=MAX_FILE_BYTES // (1024 * 1024),
        max_rows=MAX_ROWS,
        register_max_rows=REGISTER_MAX_ROWS,
        **context,
    )


@router.get("/imports", response_class=HTMLResponse)
def imports_page(
    request: Request, session: PageSession, conn: Conn, campaign: OptionalCampaign = None
) -> HTMLResponse:
    importers_only(session)
    return _page(request, session, conn, campaign, unit=session.actor.unit_code or "")


@router.get("/imports/template")
def template_download(
    session: PageSession, conn: Conn, campaign: OptionalCampaign = None
) -> Response:
    importers_only(session)
    chosen, _ = pick_campaign(conn, session.actor, campaign)
    full = conn.execute(
        select(campaign_t.c.name, campaign_t.c.categories).where(campaign_t.c.id == chosen.id)
    ).one()
    categories = [c["label"] for c in full.categories or []]
    return xlsx_download(template_workbook(full.name, categories), "摸底表导入模板.xlsx")


@router.get("/imports/register", dependencies=[Depends(page_records_full_reads)])
def register_download(
    session: PageSession,
    conn: Conn,
    svc: ServicesDep,
    unit: PageQueriedUnit,
    campaign: OptionalCampaign = None,
) -> Response:
    """The register of the unit's subtree as a workbook; over the limit, the error page says to
    export per sub-unit."""
    if not may_read(session.actor):
        raise PermissionDenied("当前角色无权查看摸底登记")
    chosen, _ = pick_campaign(conn, session.actor, campaign)
    rows, _total, _in_full = register_rows(
        conn,
        session.actor,
        chosen.id,
        unit.path,
        purpose="GET /imports/register",
        at=svc.clock.now(),
    )
    content = workbook(rows, campaign_name=chosen.name, unit_name=unit.name)
    return xlsx_download(content, f"摸底登记_{unit.code}.xlsx")


@router.post("/imports", response_class=HTMLResponse)
async def import_post(
    request: Request,
    session: PageSession,
    svc: ServicesDep,
    conn: Conn,
    csrf_token: Annotated[str, Form()],
    campaign: Annotated[str, Form(max_length=12)],
    file: Annotated[UploadFile, File()],
    unit: Annotated[str, Form(max_length=64)] = "",
    action: Annotated[str, Form(pattern=r"^(check|import)$")] = "check",
    skip_invalid: Annotated[str, Form(max_length=8)] = "",
) -> HTMLResponse:
    check_csrf(session, csrf_token)
    importers_only(session)
    wanted = form_int(campaign)
    chosen, _ = pick_campaign(conn, session.actor, wanted if isinstance(wanted, int) else -1)
    unit_code = unit.strip() or (session.actor.unit_code or "")
    content = await file.read(MAX_FILE_BYTES + 1)
    context: dict[str, Any] = {"unit": unit_code, "filename": file.filename or ""}
    try:
        with conn.begin_nested():  # a refusal leaves nothing behind, and is shown
            report = import_survey(
                conn,
                campaign_id=chosen.id,
                unit_code=unit_code,
                content=content,
                filename=file.filename or "upload",
                dry_run=action == "check",
                skip_invalid=bool(skip_invalid),
                actor=session.actor,
                clock=svc.clock,
            )
    except DomainError as error:
        context["refusal"] = masked_text(error.message)
        return _page(request, session, conn, chosen.id, **context)
    if report.errors:
        marked = annotated_workbook(content, report.format, report.header_row, report.errors)
        context["error_file"] = f"data:{XLSX};base64,{base64.b64encode(marked).decode()}"
    return _page(request, session, conn, chosen.id, report=report, **context)
