"""Personal numbers (identity numbers, bank cards) on every face: masked unless the caller holds
pii.read, and every unmasked read recorded in pii_access — the API, the pages, the history, the
error messages (issue 8, findings 6, 7 and 20). SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from jinqiu.workflow.audit.models import PiiAccess
from jinqiu.workflow.cases.trail import verify_case_chains
from jinqiu.workflow.identity import make_id_number, mask_id_number
from tests.api.conftest import PASSWORD, World
from tests.factories import student, worker

pii_t = PiiAccess.__table__  # type: ignore[attr-defined]

OLD_CARD = "6217000011112222333"
NEW_CARD = "6222020200112233445"
_VALID = make_id_number("371002", dt.date(1978, 3, 14), 31)
WRONG_CHECK = _VALID[:-1] + ("0" if _VALID[-1] != "0" else "1")


def create(w: World, unit: str = "WH-HC-001", **worker_changes: Any) -> dict[str, Any]:
    body = {
        "campaign": w.campaign,
        "unit": unit,
        "worker": worker(**worker_changes),
        "student": student(),
    }
    response = w.client.post("/api/cases", json=body, headers=w.as_(f"clerk.{unit.lower()}"))
    assert response.status_code == 201, response.text
    return dict(response.json())


def full_numbers(w: World, case_id: int) -> dict[str, str]:
    """The case's numbers as stored (straight from the database, not through any face)."""
    with w.engine.connect() as conn:
        from jinqiu.workflow.cases.models import Case, Student, Worker

        case_t, worker_t = Case.__table__, Worker.__table__  # type: ignore[attr-defined]
        student_t = Student.__table__  # type: ignore[attr-defined]
        row = conn.execute(
            select(worker_t.c.id_number.label("worker"), student_t.c.id_number.label("student"))
            .select_from(case_t)
            .join(worker_t, worker_t.c.id == case_t.c.worker_id)
            .join(student_t, student_t.c.id == case_t.c.student_id)
            .where(case_t.c.id == case_id)
        ).one()
    return {"worker": row.worker, "student": row.student}


def pii_reads(w: World) -> list[Any]:
    with w.engine.connect() as conn:
        return list(conn.execute(select(pii_t).order_by(pii_t.c.id)))


def change_card(w: World, case: dict[str, Any]) -> None:
    response = w.client.patch(
        f"/api/cases/{case['id']}",
        json={"worker": {"bank_card_number": NEW_CARD}},
        headers={**w.as_("clerk.wh-hc-001"), "If-Match": f'W/"{case["version"]}"'},
    )
    assert response.status_code == 200, response.text


def history(w: World, case_id: int, who: str) -> Any:
    response = w.client.get(f"/api/cases/{case_id}/history", headers=w.as_(who))
    assert response.status_code == 200, response.text
    return response


def page_client(w: World, username: str) -> TestClient:
    """A browser of its own (its own cookie jar), signed in through the login form."""
    client = TestClient(w.client.app, raise_server_exceptions=False)
    response = client.post(
        "/login", data={"username": username, "password": PASSWORD}, follow_redirects=False
    )
    assert response.status_code == 303, response.text
    return client


class TestHistory:
    def test_a_changed_bank_card_is_masked_in_the_history_for_roles_without_pii_read(
        self, world: World
    ) -> None:
        case = create(world, bank_card_number=OLD_CARD)
        change_card(world, case)
        for who in ("clerk.wh-hc-001", "reviewer.wh-hc", "approver.wh"):
            response = history(world, case["id"], who)
            assert OLD_CARD not in response.text and NEW_CARD not in response.text, who
            amend = next(h for h in response.json() if h["event"] == "amend")
            assert amend["data"]["changes"]["worker.bank_card_number"] == {
                "from": "*" * 15 + OLD_CARD[-4:],
                "to": "*" * 15 + NEW_CARD[-4:],
            }
        assert pii_reads(world) == []

    def test_a_pii_holder_reads_the_history_in_clear_and_the_read_is_recorded(
        self, world: World
    ) -> None:
        case = create(world, bank_card_number=OLD_CARD)
        change_card(world, case)
        response = history(world, case["id"], "manager.wh-hc")
        amend = next(h for h in response.json() if h["event"] == "amend")
        assert amend["data"]["changes"]["worker.bank_card_number"] == {
            "from": OLD_CARD,
            "to": NEW_CARD,
        }
        (read,) = pii_reads(world)
        assert (read.case_id, read.actor) == (case["id"], "manager.wh-hc")
        assert "worker.bank_card_number" in read.fields
        assert "history" in read.purpose

    def test_masking_on_read_leaves_the_stored_audit_chain_verifiable(self, world: World) -> None:
        case = create(world, bank_card_number=OLD_CARD)
        change_card(world, case)
        history(world, case["id"], "clerk.wh-hc-001")
        history(world, case["id"], "auditor.wh")
        with world.engine.connect() as conn:
            assert list(verify_case_chains(conn)) == []

    def test_identity_numbers_anywhere_in_an_entry_are_masked_by_field_name(
        self, world: World
    ) -> None:
        """Whatever an entry's data holds (nested, under any known PII field name), and numbers
        typed into an opinion, leave masked as the case read masks them."""
        case = create(world)
        numbers = full_numbers(world, case["id"])
        response = world.client.post(
            f"/api/cases/{case['id']}/events",
            json={
                "event": "withdraw",
                "version": case["version"],
                "opinion": f"学生身份证号 {numbers['student']} 与户籍不符，卡号 {OLD_CARD}",
            },
            headers=world.as_("clerk.wh-hc-001"),
        )
        assert response.status_code == 200, response.text
        text = history(world, case["id"], "reviewer.wh-hc").text
        assert numbers["student"] not in text and OLD_CARD not in text
        assert mask_id_number(numbers["student"]) in text
        clear = history(world, case["id"], "auditor.wh").text
        assert numbers["student"] in clear and OLD_CARD in clear


