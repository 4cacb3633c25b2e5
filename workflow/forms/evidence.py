"""An auditor's evidence for one case (the bundle api/http/forms.py zips with the filled form):
the case's audit entries with their hashes (verifiable offline: each entry's `prev_hash` is the
one before's `hash`), every publicity list the case was on as it stands (names masked, as the
wall showed them) and its objections, and the payment record (the reservation, the payment,
each bank-file row that carried it and the bank's answer).

Numbers in the entries and the card numbers are shown in full only to a pii.read holder
(workflow.cases.pii.Disclosure), the read recorded in pii_access on the caller's transaction —
an entry's hash is over the stored, full data, so only a full copy verifies."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Connection, select

from jinqiu.workflow.audit.models import AuditEntry
from jinqiu.workflow.campaigns.models import FundSource
from jinqiu.workflow.cases.models import Case
from jinqiu.workflow.cases.pii import Disclosure
from jinqiu.workflow.money import format_yuan
from jinqiu.workflow.payments.models import PaymentBatch, PaymentBatchItem
from jinqiu.workflow.publicity_lists.models import Objection, PublicityListMember
from jinqiu.workflow.publicity_lists.reads import list_view
from jinqiu.workflow.roles import Actor

audit_t = AuditEntry.__table__  # type: ignore[attr-defined]
case_t = Case.__table__  # type: ignore[attr-defined]
fund_t = FundSource.__table__  # type: ignore[attr-defined]
batch_t = PaymentBatch.__table__  # type: ignore[attr-defined]
item_t = PaymentBatchItem.__table__  # type: ignore[attr-defined]
member_t = PublicityListMember.__table__  # type: ignore[attr-defined]
objection_t = Objection.__table__  # type: ignore[attr-defined]


def audit_entries(conn: Connection, case_id: int, disclosure: Disclosure) -> list[dict[str, Any]]:
    rows = conn.execute(select(audit_t).where(audit_t.c.case_id == case_id).order_by(audit_t.c.seq))
    return [
        {
            "seq": r.seq,
            "event": r.event,
            "from": r.from_state,
            "to": r.to_state,
            "actor": r.actor,
            "unit": r.actor_unit,
            "opinion": None if r.opinion is None else disclosure.text(r.opinion, "opinion"),
            "data": disclosure.data(r.data, f"history.{r.seq}.data"),
            "at": r.at.isoformat(),
            "prev_hash": r.prev_hash,
            "hash": r.hash,
        }
        for r in rows
    ]


def publicity_record(conn: Connection, case_id: int, today: dt.date) -> list[dict[str, Any]]:
    """Every list that named the case (also withdrawn ones), oldest first; the case's own
    objections on each."""
    lists = conn.execute(
        select(member_t.c.list_id, member_t.c.active)
        .where(member_t.c.case_id == case_id)
        .order_by(member_t.c.list_id)
    ).all()
    out = []
    for m in lists:
        view = list_view(conn, m.list_id, today=today)
        out.append(
            {
                **{k: v for k, v in view.items() if k != "objections"},
                "case_still_on_list": bool(m.active),
                "objections": [o for o in view["objections"] if o["case_id"] == case_id],
            }
        )
    return out


def payment_record(conn: Connection, case_id: int, disclosure: Disclosure) -> dict[str, Any] | None:
    """None when the case never had money reserved."""
    case = conn.execute(
        select(case_t.c.approved_amount_fen, case_t.c.paid_on, case_t.c.payment_failures,
               fund_t.c.source)
        .outerjoin(fund_t, fund_t.c.id == case_t.c.fund_source_id)
        .where(case_t.c.id == case_id)
    ).one()  # fmt: skip
    if case.approved_amount_fen is None:
        return None
    rows = conn.execute(
        select(item_t, batch_t.c.state.label("batch_state"), batch_t.c.purpose,
               batch_t.c.csv_sha256, batch_t.c.result_sha256)
        .join(batch_t, batch_t.c.id == item_t.c.batch_id)
        .where(item_t.c.case_id == case_id)
        .order_by(item_t.c.batch_id)
    ).all()  # fmt: skip
    return {
        "approved_amount": format_yuan(case.approved_amount_fen),
        "fund_source": case.source,
        "paid_on": case.paid_on,
        "payment_failures": case.payment_failures,
        "bank_file_rows": [
            {
                "batch": r.batch_id,
                "batch_state": r.batch_state,
                "purpose": r.purpose,
                "position": r.position,
                "holder": r.holder,
                "card_number": disclosure.data({"card_number": r.card_number}, "payment")[
                    "card_number"
                ],
                "bank_name": r.bank_name,
                "amount": format_yuan(r.amount_fen),
                "outcome": r.outcome,
                "failure_reason": r.failure_reason,
                "bank_file_sha256": r.csv_sha256,
                "result_file_sha256": r.result_sha256,
            }
            for r in rows
        ],
    }


def evidence(
    conn: Connection, case_id: int, actor: Actor, *, today: dt.date
) -> tuple[dict[str, Any], Disclosure]:
    """The bundle's records; the caller records the disclosure once it has added the form's."""
    disclosure = Disclosure.for_actor(actor)
    return {
        "audit": audit_entries(conn, case_id, disclosure),
        "publicity": publicity_record(conn, case_id, today),
        "payment": payment_record(conn, case_id, disclosure),
    }, disclosure
