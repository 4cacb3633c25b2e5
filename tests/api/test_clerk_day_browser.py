"""A grassroots clerk's day in headless Chromium, without the API (both databases): sign in,
download the survey template, fill it with openpyxl (one bad row), upload it for a check and read
the bad row's message, fix the file, import; open a created case from the work queue, upload a
real PNG, submit and see the new state; enter a case in the form, the bad identity number named
next to its field, fix it and land on the new case; read the reminder in the inbox, its count in
the nav, and mark it read. The SQLite run's new-case form with its inline error is kept as
docs/screenshots/case-new.png."""

from __future__ import annotations

import datetime as dt
import io
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from PIL import Image
from sqlalchemy import Engine, func, select

from jinqiu.notifications.models import InboxMessage
from jinqiu.notifications.outbox import InboxItem, post_to_inbox
from jinqiu.states import MACHINE, CaseState
from jinqiu.workflow.attachments.models import Attachment
from jinqiu.workflow.cases.models import Case
from jinqiu.workflow.db import transaction
from jinqiu.workflow.identity import make_id_number
from tests.api.browser_site import DATABASES, SHOTS, Account, browser, sign_in, weihai_site
from tests.api.test_import_browser import fill
from tests.factories import ROOT
from tests.workflow.survey.files import survey_row

__all__ = ["browser"]  # the module-scoped Chromium fixture, shared
CLERK = "clerk.wh-hc-001"
DOCS_SHOT = ROOT / "docs" / "screenshots" / "case-new.png"
REMINDER = "摸底表报送提醒（T-3）"
case_t = Case.__table__  # type: ignore[attr-defined]
attachment_t = Attachment.__table__  # type: ignore[attr-defined]
inbox_t = InboxMessage.__table__  # type: ignore[attr-defined]


@pytest.fixture(params=DATABASES)
def site(
    request: pytest.FixtureRequest, browser: Any, tmp_path: Path
) -> Iterator[tuple[str, Engine, str]]:
    with weihai_site(
        request,
        now=dt.datetime(2024, 7, 20, 9),
        users=[Account(CLERK, "WH-HC-001", "clerk", "基层工会经办人")],
        attachments_dir=tmp_path / "attachments",
    ) as served:
        # What the morning sweep leaves a unit whose survey materials are due in three days.
        with transaction(served.engine) as conn:
            post_to_inbox(
                conn,
                [
                    InboxItem(
                        "test:reminder:WH-HC-001",
                        "WH-HC-001",
                        REMINDER,
                        "请于 2024-07-24 前报送摸底表。",
                        "/imports",
                    )
                ],
                served.clock.now(),
            )
        yield served.url, served.engine, served.dialect


def png(path: Path) -> Path:
    """A real small PNG: a scanned 困难证明, as far as the service can tell."""
    Image.new("RGB", (120, 80), (250, 240, 230)).save(path, format="PNG")
    return path


