"""The printed form of a case from its page: the same form as GET /api/cases/{id}/form (HTML to
print from the browser, or the PDF), for a signed-in user of the case's subtree; a pii.read
holder sees the identity numbers and the read is recorded, as on the case page."""

from __future__ import annotations

from fastapi import Depends
from fastapi.responses import HTMLResponse, Response

from jinqiu.api.deps import Conn, ServicesDep, api_router
from jinqiu.api.forms import form_html, form_pdf
from jinqiu.api.pages import PageCase, PageSession, page_records_full_reads
from jinqiu.workflow.forms.content import case_form

router = api_router(include_in_schema=False)


@router.get(
    "/cases/{case_id}/form",
    response_class=HTMLResponse,
    dependencies=[Depends(page_records_full_reads)],
)
def form_page(
    case_id: PageCase, session: PageSession, svc: ServicesDep, conn: Conn
) -> HTMLResponse:
    form = case_form(conn, case_id, session.actor, clock=svc.clock, purpose="GET /cases/{id}/form")
    return HTMLResponse(form_html(form))


@router.get("/cases/{case_id}/form.pdf", dependencies=[Depends(page_records_full_reads)])
def form_pdf_page(
    case_id: PageCase, session: PageSession, svc: ServicesDep, conn: Conn
) -> Response:
    form = case_form(conn, case_id, session.actor, clock=svc.clock, purpose="GET /cases/{id}/form")
    return Response(
        form_pdf(form),
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="case-{case_id}-form.pdf"'},
    )
