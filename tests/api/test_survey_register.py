"""The survey register (摸底登记) over HTTP: the subtree's rows as JSON and as a workbook, identity
numbers masked unless pii.read — and then one pii_access row per row shown, by case or, for a
family not applying, by register row — 404 outside the subtree, and the workbook's row limit."""

from __future__ import annotations

import io
import re
from typing import Any

import httpx
import pytest
from openpyxl import load_workbook
from sqlalchemy import insert, select, text
from sqlalchemy.exc import IntegrityError

from jinqiu.workflow.audit.models import PiiAccess
from jinqiu.workflow.identity import mask_id_number
from jinqiu.workflow.survey.models import SurveyEntry
from jinqiu.workflow.survey.register import MAX_ROWS
from tests.api.conftest import World
from tests.api.test_publicity_pages import page_client
from tests.workflow.survey.files import survey_row, xlsx

CLERK = "clerk.wh-hc-001"
MANAGER = "manager.wh-hc"  # holds pii.read
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
pii_t = PiiAccess.__table__  # type: ignore[attr-defined]
entry_t = SurveyEntry.__table__  # type: ignore[attr-defined]
HEADER = (
    "单位", "职工姓名", "职工身份证号码", "学生姓名", "学生身份证号码", "类别", "是否申请",
    "建档类型", "建档日期", "备注", "案件编号", "登记人", "登记时间",
)  # fmt: skip


def imported(world: World) -> list[dict[str, Any]]:
    """Two families registered at WH-HC-001: one applying (a case), one not."""
    rows = [survey_row(), survey_row(是否申请="否", 建档类型="相对困难", 备注="仅摸底")]
    response = world.client.post(
        f"/api/campaigns/{world.campaign}/imports",
        params={"dry_run": "false"},
        files={"file": ("摸底表.xlsx", xlsx(rows), XLSX)},
        headers=world.as_(CLERK),
    )
    assert response.status_code == 200, response.text
    assert response.json()["registered"] == 2, response.text
    return rows


def register(world: World, who: str, **params: str) -> httpx.Response:
    return world.client.get(
        f"/api/campaigns/{world.campaign}/survey-register",
        params=params,
        headers=world.as_(who),
    )


def entries(world: World) -> dict[str, Any]:
    """The register rows by student identity number."""
    with world.engine.connect() as conn:
        return {r.student_id_number: r for r in conn.execute(select(entry_t))}


def reads(world: World) -> list[tuple[int | None, int | None, str, list[str]]]:
    with world.engine.connect() as conn:
        return [
            (r.case_id, r.survey_entry_id, r.actor, sorted(r.fields))
            for r in conn.execute(select(pii_t).order_by(pii_t.c.id))
        ]


def test_masked_by_default_as_json_and_as_a_workbook(world: World) -> None:
    rows = imported(world)
    listed = register(world, CLERK)
    assert listed.status_code == 200, listed.text
    body = listed.json()
    assert (body["total"], body["pii_unmasked"]) == (2, False)
    numbers = {i["student_id_number"] for i in body["items"]}
    assert numbers == {mask_id_number(r["身份证号码"]) for r in rows}
    assert {i["applying"] for i in body["items"]} == {True, False}

    book = register(world, CLERK, format="xlsx")
    assert book.status_code == 200, book.text
    assert book.headers["content-type"] == XLSX
    sheet = load_workbook(io.BytesIO(book.content))["摸底登记"]
    assert tuple(c.value for c in sheet[1]) == HEADER
    # In the unit's order of registering: the file's order.
    first, line = list(sheet.iter_rows(min_row=2, values_only=True))
    applying, surveyed = rows
    assert line[2] == mask_id_number(surveyed["职工身份证号码"])
    assert line[4] == mask_id_number(surveyed["身份证号码"])
    # survey_row() carries an exam score and an admitting school: the form's second section.
    assert line[5:10] == ("今年参加中考或高考", "否", "相对困难", "2024-03-01", "仅摸底")
    assert line[10] is None  # no case
    assert first[4] == mask_id_number(applying["身份证号码"])
    assert first[6] == "是"
    assert isinstance(first[10], int)  # its case's number
    assert reads(world) == []


