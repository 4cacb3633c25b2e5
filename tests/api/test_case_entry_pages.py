"""The clerk's case pages without a browser (both databases): a new case through the form (the
API's validation shown inline, the typed values kept, nothing written on a refusal), an
application type's own form fields, the correction of a case in survey (a stale form says so
and keeps what was typed; past survey the page says why not), a case outside the subtree a 404
page, a form without its CSRF token refused; and the submit refusal on the case page."""

from __future__ import annotations

import datetime as dt
import html
import re
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from jinqiu.states import CaseState
from jinqiu.workflow.audit.models import AuditEntry, PiiAccess
from jinqiu.workflow.campaigns.service import load_campaign
from jinqiu.workflow.cases.models import Case, Student, Worker
from jinqiu.workflow.db import transaction
from jinqiu.workflow.identity import make_id_number
from tests.api.conftest import World, username
from tests.api.test_aid_rule_pages import DALIAN, campaign_like
from tests.api.test_publicity_pages import csrf_of, page_client
from tests.factories import BY_LEVEL, case_in, case_row, new_case, student, weihai_file, worker

CLERK = username("clerk", "WH-HC-001")
case_t = Case.__table__  # type: ignore[attr-defined]
worker_t = Worker.__table__  # type: ignore[attr-defined]
student_t = Student.__table__  # type: ignore[attr-defined]
audit_t = AuditEntry.__table__  # type: ignore[attr-defined]
pii_t = PiiAccess.__table__  # type: ignore[attr-defined]
HTML = {"Accept": "text/html"}


def entry_form(csrf: str, campaign: int, unit: str = "WH-HC-001", **changes: Any) -> dict[str, Any]:
    """The new-case form as a clerk fills it: the factories' worker and student, flat."""
    form: dict[str, Any] = {"csrf_token": csrf, "campaign": str(campaign), "unit": unit}
    for section, values in (("worker", worker()), ("student", student())):
        for key, value in values.items():
            if key != "categories":
                form[f"{section}_{key}"] = str(value)
    form.update(changes)
    return form


def counts(world: World) -> tuple[int, int, int, int]:
    with world.engine.connect() as conn:
        return tuple(  # type: ignore[return-value]
            conn.execute(select(func.count()).select_from(t)).scalar_one()
            for t in (case_t, worker_t, student_t, audit_t)
        )


def field_errors(page: str, name: str) -> list[str]:
    """The messages shown beneath the input called `name`."""
    block = re.search(
        rf'<(label|fieldset) class="field invalid" data-field="{name}">(.*?)</\1>', page, re.S
    )
    assert block, f"no error shown at {name}"
    return [html.unescape(m) for m in re.findall(r'class="field-error"[^>]*>([^<]*)<', block[2])]


