"""The printed forms of a case (Dalian 附件1/附件2 审批登记表, Weihai 附件3 摸底表) and a unit's
摸底表: filled from the case and its audit trail — each level's opinion, reviewer and date in its
box —, identity numbers in full only for pii.read (and then in pii_access), 404 outside the
subtree; laid out by headless Chromium on A4 (PNG kept under docs/screenshots/) and as PDF,
whose text is read back."""

from __future__ import annotations

import base64
import datetime as dt
import re
import shutil
import zlib
from typing import Any

from sqlalchemy import func, select, text

from jinqiu.states import CaseState
from jinqiu.workflow.audit.models import PiiAccess
from jinqiu.workflow.campaigns.service import load_campaign
from jinqiu.workflow.db import transaction
from jinqiu.workflow.identity import make_id_number, mask_id_number
from tests.api.browser_site import SHOTS, browser  # noqa: F401  (the module's browser fixture)
from tests.api.conftest import World
from tests.api.test_publicity_pages import page_client
from tests.api.test_publicity_print import A4_AT_96_DPI, png_size
from tests.factories import ROOT, case_in, weihai_file

pii_t = PiiAccess.__table__  # type: ignore[attr-defined]
DOCS = ROOT / "docs" / "screenshots"
WORKER_ID = make_id_number("371002", dt.date(1976, 5, 9), 37)
OPINIONS = {  # level → (approver, day, opinion)
    "grassroots": ("approver.wh-hc-001", dt.datetime(2024, 8, 20, 10), "情况属实，同意上报"),
    "district": ("approver.wh-hc", dt.datetime(2024, 8, 22, 15), "经审核符合资助条件"),
    "city": ("approver.wh", dt.datetime(2024, 8, 26, 9), "同意资助三千元"),
}


def dalian_campaign(world: World) -> int:
    """Weihai's campaign under another name, printing Dalian's approval registration forms."""
    spec = weihai_file(name="2024年金秋助学（大连表式）", forms=["dalian_approval"])
    with transaction(world.engine) as conn:
        return load_campaign(conn, spec, world.clock)


def approved_case(world: World, campaign: int, *, enrolled: int = 2024) -> int:
    """A case in approval, then approved at each of the three levels through the API."""
    case_id = case_in(
        world.engine, world.clock, campaign, "WH-HC-001", CaseState.APPROVAL,
        worker_changes={"name": "王建国", "id_number": WORKER_ID,
                        "categories": ["migrant_worker"]},
        student_changes={"name": "王小明", "enrollment_year": enrolled,
                         "admitted_school": "大连理工大学", "major": "机械工程"},
    )  # fmt: skip
    for approver, when, opinion in OPINIONS.values():
        world.clock.set(when)
        version = world.client.get(f"/api/cases/{case_id}", headers=world.as_(approver))
        answer = world.client.post(
            f"/api/cases/{case_id}/events",
            json={"event": "approve", "version": version.json()["version"], "opinion": opinion},
            headers=world.as_(approver),
        )
        assert answer.status_code == 200, answer.text
    return case_id


def pii_reads(world: World, case_id: int) -> list[Any]:
    with world.engine.connect() as conn:
        return list(
            conn.execute(
                select(pii_t.c.actor, pii_t.c.fields, pii_t.c.purpose)
                .where(pii_t.c.case_id == case_id)
                .order_by(pii_t.c.id)
            )
        )


def pdf_text(pdf: bytes) -> str:
    """The text a reportlab PDF shows with the CID font: each content stream decoded (ASCII85,
    then Flate, as reportlab writes them), the UCS-2 strings of its text operators read."""
    out = []
    for stream in re.findall(rb"stream\r?\n(.*?)endstream", pdf, re.DOTALL):
        try:
            content = zlib.decompress(base64.a85decode(stream.strip().removesuffix(b"~>")))
        except (ValueError, zlib.error):
            continue  # not a content stream (fonts, images)
        for literal in re.findall(rb"\(((?:\\.|[^\\)])*)\)\s*Tj", content, re.DOTALL):
            raw = re.sub(
                rb"\\([0-7]{1,3}|.)",
                lambda m: bytes([int(m.group(1), 8)]) if m.group(1)[:1].isdigit()
                else {b"n": b"\n", b"r": b"\r", b"t": b"\t"}.get(m.group(1), m.group(1)),
                literal,
                flags=re.DOTALL,
            )  # fmt: skip
            out.append(raw.decode("utf-16-be", errors="replace"))
    return "".join(out)


