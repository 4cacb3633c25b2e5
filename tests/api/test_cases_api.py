"""The case endpoints end to end through HTTP, as a clerk, reviewers and approvers would use them."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select, update

from jinqiu.workflow.audit.models import AuditEntry, PiiAccess
from jinqiu.workflow.cases.models import Case
from jinqiu.workflow.db import transaction
from tests.api.conftest import World
from tests.factories import student, worker

audit_t = AuditEntry.__table__  # type: ignore[attr-defined]
pii_t = PiiAccess.__table__  # type: ignore[attr-defined]
case_t = Case.__table__  # type: ignore[attr-defined]


def create(world: World, unit: str = "WH-HC-001", **student_changes: Any) -> dict[str, Any]:
    response = world.client.post(
        "/api/cases",
        json={
            "campaign": world.campaign,
            "unit": unit,
            "worker": worker(),
            "student": student(**student_changes),
        },
        headers=world.as_(f"clerk.{unit.lower()}"),
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def fire(world: World, case: dict[str, Any], who: str, event: str, **extra: Any) -> Any:
    return world.client.post(
        f"/api/cases/{case['id']}/events",
        json={"event": event, "version": case["version"], **extra},
        headers=world.as_(who),
    )


class TestCreate:
    def test_new_case_starts_in_survey_at_version_one_with_numbers_masked(
        self, world: World
    ) -> None:
        case = create(world)
        assert (case["state"], case["version"]) == ("survey", 1)
        assert case["allowed_events"] == ["submit", "withdraw"]
        assert "*" in case["worker"]["id_number"] and case["pii_unmasked"] is False

    def test_bad_id_number_checksum_names_the_field(self, world: World) -> None:
        body = {
            "campaign": world.campaign,
            "unit": "WH-HC-001",
            "worker": worker(),
            "student": student(id_number="371002200601010010"),
        }
        response = world.client.post("/api/cases", json=body, headers=world.as_("clerk.wh-hc-001"))
        assert response.status_code == 422
        error = response.json()
        assert error["code"] == "validation_error"
        assert error["details"][0]["field"] == "student.id_number"

    def test_the_same_student_twice_is_a_duplicate(self, world: World) -> None:
        first = create(world)
        body = {
            "campaign": world.campaign,
            "unit": "WH-HC-002",
            "worker": worker(),
            "student": student(id_number=_unmasked_student_number(world, first["id"])),
        }
        response = world.client.post("/api/cases", json=body, headers=world.as_("clerk.wh-hc-002"))
        assert (response.status_code, response.json()["code"]) == (409, "duplicate_student")

    def test_unknown_fields_and_state_are_refused(self, world: World) -> None:
        body = {
            "campaign": world.campaign,
            "unit": "WH-HC-001",
            "worker": worker(),
            "student": student(),
            "state": "approval",
        }
        response = world.client.post("/api/cases", json=body, headers=world.as_("clerk.wh-hc-001"))
        assert response.status_code == 422
        assert response.json()["details"][0] == {
            "field": "state",
            "code": "extra_forbidden",
            "message": "不允许的字段",
        }


def _unmasked_student_number(world: World, case_id: int) -> str:
    response = world.client.get(f"/api/cases/{case_id}", headers=world.as_("manager.wh-hc"))
    assert response.json()["pii_unmasked"] is True
    return str(response.json()["student"]["id_number"])


class TestEvents:
    def test_submit_verify_with_versions_and_history(self, world: World) -> None:
        case = create(world)
        response = fire(world, case, "clerk.wh-hc-001", "submit")
        assert response.json() == {"id": case["id"], "state": "archive_check", "version": 2}
        stale = fire(world, case, "reviewer.wh-hc", "verify")
        assert (stale.status_code, stale.json()["code"]) == (409, "version_conflict")
        world.clock.set(dt.datetime(2024, 8, 1, 9))
        ok = fire(world, {**case, "version": 2}, "reviewer.wh-hc", "verify", opinion="核查无误")
        assert ok.json()["state"] == "ready_for_publicity"  # until a publicity list names it
        history = world.client.get(
            f"/api/cases/{case['id']}/history", headers=world.as_("auditor.wh")
        ).json()
        assert [(h["event"], h["from"], h["to"]) for h in history] == [
            ("create", None, "survey"),
            ("submit", "survey", "archive_check"),
            ("verify", "archive_check", "ready_for_publicity"),
        ]
        assert history[2]["opinion"] == "核查无误" and history[2]["actor"] == "reviewer.wh-hc"

    def test_event_not_allowed_lists_allowed_events(self, world: World) -> None:
        case = create(world)
        response = fire(world, case, "finance.wh", "pay")
        assert response.status_code == 409
        assert response.json()["details"]["allowed_events"] == []

    def test_guard_failure_is_422_with_reasons(self, world: World) -> None:
        case = create(world, already_aided_by="国家助学金")
        response = fire(world, case, "clerk.wh-hc-001", "submit")
        assert response.status_code == 422
        body = response.json()
        assert body["code"] == "guard_failed"
        assert body["details"]["reasons"][0]["code"] == "already_aided"

    def test_role_without_the_permission_gets_403(self, world: World) -> None:
        case = create(world)
        response = fire(world, case, "finance.wh-hc-001", "submit")
        assert (response.status_code, response.json()["code"]) == (403, "forbidden")

    def test_bulk_approval_gives_a_result_per_case(self, world: World) -> None:
        cases = [create(world) for _ in range(3)]
        results = world.client.post(
            "/api/cases/bulk-events",
            json={
                "event": "submit",
                "cases": [{"id": c["id"], "version": c["version"]} for c in cases]
                + [{"id": cases[0]["id"], "version": 1}],
            },
            headers=world.as_("clerk.wh-hc-001"),
        ).json()
        assert (results["succeeded"], results["failed"]) == (3, 1)
        assert results["results"][3]["error"]["code"] == "version_conflict"

    def test_bulk_answers_each_case_in_order_with_the_error_body_of_a_single_event(
        self, world: World
    ) -> None:
        first, second = create(world), create(world)
        sibling = create(world, unit="WH-HC-002")
        single = fire(world, {**second, "version": 7}, "clerk.wh-hc-001", "submit")
        assert single.status_code == 409

        response = world.client.post(
            "/api/cases/bulk-events",
            json={
                "event": "submit",
                "cases": [
                    {"id": first["id"], "version": 1},
                    {"id": sibling["id"], "version": 1},
                    {"id": second["id"], "version": 7},
                    {"id": second["id"], "version": 1},
                ],
            },
            headers=world.as_("clerk.wh-hc-001"),
        )

        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["succeeded"], body["failed"]) == (2, 2)
        done, outside, stale, done_too = body["results"]
        assert done == {
            "id": first["id"],
            "ok": True,
            "state": "archive_check",
            "version": 2,
            "error": None,
        }
        assert done_too == {**done, "id": second["id"]}
        assert (outside["id"], outside["ok"], outside["state"], outside["version"]) == (
            sibling["id"],
            False,
            None,
            None,
        )
        assert outside["error"]["code"] == "not_found"
        assert (stale["id"], stale["ok"], stale["error"]) == (second["id"], False, single.json())
        stored = world.client.get(f"/api/cases/{first['id']}", headers=world.as_("clerk.wh-hc-001"))
        assert (stored.json()["state"], stored.json()["version"]) == ("archive_check", 2)
        untouched = world.client.get(
            f"/api/cases/{sibling['id']}", headers=world.as_("clerk.wh-hc-002")
        )
        assert (untouched.json()["state"], untouched.json()["version"]) == ("survey", 1)

    def test_a_bulk_item_that_fails_unexpectedly_is_that_items_internal_error(
        self, world: World
    ) -> None:
        first, broken, last = create(world), create(world), create(world)
        with transaction(world.engine) as conn:  # a row no release of the service writes
            conn.execute(
                update(case_t).where(case_t.c.id == broken["id"]).values(state="archived_legacy")
            )

        response = world.client.post(
            "/api/cases/bulk-events",
            json={
                "event": "submit",
                "cases": [{"id": c["id"], "version": 1} for c in (first, broken, last)],
            },
            headers=world.as_("clerk.wh-hc-001"),
        )

        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["succeeded"], body["failed"]) == (2, 1)
        assert [(r["id"], r["ok"]) for r in body["results"]] == [
            (first["id"], True),
            (broken["id"], False),
            (last["id"], True),
        ]
        error = body["results"][1]["error"]
        assert (error["code"], error["details"]) == ("internal_error", None)
        assert error["message"]
        for case in (first, last):
            stored = world.client.get(
                f"/api/cases/{case['id']}", headers=world.as_("clerk.wh-hc-001")
            )
            assert stored.json()["state"] == "archive_check"


class TestPii:
    def test_full_numbers_are_shown_to_pii_holders_and_every_read_is_recorded(
        self, world: World
    ) -> None:
        case = create(world)
        masked = world.client.get(f"/api/cases/{case['id']}", headers=world.as_("reviewer.wh-hc"))
        assert "*" in masked.json()["worker"]["id_number"]
        full = world.client.get(f"/api/cases/{case['id']}", headers=world.as_("finance.wh"))
        assert "*" not in full.json()["worker"]["id_number"]
        with world.engine.connect() as conn:
            reads = conn.execute(select(func.count()).select_from(pii_t)).scalar_one()
        assert reads == 1


class TestPatch:
    def test_correction_in_survey_bumps_the_version_and_is_audited(self, world: World) -> None:
        case = create(world)
        response = world.client.patch(
            f"/api/cases/{case['id']}",
            json={"student": {"school": "青岛大学"}},
            headers={**world.as_("clerk.wh-hc-001"), "If-Match": 'W/"1"'},
        )
        assert response.status_code == 200, response.text
        assert (response.json()["version"], response.json()["student"]["school"]) == (2, "青岛大学")
        stale = world.client.patch(
            f"/api/cases/{case['id']}",
            json={"student": {"school": "鲁东大学"}},
            headers={**world.as_("clerk.wh-hc-001"), "If-Match": 'W/"1"'},
        )
        assert stale.status_code == 409

    def test_version_and_state_cannot_be_patched(self, world: World) -> None:
        case = create(world)
        for body in ({"version": 5}, {"state": "closed"}, {"student": {"approved_amount": "1"}}):
            response = world.client.patch(
                f"/api/cases/{case['id']}", json=body, headers=world.as_("clerk.wh-hc-001")
            )
            assert response.status_code == 422, body
