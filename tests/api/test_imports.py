"""The survey import over HTTP: the template, a dry run as JSON and as the 错误说明 workbook,
the import itself, and the refusals (size, unreadable files) in the contract's shape."""

from __future__ import annotations

import io

import httpx
from openpyxl import load_workbook
from sqlalchemy import func, select

from jinqiu.workflow.cases.models import Case
from jinqiu.workflow.survey.models import SurveyEntry
from jinqiu.workflow.survey.sheet import MAX_FILE_BYTES
from tests.api.conftest import World
from tests.workflow.survey.files import survey_row, xlsx, zip_bomb

CLERK = "clerk.wh-hc-001"
case_t = Case.__table__  # type: ignore[attr-defined]
entry_t = SurveyEntry.__table__  # type: ignore[attr-defined]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def post(world: World, content: bytes, **params: str) -> httpx.Response:
    return world.client.post(
        f"/api/campaigns/{world.campaign}/imports",
        params=params,
        files={"file": ("摸底表.xlsx", content, XLSX)},
        headers=world.as_(CLERK),
    )


def cases(world: World) -> int:
    with world.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(case_t)).scalar_one())


def test_the_template_is_a_workbook_with_the_forms_headers(world: World) -> None:
    response = world.client.get(
        f"/api/campaigns/{world.campaign}/import-template", headers=world.as_(CLERK)
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == XLSX
    sheet = load_workbook(io.BytesIO(response.content))["摸底表"]
    headers = [c.value for c in sheet[3]]
    for header in (
        "学生姓名",
        "与职工关系",
        "身份证号码",
        "户口类型",
        "当前学历",
        "入学年份",
        "学校",
    ):
        assert header in headers


def test_a_dry_run_then_the_import(world: World) -> None:
    content = xlsx([survey_row(), survey_row(当前学历="大学")])
    dry = post(world, content)
    assert dry.status_code == 200, dry.text
    body = dry.json()
    assert (body["rows"], body["valid"], body["created"], body["dry_run"]) == (2, 1, 0, True)
    assert body["errors"] == [
        {
            "row": 5,
            "column": "当前学历",
            "code": "not_allowed",
            "message": body["errors"][0]["message"],
        }
    ]
    marked = post(world, content, format="xlsx")
    sheet = load_workbook(io.BytesIO(marked.content)).active
    assert sheet is not None
    assert sheet.cell(3, sheet.max_column).value == "错误说明"
    assert "当前学历" in str(sheet.cell(5, sheet.max_column).value)

    refused = post(world, content, dry_run="false").json()
    assert (refused["created"], refused["written"]) == (0, False)
    assert cases(world) == 0

    imported = post(world, content, dry_run="false", skip_invalid="true").json()
    assert (imported["created"], imported["written"], len(imported["errors"])) == (1, True, 1)
    assert cases(world) == 1


def test_a_file_over_5_mb_is_413(world: World) -> None:
    response = post(world, b"x" * (MAX_FILE_BYTES + 10))
    assert response.status_code == 413
    assert response.json()["code"] == "too_large"


def test_a_20_mb_upload_is_refused_before_it_is_read(world: World) -> None:
    response = post(world, b"x" * (20 * 1024 * 1024 + 1))
    assert response.status_code == 413


def test_a_zip_bomb_is_422_file_unreadable(world: World) -> None:
    response = post(world, zip_bomb())
    assert response.status_code == 422
    body = response.json()
    assert (body["code"], body["details"]["reason"]) == ("file_unreadable", "zip_bomb")
    with world.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(entry_t)).scalar_one() == 0


def test_a_reviewer_may_not_import(world: World) -> None:
    response = world.client.post(
        f"/api/campaigns/{world.campaign}/imports",
        files={"file": ("a.xlsx", xlsx([survey_row()]), XLSX)},
        headers=world.as_("reviewer.wh-hc-001"),
    )
    assert response.status_code == 403