def test_the_dalian_form_is_dated_the_day_the_unit_filed_it(world: World) -> None:
    """ "单位：　年　月　日" at the head of 附件1: the day the unit submitted the case (its
    latest submit), not the day it is printed; the three boxes keep their levels' own days."""
    campaign = dalian_campaign(world)
    world.clock.set(dt.datetime(2024, 7, 20, 23, 30))  # late evening in China: still 7/20
    case_id = approved_case(world, campaign)
    with world.engine.connect() as conn:
        submitted = conn.execute(
            text("SELECT at FROM audit_entry WHERE case_id = :c AND event = 'submit'"),
            {"c": case_id},
        ).scalar_one()
    assert submitted is not None
    world.clock.set(dt.datetime(2024, 8, 27, 9))
    page = world.client.get(f"/api/cases/{case_id}/form", headers=world.as_("reviewer.wh-hc")).text
    head = re.search(r'data-box="filled-on">(.*?)</span>', page)
    assert head is not None and head.group(1) == "2024年7月20日"
    pdf = world.client.get(
        f"/api/cases/{case_id}/form?format=pdf", headers=world.as_("reviewer.wh-hc")
    )
    assert pdf.status_code == 200 and "2024年7月20日" in pdf_text(pdf.content)
    assert "2024年8月27日" not in pdf_text(pdf.content)


def test_the_dalian_freshman_form_has_each_levels_opinion_reviewer_and_date(world: World) -> None:
    campaign = dalian_campaign(world)
    case_id = approved_case(world, campaign)
    world.clock.set(dt.datetime(2024, 8, 27, 9))
    html = world.client.get(f"/api/cases/{case_id}/form", headers=world.as_("reviewer.wh-hc"))
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    page = html.text
    assert "附件1" in page and "当年考入大学学生“金秋助学”审批登记表" in page
    assert "王建国" in page and "王小明" in page and "大连理工大学　机械工程" in page
    # Masked for a role without pii.read, and no read recorded.
    assert WORKER_ID not in page and mask_id_number(WORKER_ID) in page
    assert pii_reads(world, case_id) == []
    for level, (approver, when, opinion) in OPINIONS.items():
        box = re.search(rf'data-box="opinion-{level}">(.*?)</td>', page, re.DOTALL)
        assert box is not None, level
        assert opinion in box.group(1)
        assert f"{when.year}年{when.month}月{when.day}日" in box.group(1)
        assert f"{approver.split('.')[0]}@{approver.split('.')[1].upper()}" in box.group(1)
        assert "盖章" in box.group(1)
    assert 'data-box="migrant">☑' in page and 'data-box="archived">☑' in page


def test_a_pii_holder_sees_the_number_and_the_read_is_recorded(world: World) -> None:
    campaign = dalian_campaign(world)
    case_id = approved_case(world, campaign, enrolled=2023)
    page = world.client.get(f"/api/cases/{case_id}/form", headers=world.as_("manager.wh")).text
    assert "附件2" in page and "大学在读学生“金秋助学”审批登记表" in page and "考取年度" in page
    assert WORKER_ID in page
    (read,) = pii_reads(world, case_id)[-1:]
    assert read.actor == "manager.wh" and read.purpose == "GET /api/cases/{id}/form"
    assert "worker.id_number" in read.fields


def test_outside_the_subtree_the_form_is_not_found(world: World) -> None:
    campaign = dalian_campaign(world)
    case_id = case_in(world.engine, world.clock, campaign, "WH-HC-001", CaseState.SURVEY)
    for who in ("manager.wh-hc-002", "manager.wh-wd"):
        answer = world.client.get(f"/api/cases/{case_id}/form", headers=world.as_(who))
        assert answer.status_code == 404 and answer.json()["code"] == "not_found"
    assert pii_reads(world, case_id) == []


def test_the_pdf_carries_the_same_boxes(world: World) -> None:
    campaign = dalian_campaign(world)
    case_id = approved_case(world, campaign)
    answer = world.client.get(
        f"/api/cases/{case_id}/form", params={"format": "pdf"}, headers=world.as_("auditor.wh")
    )
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/pdf"
    shown = pdf_text(answer.content)
    for _approver, when, opinion in OPINIONS.values():
        assert opinion in shown
        assert f"{when.year}年{when.month}月{when.day}日" in shown
    assert "王建国" in shown and "考上大学子女姓名" in shown and WORKER_ID in shown
    assert "企业工会（街道工会）审查意见" in shown and "市总工会审批意见" in shown
    assert pii_reads(world, case_id)[-1].actor == "auditor.wh"


def _render(browser: Any, html: str, name: str, dialect: str) -> Any:  # noqa: F811
    context = browser.new_context(viewport=A4_AT_96_DPI, locale="zh-CN")
    page = context.new_page()
    page.emulate_media(media="print")
    page.set_content(html, wait_until="load")
    assert page.locator("table").first.bounding_box()["width"] <= A4_AT_96_DPI["width"]
    SHOTS.mkdir(parents=True, exist_ok=True)
    shot = SHOTS / f"{name}-{dialect}.png"
    width, height = png_size(page.screenshot(path=str(shot), full_page=True))
    assert width == A4_AT_96_DPI["width"] and height >= 600
    if dialect == "sqlite":
        DOCS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, DOCS / f"{name}.png")
    return context, page


