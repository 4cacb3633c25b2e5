"""The import page in headless Chromium (both databases): a clerk downloads the template, fills
it, uploads it for a check, reads the bad row in the table, downloads the file with its 错误说明
column, fixes the row in it and imports; the cases are there, created by the clerk."""

from __future__ import annotations

import datetime as dt
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import Engine, func, select

from jinqiu.workflow.audit.models import AuditEntry
from jinqiu.workflow.cases.models import Case
from tests.api.browser_site import DATABASES, SHOTS, Account, browser, sign_in, weihai_site
from tests.workflow.survey.files import survey_row

__all__ = ["browser"]  # the module-scoped Chromium fixture, shared
CLERK = "clerk.wh-hc-001"
case_t = Case.__table__  # type: ignore[attr-defined]
audit_t = AuditEntry.__table__  # type: ignore[attr-defined]


@pytest.fixture(params=DATABASES)
def site(request: pytest.FixtureRequest, browser: Any) -> Iterator[tuple[str, Engine, str]]:
    with weihai_site(
        request,
        now=dt.datetime(2024, 7, 20, 9),
        users=[Account(CLERK, "WH-HC-001", "clerk", "基层工会经办人")],
    ) as served:
        yield served.url, served.engine, served.dialect


def fill(template: Path, rows: list[dict[str, Any]], target: Path) -> None:
    book = load_workbook(template)
    sheet = book["摸底表"]
    headers = [str(c.value) for c in sheet[3]]
    for r, row in enumerate(rows, start=4):
        for c, header in enumerate(headers, start=1):
            sheet.cell(r, c, row.get(header))
    book.save(target)


def test_a_clerk_imports_the_survey_in_the_browser(
    browser: Any, site: tuple[str, Engine, str], tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    url, engine, dialect = site
    page = sign_in(browser, url, CLERK, "/imports")
    expect(page).to_have_url(re.compile(r"/imports"))  # back where the sign-in started

    with page.expect_download() as got:
        page.click("[data-testid=template]")
    template = tmp_path / "模板.xlsx"
    got.value.save_as(template)
    rows = [survey_row(), survey_row(当前学历="大学")]
    filled = tmp_path / "摸底表.xlsx"
    fill(template, rows, filled)

    page.set_input_files("[data-testid=upload] input[type=file]", str(filled))
    page.click("[data-testid=upload] button[value=check]")
    expect(page.locator("[data-testid=summary]")).to_contain_text("共 2 行，无误 1 行")
    errors = page.locator("[data-testid=errors] tbody tr")
    expect(errors).to_have_count(1)
    expect(errors.first).to_contain_text("当前学历")
    page.screenshot(path=str(SHOTS / f"survey-import-check-{dialect}.png"), full_page=True)

    with page.expect_download() as got:
        page.click("[data-testid=error-file]")
    marked = tmp_path / "错误说明.xlsx"
    got.value.save_as(marked)
    book = load_workbook(marked)
    sheet = book["摸底表"]
    last = sheet.max_column
    assert sheet.cell(3, last).value == "错误说明"
    assert "当前学历" in str(sheet.cell(5, last).value)
    headers = [str(c.value) for c in sheet[3]]
    sheet.cell(5, headers.index("当前学历") + 1, "本科")  # the clerk fixes it in Excel
    sheet.cell(5, last, None)
    fixed = io.BytesIO()
    book.save(fixed)
    (tmp_path / "改正后.xlsx").write_bytes(fixed.getvalue())

    page.set_input_files("[data-testid=upload] input[type=file]", str(tmp_path / "改正后.xlsx"))
    page.click("[data-testid=upload] button[value=import]")
    expect(page.locator("[data-testid=summary]")).to_contain_text("新建案件 2 件")
    page.screenshot(path=str(SHOTS / f"survey-import-done-{dialect}.png"), full_page=True)
    page.context.close()
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(case_t)).scalar_one() == 2
        actors = set(conn.execute(select(audit_t.c.actor)).scalars())
    assert actors == {CLERK}