def test_a_clerk_s_day_in_the_browser(
    browser: Any, site: tuple[str, Engine, str], tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    url, engine, dialect = site
    page = sign_in(browser, url, CLERK)
    expect(page).to_have_url(re.compile(r"/queue"))  # a clerk's home is the work queue
    expect(page.locator("[data-testid=unread-count]")).to_have_text("1")

    # -- the survey: template, check, fix, import --
    page.click("header nav a[href='/imports']")
    with page.expect_download() as got:
        page.click("[data-testid=template]")
    template = tmp_path / "模板.xlsx"
    got.value.save_as(template)
    filled = tmp_path / "摸底表.xlsx"
    fill(template, [survey_row(), survey_row(当前学历="大学")], filled)
    page.set_input_files("[data-testid=upload] input[type=file]", str(filled))
    page.click("[data-testid=upload] button[value=check]")
    errors = page.locator("[data-testid=errors] tbody tr")
    expect(errors).to_have_count(1)
    expect(errors.first).to_contain_text("当前学历")
    book = load_workbook(filled)
    sheet = book["摸底表"]
    headers = [str(c.value) for c in sheet[3]]
    sheet.cell(5, headers.index("当前学历") + 1, "本科")  # the clerk fixes it in Excel
    fixed = io.BytesIO()
    book.save(fixed)
    (tmp_path / "改正后.xlsx").write_bytes(fixed.getvalue())
    page.set_input_files("[data-testid=upload] input[type=file]", str(tmp_path / "改正后.xlsx"))
    page.click("[data-testid=upload] button[value=import]")
    expect(page.locator("[data-testid=summary]")).to_contain_text("新建案件 2 件")

    # -- a created case: a document, then submit --
    page.click("header nav a[href='/queue']")
    page.locator("table a[href^='/cases/']").first.click()
    page.wait_for_url(re.compile(r"/cases/\d+$"))
    case_id = int(page.url.rsplit("/", 1)[1])
    page.select_option("[data-testid=attachments] select[name=kind]", "hardship_proof")
    page.set_input_files(
        "[data-testid=attachments] input[type=file]", str(png(tmp_path / "证明.png"))
    )
    page.click("[data-testid=attachments] button[type=submit]")
    expect(page.locator(".flash")).to_contain_text("证明.png")
    expect(page.locator("[data-testid=attachments] table")).to_contain_text("证明.png")
    page.click("button[name=event][value=submit]")
    submitted_label = MACHINE.state_labels[CaseState.ARCHIVE_CHECK]
    expect(page.locator("h1 .state")).to_have_text(submitted_label)
    expect(page.locator("[data-testid=timeline]")).to_contain_text("上传材料")
    page.screenshot(path=str(SHOTS / f"clerk-day-submitted-{dialect}.png"), full_page=True)

    # -- a case entered in the form: the bad number named at its field, then fixed --
    page.click("header nav a[href='/cases/new']")
    form = page.locator("[data-testid=case-form]")
    good = make_id_number("371002", dt.date(2007, 9, 1), 58)
    bad = good[:-1] + ("1" if good[-1] == "0" else "0")
    for name, value in {
        "worker_name": "赵国强",
        "worker_id_number": make_id_number("371002", dt.date(1975, 2, 3), 17),
        "worker_archived_on": "2024-02-01",
        "student_name": "赵小雨",
        "student_id_number": bad,
        "student_school": "威海职业学院",
        "student_enrollment_year": "2024",
    }.items():
        form.locator(f"[name={name}]").fill(value)
    form.locator("select[name=worker_archive_status]").select_option("deep")
    form.locator("select[name=student_education_level]").select_option("college")
    form.locator("button[type=submit]").click()
    problem = page.locator("[data-field=student_id_number] .field-error")
    expect(problem).to_contain_text("校验")
    expect(page.locator("[name=student_name]")).to_have_value("赵小雨")  # what was typed stays
    shot = SHOTS / f"case-new-{dialect}.png"
    page.screenshot(path=str(shot), full_page=True)
    if dialect == "sqlite":
        DOCS_SHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, DOCS_SHOT)
    page.fill("[name=student_id_number]", good)
    page.locator("[data-testid=case-form] button[type=submit]").click()
    page.wait_for_url(re.compile(r"/cases/\d+\?"))
    expect(page.locator(".flash")).to_contain_text("已新建案件")
    expect(page.locator("h1")).to_contain_text("赵小雨")

    # -- the inbox --
    page.click("[data-testid=inbox-link]")
    item = page.locator("[data-testid=inbox-item]")
    expect(item).to_have_count(1)
    expect(item).to_contain_text(REMINDER)
    item.locator("button[type=submit]").click()
    expect(page.locator("[data-testid=inbox-item]")).to_contain_text(f"已读 · {CLERK}")
    expect(page.locator("[data-testid=unread-count]")).to_have_count(0)
    page.context.close()

    with engine.connect() as conn:
        assert conn.execute(select(case_t.c.state).where(case_t.c.id == case_id)).scalar_one() == (
            CaseState.ARCHIVE_CHECK.value
        )
        assert conn.execute(select(func.count()).select_from(case_t)).scalar_one() == 3
        kinds = conn.execute(
            select(attachment_t.c.kind, attachment_t.c.media_type).where(
                attachment_t.c.case_id == case_id
            )
        ).all()
        assert [tuple(k) for k in kinds] == [("hardship_proof", "image/png")]
        assert conn.execute(select(inbox_t.c.read_by)).scalar_one() == CLERK