def value_of(page: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert found, f"no input {name}"
    return html.unescape(found[1])


def signed_in(world: World, who: str = CLERK) -> tuple[TestClient, str]:
    client = page_client(world, who)
    page = client.get("/cases/new")
    assert page.status_code == 200, page.text[:500]
    return client, csrf_of(page.text)


def test_a_clerk_creates_a_case_in_the_form(world: World) -> None:
    client, csrf = signed_in(world)
    page = client.get("/cases/new")
    assert "农民工" in page.text  # the campaign's categories, as checkboxes
    assert 'value="WH-HC-001" selected' in page.text and "WH-HC-002" not in page.text
    form = entry_form(csrf, world.campaign, worker_categories=["migrant_worker"])
    done = client.post("/cases/new", data=form, follow_redirects=False)
    assert done.status_code == 303, done.text[:800]
    case_id = int(done.headers["location"].split("?")[0].rsplit("/", 1)[1])
    shown = client.get(done.headers["location"])
    assert f"已新建案件 {case_id}" in shown.text and "摸底申报" in shown.text
    assert 'data-testid="edit-link"' in shown.text
    row = case_row(world.engine, case_id)
    assert (row.state, row.created_by, row.version) == (CaseState.SURVEY.value, CLERK, 1)
    with world.engine.connect() as conn:
        categories = conn.execute(
            select(worker_t.c.categories).where(worker_t.c.id == row.worker_id)
        ).scalar_one()
    assert categories == ["migrant_worker"]


def test_bad_fields_are_named_inline_with_what_was_typed_kept_and_nothing_written(
    world: World,
) -> None:
    client, csrf = signed_in(world)
    before = counts(world)
    good = make_id_number("371002", dt.date(2006, 5, 1), 7)
    wrong_check = good[:-1] + ("0" if good[-1] != "0" else "1")
    form = entry_form(csrf, world.campaign, student_id_number=wrong_check,
                      worker_household_size="四", worker_categories=["nope"],
                      student_name="李小花")  # fmt: skip
    page = client.post("/cases/new", data=form)
    assert page.status_code == 422, page.text[:500]
    assert "校验" in " ".join(field_errors(page.text, "student_id_number"))
    assert field_errors(page.text, "worker_household_size") == ["须为整数"]
    assert value_of(page.text, "student_name") == "李小花"  # what was typed stays
    assert value_of(page.text, "student_id_number") == wrong_check
    assert 'data-testid="form-errors"' in page.text
    assert counts(world) == before

    # The model passes, the service refuses: an unknown category, named at the checkboxes.
    page = client.post("/cases/new", data={**form, "student_id_number": good,
                                            "worker_household_size": "4"})  # fmt: skip
    assert page.status_code == 422
    assert "本活动没有类别 nope" in field_errors(page.text, "worker_categories")[0]
    assert counts(world) == before


def test_a_second_application_for_the_student_is_refused_at_the_student_s_number(
    world: World,
) -> None:
    client, csrf = signed_in(world)
    form = entry_form(csrf, world.campaign)
    assert client.post("/cases/new", data=form, follow_redirects=False).status_code == 303
    before = counts(world)
    again = client.post("/cases/new", data=form)
    assert again.status_code == 422
    assert "已有在办的申请" in field_errors(again.text, "student_id_number")[0]
    assert counts(world) == before


def test_a_unit_outside_the_clerk_s_subtree_is_refused_and_nothing_written(world: World) -> None:
    client, csrf = signed_in(world)
    before = counts(world)
    page = client.post("/cases/new", data=entry_form(csrf, world.campaign, unit="WH-HC-002"))
    assert page.status_code == 422
    assert field_errors(page.text, "unit") == ["单位不存在"]
    assert counts(world) == before


def test_forms_without_their_csrf_token_are_refused(world: World) -> None:
    client, _csrf = signed_in(world)
    case_id = new_case(world.engine, world.clock, world.campaign, "WH-HC-001")
    before = counts(world)
    for url, form in [
        ("/cases/new", entry_form("forged", world.campaign)),
        (
            f"/cases/{case_id}/edit",
            {"csrf_token": "forged", "version": "1", "student_school": "别的学校"},
        ),
    ]:
        refused = client.post(url, data=form, headers=HTML)
        assert refused.status_code == 400, refused.text[:300]
        assert "表单已过期" in refused.text and "<html" in refused.text
        missing = client.post(url, data={k: v for k, v in form.items() if k != "csrf_token"},
                              headers=HTML)  # fmt: skip
        assert missing.status_code == 422 and "<html" in missing.text
    assert counts(world) == before


def test_roles_that_do_not_enter_cases_get_a_refusal_page(world: World) -> None:
    client = page_client(world, username("reviewer", "WH-HC"))
    refused = client.get("/cases/new", headers=HTML)
    assert refused.status_code == 403 and "无权新建或修改申请" in refused.text
    case_id = new_case(world.engine, world.clock, world.campaign, "WH-HC-001")
    edit = client.get(f"/cases/{case_id}/edit", headers=HTML)
    assert edit.status_code == 403 and "<html" in edit.text


def test_an_application_type_brings_its_form_fields_and_its_documents_at_submit(
    world: World,
) -> None:
    campaign = campaign_like(world, "大连式申请", application_types=DALIAN["application_types"])
    client, csrf = signed_in(world)
    choose = client.get("/cases/new", params={"campaign": campaign})
    assert (
        'data-testid="needs-type"' in choose.text and 'data-testid="case-form"' not in choose.text
    )
    typed = client.get("/cases/new", params={"campaign": campaign, "type": "in_school"})
    assert 'name="form_first_aided_year"' in typed.text
    form = entry_form(csrf, campaign, application_type="in_school",
                      form_first_aided_year="去年")  # fmt: skip
    before = counts(world)
    page = client.post("/cases/new", data=form)
    assert page.status_code == 422
    in_school = next(t for t in DALIAN["application_types"] if t["code"] == "in_school")
    year_field = in_school["fields"][0]
    assert field_errors(page.text, "form_first_aided_year") == [
        f"「{year_field['label']}」须为年份"
    ]
    assert value_of(page.text, "form_first_aided_year") == "去年"
    assert counts(world) == before
    # The API refuses the same input with the same words (one validation for both faces), and
    # takes the type and its form once they are right.
    body = {"campaign": campaign, "unit": "WH-HC-001", "worker": worker(), "student": student(),
            "application_type": "in_school", "form": {"first_aided_year": "去年"}}  # fmt: skip
    api = world.client.post("/api/cases", json=body, headers=world.as_(CLERK))
    assert api.status_code == 422, api.text
    assert [(d["field"], d["message"]) for d in api.json()["details"]] == [
        ("form.first_aided_year", f"「{year_field['label']}」须为年份")
    ]
    api = world.client.post("/api/cases", json={**body, "form": {"first_aided_year": 2010}},
                            headers=world.as_(CLERK))  # fmt: skip
    assert api.status_code == 201, api.text
    assert (api.json()["application_type"], api.json()["form"]) == (
        "in_school",
        {"first_aided_year": 2010},
    )

    done = client.post("/cases/new", data={**form, "form_first_aided_year": "2023"},
                       follow_redirects=False)  # fmt: skip
    assert done.status_code == 303, done.text[:800]
    case_id = int(done.headers["location"].split("?")[0].rsplit("/", 1)[1])
    shown = client.get(f"/cases/{case_id}")
    assert "未上传" in shown.text  # the type's documents, each missing
    submitted = client.post(
        f"/cases/{case_id}/events",
        data={"csrf_token": csrf, "event": "submit", "version": "1"},
    )
    assert submitted.status_code == 200 and 'data-testid="refusal"' in submitted.text
    refusal = html.unescape(submitted.text)
    for document in in_school["documents"]:  # each missing one named on the page
        assert document["label"] in refusal.split('data-testid="refusal"')[1], document
    assert case_row(world.engine, case_id).state == CaseState.SURVEY.value


def test_a_clerk_corrects_a_case_in_survey(world: World) -> None:
    case_id = new_case(world.engine, world.clock, world.campaign, "WH-HC-001",
                       worker_changes={"bank_card_number": "6222020200112233445"})  # fmt: skip
    client, csrf = signed_in(world)
    page = client.get(f"/cases/{case_id}/edit")
    assert page.status_code == 200
    assert value_of(page.text, "student_school") == "山东大学（威海）"
    # The clerk holds no pii.read: the card is not in the form, its mask says what it holds.
    assert "6222020200112233445" not in page.text and "***************3445" in page.text
    assert 'name="student_id_number"' not in page.text  # not correctable
    form = {"csrf_token": csrf, "version": "1", "student_school": "哈尔滨工业大学（威海）",
            "worker_name": "王建国", "worker_archive_status": "deep",
            "worker_bank_card_number": ""}  # fmt: skip
    done = client.post(f"/cases/{case_id}/edit", data=form, follow_redirects=False)
    assert done.status_code == 303, done.text[:800]
    assert "已保存修改（版本 2）" in client.get(done.headers["location"]).text
    row = case_row(world.engine, case_id)
    with world.engine.connect() as conn:
        school = conn.execute(
            select(student_t.c.school).where(student_t.c.id == row.student_id)
        ).scalar_one()
        card = conn.execute(
            select(worker_t.c.bank_card_number).where(worker_t.c.id == row.worker_id)
        ).scalar_one()
        entry = conn.execute(
            select(audit_t.c.event, audit_t.c.data)
            .where(audit_t.c.case_id == case_id)
            .order_by(audit_t.c.seq.desc())
        ).first()
    assert (row.version, school, card) == (2, "哈尔滨工业大学（威海）", "6222020200112233445")
    assert entry is not None and entry.event == "amend"
    assert set(entry.data["changes"]) == {"student.school"}  # only what changed

    bad = client.post(f"/cases/{case_id}/edit", data={**form, "version": "2", "worker_name": "",
                                                       "student_exam_score": "5000"})  # fmt: skip
    assert bad.status_code == 422
    assert field_errors(bad.text, "worker_name") == ["不能为空"]
    assert field_errors(bad.text, "student_exam_score") == ["数值过大"]
    assert case_row(world.engine, case_id).version == 2


def test_a_stale_correction_says_so_and_keeps_what_was_typed(world: World) -> None:
    case_id = new_case(world.engine, world.clock, world.campaign, "WH-HC-001")
    client, csrf = signed_in(world)
    form = {"csrf_token": csrf, "version": "1", "student_school": "中国海洋大学",
            "student_major": "海洋科学", "worker_name": "王建国", "worker_archive_status": "deep"}  # fmt: skip
    # Meanwhile a colleague corrects the major through the API.
    other = world.client.patch(
        f"/api/cases/{case_id}",
        json={"student": {"major": "电气工程"}},
        headers={**world.as_(username("clerk", "WH-HC")), "If-Match": 'W/"1"'},
    )
    assert other.status_code == 200, other.text
    stale = client.post(f"/cases/{case_id}/edit", data=form)
    assert stale.status_code == 409, stale.text[:500]
    assert "案件已被他人修改" in stale.text and "现为版本 2" in stale.text
    assert value_of(stale.text, "student_school") == "中国海洋大学"  # nothing typed is lost
    assert "现存：电气工程" in stale.text
    assert 'name="version" value="2"' in stale.text  # saving again is a choice made knowingly
    assert case_row(world.engine, case_id).version == 2


def test_past_survey_the_edit_page_says_why_and_a_post_writes_nothing(world: World) -> None:
    case_id = case_in(world.engine, world.clock, world.campaign, "WH-HC-001",
                      CaseState.ARCHIVE_CHECK)  # fmt: skip
    client, csrf = signed_in(world)
    page = client.get(f"/cases/{case_id}/edit")
    assert page.status_code == 200 and 'data-testid="not-editable"' in page.text
    assert 'data-testid="edit-form"' not in page.text
    version = case_row(world.engine, case_id).version
    refused = client.post(f"/cases/{case_id}/edit", data={
        "csrf_token": csrf, "version": str(version), "student_school": "别的学校",
        "worker_name": "王建国", "worker_archive_status": "deep"})  # fmt: skip
    assert refused.status_code == 409
    assert 'data-testid="not-editable"' in refused.text
    assert case_row(world.engine, case_id).version == version


def test_a_case_outside_the_subtree_is_a_404_page(world: World) -> None:
    case_id = new_case(world.engine, world.clock, world.campaign, "WH-HC-002")
    client, csrf = signed_in(world)
    for response in (
        client.get(f"/cases/{case_id}/edit", headers=HTML),
        client.post(f"/cases/{case_id}/edit", headers=HTML,
                    data={"csrf_token": csrf, "version": "1", "student_school": "x"}),
    ):  # fmt: skip
        assert response.status_code == 404, response.text[:300]
        assert "<html" in response.text and f"案件 {case_id} 不存在" in response.text
    assert case_row(world.engine, case_id).version == 1


def test_a_pii_reader_sees_the_card_in_the_correction_form_and_the_read_is_logged(
    world: World,
) -> None:
    card = "6222020200112233445"
    case_id = new_case(world.engine, world.clock, world.campaign, "WH-HC-001",
                       worker_changes={"bank_card_number": card})  # fmt: skip
    manager = username("manager", "WH-HC")
    client = page_client(world, manager)
    page = client.get(f"/cases/{case_id}/edit")
    assert page.status_code == 200 and value_of(page.text, "worker_bank_card_number") == card
    with world.engine.connect() as conn:
        logged = conn.execute(
            select(pii_t.c.actor, pii_t.c.purpose).where(pii_t.c.case_id == case_id)
        ).all()
    assert [tuple(r) for r in logged] == [(manager, f"GET /cases/{case_id}/edit")]


def test_a_campaign_that_does_not_concern_the_clerk_is_a_404_page(world: World) -> None:
    with transaction(world.engine) as conn:
        elsewhere = load_campaign(
            conn, weihai_file(organizer="WH-WD", name="文登区2024年度", deadlines=BY_LEVEL),
            world.clock,
        )  # fmt: skip
    client, csrf = signed_in(world)
    assert "文登区2024年度" not in client.get("/cases/new").text  # not offered
    before = counts(world)
    for response in (
        client.get("/cases/new", params={"campaign": elsewhere}, headers=HTML),
        client.post("/cases/new", data=entry_form(csrf, elsewhere), headers=HTML),
    ):
        assert response.status_code == 404 and f"活动 {elsewhere} 不存在" in response.text
    assert counts(world) == before


def test_the_upload_form_offers_the_first_missing_document_first(world: World) -> None:
    campaign = campaign_like(world, "大连式材料", application_types=DALIAN["application_types"])
    body = {"campaign": campaign, "unit": "WH-HC-001", "worker": worker(), "student": student(),
            "application_type": "freshman"}  # fmt: skip
    made = world.client.post("/api/cases", json=body, headers=world.as_(CLERK))
    assert made.status_code == 201, made.text
    case_id = made.json()["id"]
    client, _csrf = signed_in(world)
    page = client.get(f"/cases/{case_id}").text
    freshman = next(t for t in DALIAN["application_types"] if t["code"] == "freshman")
    selected = re.findall(r'<option value="([a-z_]+)" selected>', page)
    assert selected == [freshman["documents"][0]["kind"]]