def test_with_pii_read_full_numbers_and_each_row_logged(world: World) -> None:
    rows = imported(world)
    by_number = entries(world)
    applying, surveyed = (by_number[r["身份证号码"]] for r in rows)
    assert applying.case_id is not None and surveyed.case_id is None

    book = register(world, MANAGER, format="xlsx", unit="WH-HC-001")
    assert book.status_code == 200, book.text
    sheet = load_workbook(io.BytesIO(book.content))["摸底登记"]
    lines = list(sheet.iter_rows(min_row=2))
    assert {line[4].value for line in lines} == {r["身份证号码"] for r in rows}
    assert {line[2].value for line in lines} == {r["职工身份证号码"] for r in rows}
    # Text cells: Excel keeps all eighteen digits.
    assert all(line[i].number_format == "@" and line[i].data_type == "s" for line in lines
               for i in (2, 4))  # fmt: skip
    both = ["student.id_number", "worker.id_number"]
    assert sorted(reads(world), key=str) == sorted(
        [(applying.case_id, None, MANAGER, both), (None, surveyed.id, MANAGER, both)], key=str
    )

    # The auditor's log names the register row that has no case.
    log = world.client.get("/api/audit/pii-access", headers=world.as_("auditor.wh-hc"))
    assert log.status_code == 200, log.text
    assert {(e["case"], e["survey_entry_id"]) for e in log.json()} == {
        (applying.case_id, None),
        (None, surveyed.id),
    }
    sibling = world.client.get("/api/audit/pii-access", headers=world.as_("auditor.wh-hc-002"))
    assert sibling.json() == []

    listed = register(world, MANAGER, page_size="1")
    assert listed.json()["pii_unmasked"] is True
    assert (len(listed.json()["items"]), listed.json()["total"]) == (1, 2)
    assert len(reads(world)) == 3  # one more row shown in full, one more read


def test_a_subject_is_exactly_one_of_a_case_and_a_register_row(world: World) -> None:
    imported(world)
    applying = next(r for r in entries(world).values() if r.case_id is not None)
    row = {"actor": "x", "fields": [], "purpose": "test", "at": world.clock.now()}
    for subject in ({}, {"case_id": applying.case_id, "survey_entry_id": applying.id}):
        with pytest.raises(IntegrityError, match=r"(?i)check"), world.engine.begin() as conn:
            conn.execute(insert(pii_t).values(**row, **subject))


def test_outside_the_subtree_is_not_found_and_roles_without_the_register_are_refused(
    world: World,
) -> None:
    imported(world)
    outside = register(world, "clerk.wh-hc-002", unit="WH-HC-001")
    assert outside.status_code == 404 and outside.json()["code"] == "not_found"
    # A sibling's own register is empty: nothing of WH-HC-001 shows.
    own = register(world, "clerk.wh-hc-002")
    assert own.json()["total"] == 0
    refused = register(world, "reviewer.wh-hc", format="xlsx")
    assert refused.status_code == 403 and refused.json()["code"] == "forbidden"
    auditor = register(world, "auditor.wh-hc")
    assert auditor.status_code == 200 and auditor.json()["total"] == 2


def test_a_workbook_over_the_limit_is_refused_naming_it(world: World) -> None:
    with world.engine.begin() as conn:
        unit = conn.execute(text("SELECT id FROM unit WHERE code = 'WH-HC-001'")).scalar_one()
        conn.execute(
            insert(entry_t),
            [
                {
                    "campaign_id": world.campaign,
                    "unit_id": unit,
                    "row_number": i,
                    "row_hash": f"{i:064d}",
                    "worker_name": "张三",
                    "worker_id_number": f"{i:018d}",
                    "student_name": "张小三",
                    "student_id_number": f"{i:018d}",
                    "section": "in_school",
                    "applying": False,
                    "archive_status": "none",
                    "form": {},
                    "registered_by": CLERK,
                    "registered_at": world.clock.now(),
                }
                for i in range(MAX_ROWS + 1)
            ],
        )
    refused = register(world, MANAGER, format="xlsx")
    assert refused.status_code == 422, refused.text
    body = refused.json()
    assert body["code"] == "validation_error"
    assert body["details"][0]["field"] == "unit"
    assert "20000" in body["message"] and "下级单位" in body["message"]
    assert reads(world) == []  # refused before anything was read
    page = register(world, CLERK, page="2", page_size="500")
    assert (page.json()["total"], len(page.json()["items"])) == (MAX_ROWS + 1, 500)


def test_the_imports_page_links_the_register_and_the_page_download_is_the_same(
    world: World,
) -> None:
    rows = imported(world)
    client = page_client(world, MANAGER)
    page = client.get("/imports", params={"campaign": world.campaign})
    assert page.status_code == 200, page.text
    link = re.search(r'href="(/imports/register\?[^"]+)" data-testid="register-link"', page.text)
    assert link, page.text
    book = client.get(link.group(1).replace("&amp;", "&"))
    assert book.status_code == 200, book.text[:500]
    sheet = load_workbook(io.BytesIO(book.content))["摸底登记"]
    assert {r[4] for r in sheet.iter_rows(min_row=2, values_only=True)} == {
        r["身份证号码"] for r in rows
    }
    assert [purpose for (purpose,) in _purposes(world)] == ["GET /imports/register"] * 2

    # Outside the subtree: an error page, not JSON, and nothing read.
    sibling = page_client(world, "clerk.wh-hc-002").get(
        "/imports/register",
        params={"campaign": world.campaign, "unit": "WH-HC-001"},
        headers={"Accept": "text/html"},  # what a browser asks for
    )
    assert sibling.status_code == 404
    assert sibling.headers["content-type"].startswith("text/html")
    assert len(_purposes(world)) == 2


def _purposes(world: World) -> list[tuple[str]]:
    with world.engine.connect() as conn:
        return [(r.purpose,) for r in conn.execute(select(pii_t.c.purpose))]
