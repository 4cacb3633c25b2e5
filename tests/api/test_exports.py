"""Exports: the case list as .xlsx (the list's filter and bounds; identity numbers masked unless
pii.read, and then one pii_access row per case shown) and a case's evidence bundle for auditors
and managers (a zip: the filled form, the audit entries with hashes that verify offline, the
publicity lists, the payment record)."""

from __future__ import annotations

import datetime as dt
import io
import json
import zipfile
from typing import Any

from openpyxl import load_workbook
from sqlalchemy import select

from jinqiu.states import CaseState
from jinqiu.workflow.audit.chain import GENESIS, entry_hash
from jinqiu.workflow.audit.models import PiiAccess
from jinqiu.workflow.cases.models import Case, Student
from jinqiu.workflow.clock import CHINA
from jinqiu.workflow.identity import mask_id_number
from tests.api.conftest import World
from tests.api.test_forms import pdf_text
from tests.factories import case_in

pii_t = PiiAccess.__table__  # type: ignore[attr-defined]
case_t = Case.__table__  # type: ignore[attr-defined]
student_t = Student.__table__  # type: ignore[attr-defined]


def sheet_rows(content: bytes) -> list[tuple[Any, ...]]:
    sheet = load_workbook(io.BytesIO(content)).worksheets[0]
    return list(sheet.iter_rows(values_only=True))


def student_numbers(world: World) -> dict[int, str]:
    with world.engine.connect() as conn:
        return dict(
            conn.execute(
                select(case_t.c.id, student_t.c.id_number).join(
                    student_t, student_t.c.id == case_t.c.student_id
                )
            ).all()
        )


def full_reads(world: World) -> list[Any]:
    with world.engine.connect() as conn:
        return list(conn.execute(select(pii_t).order_by(pii_t.c.id)))


def test_the_case_list_as_a_workbook_masked_then_in_full_and_recorded(world: World) -> None:
    ids = [
        case_in(world.engine, world.clock, world.campaign, unit, CaseState.SURVEY)
        for unit in ("WH-HC-001", "WH-HC-001", "WH-HC-002", "WH-WD-001")
    ]
    numbers = student_numbers(world)
    params = {"campaign": world.campaign, "unit": "WH-HC", "format": "xlsx"}
    masked = world.client.get("/api/cases", params=params, headers=world.as_("reviewer.wh"))
    assert masked.status_code == 200
    assert masked.headers["content-type"].startswith("application/vnd.openxmlformats")
    header, *rows = sheet_rows(masked.content)
    assert header[0] == "案件编号" and "学生身份证号码" in header
    assert [r[0] for r in rows] == ids[:3]
    column = header.index("学生身份证号码")
    assert [r[column] for r in rows] == [mask_id_number(numbers[i]) for i in ids[:3]]
    assert full_reads(world) == []
    updated = world.clock.now().astimezone(CHINA).strftime("%Y-%m-%d %H:%M")  # not UTC
    assert {r[header.index("更新时间")] for r in rows} == {updated}
    # The same filter as the JSON list, page by page.
    page = world.client.get(
        "/api/cases", params={**params, "page_size": 2, "page": 2}, headers=world.as_("auditor.wh")
    )
    header, *rows = sheet_rows(page.content)
    assert [(r[0], r[column]) for r in rows] == [(ids[2], numbers[ids[2]])]
    reads = full_reads(world)
    assert [(r.case_id, r.actor, r.purpose) for r in reads] == [
        (ids[2], "auditor.wh", "GET /api/cases?format=xlsx")
    ]
    assert sorted(reads[0].fields) == ["student.id_number", "worker.id_number"]
    too_big = world.client.get(
        "/api/cases", params={**params, "page_size": 501}, headers=world.as_("auditor.wh")
    )
    assert too_big.status_code == 422


def test_the_evidence_bundle_verifies_and_holds_the_list_and_the_payment(world: World) -> None:
    listed = case_in(world.engine, world.clock, world.campaign, "WH-HC-001",
                     CaseState.READY_FOR_PUBLICITY)  # fmt: skip
    paid = case_in(world.engine, world.clock, world.campaign, "WH-HC-001", CaseState.FOLLOW_UP)
    world.clock.set(dt.datetime(2024, 8, 12, 9))
    reviewer = world.as_("reviewer.wh-hc")
    made = world.client.post(f"/api/campaigns/{world.campaign}/publicity-lists",
                             json={"unit": "WH-HC-001"}, headers=reviewer)  # fmt: skip
    assert made.status_code == 201, made.text
    world.client.post(f"/api/publicity-lists/{made.json()['id']}/publish", headers=reviewer)

    refused = world.client.get(f"/api/cases/{listed}/evidence", headers=world.as_("finance.wh"))
    assert refused.status_code == 403
    outside = world.client.get(f"/api/cases/{listed}/evidence", headers=world.as_("auditor.wh-wd"))
    assert outside.status_code == 404
    assert full_reads(world) == []

    answer = world.client.get(f"/api/cases/{listed}/evidence", headers=world.as_("auditor.wh"))
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/zip"
    bundle = zipfile.ZipFile(io.BytesIO(answer.content))
    assert sorted(bundle.namelist()) == ["audit.json", "form.pdf", "payment.json", "publicity.json"]
    assert "困难职工子女金秋助学情况摸底表" in pdf_text(bundle.read("form.pdf"))
    entries = json.loads(bundle.read("audit.json"))
    previous = GENESIS
    for entry in entries:  # the chain recomputed from the bundle alone
        assert entry["prev_hash"] == previous
        assert entry["hash"] == entry_hash(
            prev_hash=previous, case_id=listed, seq=entry["seq"], actor=entry["actor"],
            actor_unit=entry["unit"], event=entry["event"], from_state=entry["from"],
            to_state=entry["to"], opinion=entry["opinion"], data=entry["data"],
            at=dt.datetime.fromisoformat(entry["at"]),
        )  # fmt: skip
        previous = entry["hash"]
    assert entries[-1]["event"] == "publish"
    (shown,) = json.loads(bundle.read("publicity.json"))
    assert shown["id"] == made.json()["id"] and shown["status"] == "published"
    assert shown["case_still_on_list"] is True and listed in shown["case_ids"]
    assert json.loads(bundle.read("payment.json")) is None
    assert [r.purpose for r in full_reads(world)] == ["GET /api/cases/{id}/evidence"]

    money = zipfile.ZipFile(io.BytesIO(world.client.get(
        f"/api/cases/{paid}/evidence", headers=world.as_("manager.wh-hc")).content))  # fmt: skip
    payment = json.loads(money.read("payment.json"))
    assert payment["approved_amount"] == "3000.00" and payment["paid_on"]
    assert json.loads(money.read("publicity.json")) == []
