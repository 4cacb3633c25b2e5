"""The payment pages (finance): the campaign's batches and funds with a form to build a batch;
a batch with its rows (cards masked), the bank file to download, the bank's result to upload,
the failed rows with a form to correct the card, and the retry. The same services as the API."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from jinqiu.api.deps import Conn, ServicesDep, declare_writes
from jinqiu.api.http.payments import BatchIn, CardIn
from jinqiu.api.pages import (
    OptionalCampaign,
    PageBatch,
    PageCase,
    PageSession,
    Session,
    carried,
    check_csrf,
    form_int,
    form_model,
    pick_campaign,
    render,
    router,
    shown,
)
from jinqiu.states.payment_batch import STATE_NAMES as BATCH_STATE_LABELS
from jinqiu.states.payment_batch import BatchState
from jinqiu.workflow.campaigns.models import FundSource
from jinqiu.workflow.errors import DomainError, PermissionDenied
from jinqiu.workflow.masking import mask_card, masked_text
from jinqiu.workflow.payments import bankfile, service
from jinqiu.workflow.payments.engine import batch_t
from jinqiu.workflow.payments.reconcile import balances
from jinqiu.workflow.units.models import Unit, in_subtree

fund_t = FundSource.__table__  # type: ignore[attr-defined]
unit_t = Unit.__table__  # type: ignore[attr-defined]


def finance_only(session: Session) -> None:
    if not service.may_pay(session.actor):
        raise PermissionDenied("只有财务人员可以办理发放")


def refused(error: DomainError) -> str:
    """A refusal as lines for the page: the message, and each named problem."""
    lines = [error.message]
    details = error.details
    if isinstance(details, dict) and isinstance(details.get("rows"), list):
        lines += [f"第 {r['row']} 行：{r['message']}" for r in details["rows"][:50]]
    elif isinstance(details, list):
        lines += [str(d.get("message", "")) for d in details[:50] if isinstance(d, dict)]
    return masked_text("\n".join(lines))


@router.get("/payments", response_class=HTMLResponse)
def payments_page(
    request: Request,
    session: PageSession,
    svc: ServicesDep,
    conn: Conn,
    campaign: OptionalCampaign = None,
) -> HTMLResponse:
    finance_only(session)
    chosen, campaigns = pick_campaign(conn, session.actor, campaign)
    batches = conn.execute(
        select(batch_t, unit_t.c.name.label("unit_name"), fund_t.c.source.label("fund_source"))
        .join(unit_t, unit_t.c.id == batch_t.c.unit_id)
        .join(fund_t, fund_t.c.id == batch_t.c.fund_source_id)
        .where(
            batch_t.c.campaign_id == chosen.id,
            in_subtree(unit_t.c.path, session.actor.unit_path),
        )
        .order_by(batch_t.c.id.desc())
        .limit(200)
    ).all()
    refusal = shown(request, svc, session, "refusal")
    return render(
        request,
        "payments.html",
        session,
        campaign=chosen,
        campaigns=campaigns,
        batches=batches,
        funds=balances(conn, chosen.id),
        batch_states=BATCH_STATE_LABELS,
        flash=shown(request, svc, session, "flash"),
        refusal=refusal.split("\n") if refusal else [],
    )


@router.post("/payments/batches")
def build_page(
    session: PageSession,
    svc: ServicesDep,
    conn: Conn,
    csrf_token: Annotated[str, Form()],
    campaign: Annotated[str, Form()],
    fund_source: Annotated[str, Form()],
    unit: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(session, csrf_token)
    finance_only(session)
    fields: dict[str, Any] = {"fund_source": fund_source}
    if unit:
        fields["unit"] = unit
    body = form_model(BatchIn, fields)
    chosen, _ = pick_campaign(conn, session.actor, int(campaign) if campaign.isdigit() else -1)
    back = f"/payments?campaign={chosen.id}"
    try:
        with conn.begin_nested():  # a refusal leaves nothing behind, and is shown
            built = service.build_batch(
                conn,
                campaign_id=chosen.id,
                fund_source=body.fund_source,
                unit_code=body.unit,
                case_ids=None,
                actor=session.actor,
                clock=svc.clock,
            )
    except DomainError as error:
        return RedirectResponse(
            f"{back}&{carried(svc, session, 'refusal', refused(error))}", status_code=303
        )
    message = f"已建立发放批次 {built.id}：{len(built.case_ids)} 笔"
    if built.skipped:
        message += (
            f"；{len(built.skipped)} 件因银行卡信息有误未纳入（案件 "
            + "、".join(str(s["case_id"]) for s in built.skipped[:10])
            + "）"
        )
    return RedirectResponse(
        f"/payments/batches/{built.id}?{carried(svc, session, 'flash', message)}", status_code=303
    )


@router.get("/payments/batches/{batch_id}", response_class=HTMLResponse)
def batch_page(
    request: Request, batch: PageBatch, session: PageSession, svc: ServicesDep, conn: Conn
) -> HTMLResponse:
    finance_only(session)
    items = service.batch_items(conn, batch.id)
    refusal = shown(request, svc, session, "refusal")
    failed = [i for i in items if i.outcome == service.FAILED]
    versions = service.case_versions(conn, [i.case_id for i in failed])
    return render(
        request,
        "batch.html",
        session,
        batch=batch,
        items=items,
        failed=failed,
        versions=versions,
        retryable=batch.state == BatchState.RESULT_IMPORTED,
        uploadable=batch.state == BatchState.EXPORTED,
        mask_card=mask_card,
        batch_states=BATCH_STATE_LABELS,
        flash=shown(request, svc, session, "flash"),
        refusal=refusal.split("\n") if refusal else [],
    )


def _writes(request: Request) -> None:
    declare_writes(request, True)  # the download records the export (hash, audit, pii_access)


@router.get("/payments/batches/{batch_id}/file", dependencies=[Depends(_writes)])
def file_page(
    batch: PageBatch,
    session: PageSession,
    svc: ServicesDep,
    conn: Conn,
    format: str = "csv",
) -> Response:
    finance_only(session)
    file = service.export_file(
        conn,
        batch.id,
        format,
        actor=session.actor,
        clock=svc.clock,
        purpose="GET /payments/batches/{id}/file",
    )
    return Response(
        file.content,
        media_type=file.media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{file.filename}"',
            "X-Content-SHA256": file.sha256,
        },
    )


@router.post("/payments/batches/{batch_id}/result")
async def result_page(
    batch: PageBatch,
    session: PageSession,
    svc: ServicesDep,
    conn: Conn,
    csrf_token: Annotated[str, Form()],
    file: Annotated[UploadFile, File()],
) -> Response:
    check_csrf(session, csrf_token)
    finance_only(session)
    content = await file.read(bankfile.MAX_RESULT_BYTES + 1)
    back = f"/payments/batches/{batch.id}"
    try:
        with conn.begin_nested():
            applied = service.import_result(
                conn, batch.id, content, file.filename or "", actor=session.actor, clock=svc.clock
            )
    except DomainError as error:
        return RedirectResponse(
            f"{back}?{carried(svc, session, 'refusal', refused(error))}", status_code=303
        )
    message = f"已导入银行回盘：成功 {applied.paid} 笔，失败 {applied.failed} 笔"
    return RedirectResponse(f"{back}?{carried(svc, session, 'flash', message)}", status_code=303)


@router.post("/payments/batches/{batch_id}/retry")
def retry_page(
    batch: PageBatch,
    session: PageSession,
    svc: ServicesDep,
    conn: Conn,
    csrf_token: Annotated[str, Form()],
) -> Response:
    check_csrf(session, csrf_token)
    finance_only(session)
    try:
        with conn.begin_nested():
            built = service.retry_batch(conn, batch.id, actor=session.actor, clock=svc.clock)
    except DomainError as error:
        return RedirectResponse(
            f"/payments/batches/{batch.id}?{carried(svc, session, 'refusal', refused(error))}",
            status_code=303,
        )
    message = f"已建立重发批次 {built.id}：{len(built.case_ids)} 笔"
    return RedirectResponse(
        f"/payments/batches/{built.id}?{carried(svc, session, 'flash', message)}", status_code=303
    )


@router.post("/payments/cases/{case_id}/bank-card")
def card_page(
    case_id: PageCase,
    session: PageSession,
    svc: ServicesDep,
    conn: Conn,
    csrf_token: Annotated[str, Form()],
    version: Annotated[str, Form()],
    bank_card_number: Annotated[str, Form()],
    reason: Annotated[str, Form()],
    batch: Annotated[str, Form()],
    bank_card_holder: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(session, csrf_token)
    finance_only(session)
    fields: dict[str, Any] = {
        "bank_card_number": bank_card_number,
        "version": form_int(version),
        "reason": reason,
    }
    if bank_card_holder:
        fields["bank_card_holder"] = bank_card_holder
    back = f"/payments/batches/{batch}" if batch.isdigit() else "/payments"
    try:
        body = form_model(CardIn, fields)
        with conn.begin_nested():
            service.correct_bank_card(
                conn,
                case_id,
                card_number=body.bank_card_number,
                holder=body.bank_card_holder,
                reason=body.reason,
                expected_version=body.version,
                actor=session.actor,
                clock=svc.clock,
            )
    except DomainError as error:
        return RedirectResponse(
            f"{back}?{carried(svc, session, 'refusal', refused(error))}", status_code=303
        )
    message = f"已更正案件 {case_id} 的银行卡"
    return RedirectResponse(f"{back}?{carried(svc, session, 'flash', message)}", status_code=303)
