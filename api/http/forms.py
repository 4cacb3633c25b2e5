"""Printed forms and an auditor's evidence: a case's form (the approval registration form or the
摸底表 its campaign prescribes) as A4 HTML or PDF, a unit's 摸底表, and the evidence bundle (a zip)."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Annotated, Any, Literal

from fastapi import Depends, Query, Response
from fastapi.responses import HTMLResponse

from jinqiu.api.deps import (
    CampaignInScope,
    CaseInScope,
    Conn,
    CurrentActor,
    QueriedUnit,
    RecordsFullReads,
    ServicesDep,
    api_router,
    require,
)
from jinqiu.api.errors import ERROR_RESPONSES
from jinqiu.api.forms import form_html, form_pdf, survey_html, survey_pdf
from jinqiu.workflow.forms.content import case_form, unit_survey
from jinqiu.workflow.forms.evidence import evidence
from jinqiu.workflow.roles import Actor, Grant

router = api_router(tags=["forms and exports"], responses=ERROR_RESPONSES)
Auditors = Annotated[Actor, Depends(require(Grant.READ_EVIDENCE, "当前角色无权导出案件证据包"))]
Format = Literal["html", "pdf"]
PRINTABLE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/html": {}, "application/pdf": {}}}
}


def _printed(html: str, pdf: bytes | None, name: str) -> Response:
    if pdf is None:
        return HTMLResponse(html)
    return Response(
        pdf, media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{name}.pdf"'},
    )  # fmt: skip


@router.get(
    "/api/cases/{case_id}/form",
    response_class=Response,
    responses=PRINTABLE,
    dependencies=[RecordsFullReads],
)
def case_form_route(
    case_id: CaseInScope,
    actor: CurrentActor,
    svc: ServicesDep,
    conn: Conn,
    format: Annotated[Format, Query()] = "html",
) -> Response:
    """The case's form as its campaign prescribes (附件1/附件2 审批登记表, or 附件3 摸底表), each
    level's opinion, reviewer and date from the audit trail, the 盖章 boxes empty. Identity
    numbers in full only for pii.read holders, and then recorded."""
    form = case_form(conn, case_id, actor, clock=svc.clock, purpose="GET /api/cases/{id}/form")
    if format == "pdf":
        return _printed("", form_pdf(form), f"case-{case_id}-form")
    return _printed(form_html(form), None, "")


@router.get(
    "/api/campaigns/{campaign_id}/survey-form", response_class=Response, responses=PRINTABLE
)
def survey_form_route(
    campaign: CampaignInScope,
    unit: QueriedUnit,
    actor: CurrentActor,
    svc: ServicesDep,
    conn: Conn,
    format: Annotated[Format, Query()] = "html",
) -> Response:
    """A unit's 摸底表 (Weihai 附件3 as one table; ?unit=, default the caller's own): every case of
    the campaign in its subtree, identity numbers masked, at most 500 rows."""
    form = unit_survey(conn, campaign.id, unit.code, actor, clock=svc.clock)
    if format == "pdf":
        return _printed("", survey_pdf(form), f"survey-{campaign.id}-{unit.code}")
    return _printed(survey_html(form), None, "")


def _json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, indent=2, default=str).encode("utf-8")


@router.get(
    "/api/cases/{case_id}/evidence",
    response_class=Response,
    responses={200: {"content": {"application/zip": {}}}},
    dependencies=[RecordsFullReads],
)
def evidence_route(actor: Auditors, case_id: CaseInScope, svc: ServicesDep, conn: Conn) -> Response:
    """A zip for auditors and managers: form.pdf (the filled form), audit.json (the entries
    with their hashes), publicity.json (the lists the case was on), payment.json (the
    reservation, the payment and the bank-file rows; null when nothing was reserved)."""
    purpose = "GET /api/cases/{id}/evidence"
    form = case_form(conn, case_id, actor, clock=svc.clock, purpose=purpose)
    records, disclosure = evidence(conn, case_id, actor, today=svc.clock.now().date())
    disclosure.record(conn, case_id, actor, purpose, svc.clock.now())
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr("form.pdf", form_pdf(form))
        bundle.writestr("audit.json", _json(records["audit"]))
        bundle.writestr("publicity.json", _json(records["publicity"]))
        bundle.writestr("payment.json", _json(records["payment"]))
    return Response(
        out.getvalue(),
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="case-{case_id}-evidence.zip"'},
    )