def test_the_forms_print_on_a4_with_the_words_in_their_boxes(
    world: World,
    browser: Any,  # noqa: F811
) -> None:
    dialect = world.engine.dialect.name
    campaign = dalian_campaign(world)
    case_id = approved_case(world, campaign)
    html = world.client.get(f"/api/cases/{case_id}/form", headers=world.as_("manager.wh")).text
    context, page = _render(browser, html, "case-form-dalian", dialect)
    try:
        for level, (approver, when, opinion) in OPINIONS.items():
            assert page.inner_text(f'[data-box="opinion-text-{level}"]') == opinion
            assert page.inner_text(f'[data-box="date-{level}"]') == (
                f"{when.year}年{when.month}月{when.day}日"
            )
            assert approver.split(".")[0] in page.inner_text(f'[data-box="reviewer-{level}"]')
        assert page.inner_text('[data-box="worker-name"]') == "王建国"
        assert page.inner_text('[data-box="worker-id-number"]') == WORKER_ID
        # The boxes sit in the rows of their levels, top to bottom.
        tops = [page.locator(f'[data-box="opinion-{lvl}"]').bounding_box()["y"] for lvl in OPINIONS]
        assert tops == sorted(tops)
        pdf = page.pdf(format="A4", print_background=True)
        assert pdf.startswith(b"%PDF-")
    finally:
        context.close()
    # Weihai's campaign prints its 摸底表 (附件3) for the same kind of case.
    weihai_case = approved_case(world, world.campaign)
    html = world.client.get(f"/api/cases/{weihai_case}/form", headers=world.as_("reviewer.wh")).text
    context, page = _render(browser, html, "case-form-weihai", dialect)
    try:
        assert "困难职工子女金秋助学情况摸底表" in page.inner_text("h1")
        assert page.inner_text('[data-box="student-name"]') == "王小明"
        assert page.inner_text('[data-box="student-id-number"]').count("*") == 8
        assert page.inner_text('[data-box="opinion-text-city"]') == OPINIONS["city"][2]
    finally:
        context.close()


def test_a_units_survey_form_lists_its_cases_masked(world: World) -> None:
    names = ("张小明", "李华", "赵磊")
    for name in names:
        case_in(world.engine, world.clock, world.campaign, "WH-HC-001", CaseState.SURVEY,
                student_changes={"name": name})  # fmt: skip
    case_in(world.engine, world.clock, world.campaign, "WH-HC-002", CaseState.SURVEY,
            student_changes={"name": "钱多多"})  # fmt: skip
    url = f"/api/campaigns/{world.campaign}/survey-form"
    page = world.client.get(url, params={"unit": "WH-HC-001"}, headers=world.as_("manager.wh"))
    assert page.status_code == 200
    assert all(n in page.text for n in names) and "钱多多" not in page.text
    assert page.text.count("<tr data-case=") == 3
    with world.engine.connect() as conn:
        numbers = [r[0] for r in conn.execute(text("SELECT id_number FROM student"))]
    assert not any(n in page.text for n in numbers)
    pdf = world.client.get(url, params={"unit": "WH-HC-001", "format": "pdf"},
                           headers=world.as_("clerk.wh-hc-001"))  # fmt: skip
    assert pdf.status_code == 200 and "张小明" in pdf_text(pdf.content)
    sibling = world.client.get(url, params={"unit": "WH-HC-001"},
                               headers=world.as_("manager.wh-hc-002"))  # fmt: skip
    assert sibling.status_code == 404
    with world.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(pii_t)).scalar_one() == 0


def test_the_case_page_links_to_its_printed_form(world: World) -> None:
    campaign = dalian_campaign(world)
    case_id = approved_case(world, campaign)
    clerk = page_client(world, "clerk.wh-hc-001")
    page = clerk.get(f"/cases/{case_id}").text
    assert f'href="/cases/{case_id}/form"' in page and f'href="/cases/{case_id}/form.pdf"' in page
    form = clerk.get(f"/cases/{case_id}/form")
    assert form.status_code == 200 and OPINIONS["city"][2] in form.text
    assert WORKER_ID not in form.text
    pdf = clerk.get(f"/cases/{case_id}/form.pdf")
    assert pdf.headers["content-type"] == "application/pdf" and "王小明" in pdf_text(pdf.content)
    assert pii_reads(world, case_id) == []
    manager = page_client(world, "manager.wh")
    assert WORKER_ID in manager.get(f"/cases/{case_id}/form").text
    assert [r.purpose for r in pii_reads(world, case_id)] == ["GET /cases/{id}/form"]
    outside = page_client(world, "manager.wh-wd").get(
        f"/cases/{case_id}/form", headers={"Accept": "text/html"}
    )
    assert outside.status_code == 404 and "text/html" in outside.headers["content-type"]