class TestCaseRead:
    def test_the_api_and_the_page_mask_the_same_way(self, world: World) -> None:
        case = create(world, bank_card_number=OLD_CARD)
        numbers = full_numbers(world, case["id"])
        api = world.client.get(f"/api/cases/{case['id']}", headers=world.as_("clerk.wh-hc-001"))
        assert api.json()["student"]["id_number"] == mask_id_number(numbers["student"])
        page = page_client(world, "clerk.wh-hc-001").get(f"/cases/{case['id']}")
        assert page.status_code == 200
        assert numbers["student"] not in page.text
        assert mask_id_number(numbers["student"]) in page.text
        assert pii_reads(world) == []

    @pytest.mark.parametrize("who", ["manager.wh-hc", "finance.wh", "auditor.wh"])
    def test_the_case_page_in_clear_writes_a_pii_access_row(self, world: World, who: str) -> None:
        case = create(world)
        numbers = full_numbers(world, case["id"])
        page = page_client(world, who).get(f"/cases/{case['id']}")
        assert page.status_code == 200
        assert numbers["student"] in page.text
        (read,) = pii_reads(world)
        assert (read.case_id, read.actor) == (case["id"], who)
        assert "student.id_number" in read.fields
        assert read.purpose.startswith("GET /cases/")


class TestErrorMessages:
    @pytest.mark.parametrize(
        ("path", "value"),
        [
            (("worker", "bank_card_number"), "6222 0202 0011 2233"),
            (("worker", "bank_card_number"), "62220202001122334455667"),
            (("worker", "id_number"), WRONG_CHECK),
            (("student", "id_number"), "37100220060101001"),  # one digit short
        ],
    )
    def test_a_refused_number_is_not_echoed_back(
        self, world: World, path: tuple[str, str], value: str
    ) -> None:
        body: dict[str, Any] = {
            "campaign": world.campaign,
            "unit": "WH-HC-001",
            "worker": worker(),
            "student": student(),
        }
        body[path[0]][path[1]] = value
        response = world.client.post("/api/cases", json=body, headers=world.as_("clerk.wh-hc-001"))
        assert response.status_code == 422
        assert response.json()["details"][0]["field"] == ".".join(path)
        assert value not in response.text and value.replace(" ", "") not in response.text

    def test_a_refused_card_in_a_correction_is_not_echoed_back(self, world: World) -> None:
        case = create(world)
        bad = "6222-0202-0011-2233"
        response = world.client.patch(
            f"/api/cases/{case['id']}",
            json={"worker": {"bank_card_number": bad}},
            headers=world.as_("clerk.wh-hc-001"),
        )
        assert response.status_code == 422
        assert response.json()["details"][0]["field"] == "worker.bank_card_number"
        assert bad not in response.text

    def test_a_number_echoed_as_a_field_name_is_masked_in_every_error(self, world: World) -> None:
        """Field names are echoed in errors; a number typed where a key belongs is masked there,
        both in the request validation errors and in the domain's."""
        case = create(world)
        number = full_numbers(world, case["id"])["worker"]
        body: dict[str, Any] = {
            "campaign": world.campaign,
            "unit": "WH-HC-001",
            "worker": {**worker(), OLD_CARD: "x"},
            "student": student(),
        }
        refused = world.client.post("/api/cases", json=body, headers=world.as_("clerk.wh-hc-001"))
        assert refused.status_code == 422
        assert OLD_CARD not in refused.text and OLD_CARD[-4:] in refused.text
        event = world.client.post(
            f"/api/cases/{case['id']}/events",
            json={"event": "submit", "version": case["version"], "data": {number: 1}},
            headers=world.as_("clerk.wh-hc-001"),
        )
        assert event.status_code == 422
        assert number not in event.text and mask_id_number(number) in event.text


class TestDuplicateStudent:
    def test_the_refusal_names_neither_the_other_unit_nor_its_case_and_is_logged(
        self, world: World, caplog: pytest.LogCaptureFixture
    ) -> None:
        first = create(world, unit="WH-HC-001")
        number = full_numbers(world, first["id"])["student"]
        body = {
            "campaign": world.campaign,
            "unit": "WH-HC-002",
            "worker": worker(),
            "student": student(id_number=number),
        }
        with caplog.at_level(logging.INFO):
            response = world.client.post(
                "/api/cases", json=body, headers=world.as_("clerk.wh-hc-002")
            )
        assert (response.status_code, response.json()["code"]) == (409, "duplicate_student")
        error = response.json()
        assert "本次活动" in error["message"]
        shown = response.text
        for secret in (
            "WH-HC-001",
            "环翠",
            f'"case": {first["id"]}',
            f"案件 {first['id']}",
            number,
        ):
            assert secret not in shown, secret
        assert "case" not in (error["details"] or {}) and "unit" not in (error["details"] or {})
        attempts = [r for r in caplog.records if getattr(r, "event", None) == "duplicate_student"]
        assert len(attempts) == 1
        logged = attempts[0].getMessage()
        assert "clerk.wh-hc-002" in logged and "WH-HC-002" in logged
        assert number not in logged  # the log is not a second place full numbers are kept
