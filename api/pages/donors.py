"""Donors (社会资源) and units' own funds (自筹) as a page: a campaign's donors brought in by the
user's subtree, each with its fund and the students it aided, and the 自筹 records of the
subtree; a form to record a donor (campaign managers) and one to record 自筹 (those who file
the unit's report). Each form is validated by the API route's own body model and goes through
the same service as `POST /api/campaigns/{id}/donors` and `/unit-funds`; a refusal is an error
page. Free text (contact, 简介, note) is shown through masked_text without pii.read: an identity
or card number typed into it is not shown in full."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from jinqiu.api.deps import Conn, ServicesDep, unit_named
from jinqiu.api.pages import (
    OptionalCampaign,
    PageSession,
    Session,
    carried,
    check_csrf,
    form_model,
    pick_campaign,
    render,
    router,
    shown,
)
from jinqiu.api.pages.employment import campaign_of_form
from jinqiu.workflow.donors.intent import CATEGORY_LABELS, EDUCATION_LABELS
from jinqiu.workflow.donors.service import (
    SOURCE_LABELS,
    DonorIn,
    UnitFundIn,
    create_donor,
    record_unit_fund,
    unit_funds,
)
from jinqiu.workflow.errors import PermissionDenied
from jinqiu.workflow.masking import masked_text
from jinqiu.workflow.payments.reconcile import donor_funds
from jinqiu.workflow.roles import Grant

PAGE = "/donors"


def _may_record_donor(session: Session) -> bool:
    return session.actor.may(Grant.MANAGE_CAMPAIGN)


def _may_record_unit_fund(session: Session) -> bool:
    return session.actor.may(Grant.SUBMIT_REPORT)


def _shown_text(session: Session, text: str) -> str:
    return text if session.actor.may(Grant.READ_PII) else masked_text(text)


def _intent_words(intent: dict[str, Any]) -> str:
    """The donor's intent as a sentence of its rules (none: any case of the campaign)."""
    parts = []
    if intent.get("education_levels"):
        levels = "、".join(EDUCATION_LABELS.get(v, v) for v in intent["education_levels"])
        parts.append(f"学历：{levels}")
    if intent.get("categories"):
        kinds = "、".join(CATEGORY_LABELS.get(v, v) for v in intent["categories"])
        parts.append(f"类别：{kinds}")
    if intent.get("unit"):
        parts.append(f"单位：{intent.get('unit_name') or intent['unit']}及下级")
    if intent.get("freshman_only"):
        parts.append("仅当年考入")
    if intent.get("max_per_student"):
        parts.append(f"每人不超过 {intent['max_per_student']} 元")
    if intent.get("statement"):
        parts.append(f"“{intent['statement']}”")
    return "；".join(parts) or "不限"


@router.get(PAGE, response_class=HTMLResponse)
def donors_page(
    request: Request,
    session: PageSession,
    svc: ServicesDep,
    conn: Conn,
    campaign: OptionalCampaign = None,
) -> HTMLResponse:
    chosen, campaigns = pick_campaign(conn, session.actor, campaign)
    unit = unit_named(conn, session.actor.unit_code, session.actor)
    donors = [
        {
            **d,
            "contact": _shown_text(session, d["contact"]),
            "summary": _shown_text(session, d["summary"]),
            "intent_words": _intent_words(d["intent"]),
        }
        for d in donor_funds(conn, chosen.id, path=unit.path)
    ]
    funds = [
        {**f, "note": _shown_text(session, f["note"])}
        for f in unit_funds(conn, chosen.id, path=unit.path)
    ]
    return render(
        request,
        "donors.html",
        session,
        campaign=chosen,
        campaigns=campaigns,
        donors=donors,
        unit_funds=funds,
        source_labels=SOURCE_LABELS,
        levels=EDUCATION_LABELS,
        may_record_donor=_may_record_donor(session),
        may_record_unit_fund=_may_record_unit_fund(session),
        flash=shown(request, svc, session, "flash"),
    )


def _back(svc: Any, session: Session, campaign_id: int, message: str) -> Response:
    return RedirectResponse(
        f"{PAGE}?campaign={campaign_id}&{carried(svc, session, 'flash', message)}",
        status_code=303,
    )


@router.post(PAGE)
def record_donor_page(
    session: PageSession,
    svc: ServicesDep,
    conn: Conn,
    csrf_token: Annotated[str, Form()],
    campaign: Annotated[str, Form()],
    name: Annotated[str, Form(max_length=2000)],
    contact: Annotated[str, Form(max_length=2000)],
    amount: Annotated[str, Form(max_length=64)],
    summary: Annotated[str, Form(max_length=4000)] = "",
    unit: Annotated[str, Form(max_length=200)] = "",
    education_levels: Annotated[list[str] | None, Form()] = None,  # DonorIntent bounds it
    intent_unit: Annotated[str, Form(max_length=200)] = "",
    freshman_only: Annotated[str, Form(max_length=8)] = "",
    max_per_student: Annotated[str, Form(max_length=64)] = "",
    statement: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    check_csrf(session, csrf_token)
    if not _may_record_donor(session):
        raise PermissionDenied("只有活动管理者可以登记捐赠方")
    intent: dict[str, Any] = {
        "education_levels": education_levels or [],
        "freshman_only": freshman_only == "on",
        "statement": statement,
    }
    if intent_unit:
        intent["unit"] = intent_unit
    if max_per_student:
        intent["max_per_student"] = max_per_student
    fields: dict[str, Any] = {
        "name": name,
        "contact": contact,
        "amount": amount,
        "summary": summary,
        "intent": intent,
    }
    if unit:
        fields["unit"] = unit
    body = form_model(DonorIn, fields)
    chosen = campaign_of_form(conn, session, campaign)
    create_donor(conn, chosen.id, body, actor=session.actor, clock=svc.clock)
    return _back(svc, session, chosen.id, f"已登记捐赠方：{body.name}")


@router.post("/unit-funds")
def record_unit_fund_page(
    session: PageSession,
    svc: ServicesDep,
    conn: Conn,
    csrf_token: Annotated[str, Form()],
    campaign: Annotated[str, Form()],
    unit: Annotated[str, Form(max_length=200)],
    source: Annotated[str, Form(max_length=32)],
    amount: Annotated[str, Form(max_length=64)],
    note: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    check_csrf(session, csrf_token)
    if not _may_record_unit_fund(session):
        raise PermissionDenied("当前角色无权登记自筹资金")
    body = form_model(UnitFundIn, {"unit": unit, "source": source, "amount": amount, "note": note})
    chosen = campaign_of_form(conn, session, campaign)
    recorded = record_unit_fund(conn, chosen.id, body, actor=session.actor, clock=svc.clock)
    return _back(svc, session, chosen.id, f"已登记自筹：{recorded['unit']} {recorded['amount']} 元")
