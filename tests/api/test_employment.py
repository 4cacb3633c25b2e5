"""阳光就业 and 勤工俭学 through the API, on SQLite and PostgreSQL: an employment record driven
through its machine (every transition, the refusals), its help chained on its own audit trail
(verified, and a tampered entry named), who may register whom, and the work-study posts with
their participants."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import select, update

from jinqiu.states import CaseState
from jinqiu.states.employment_record import MACHINE, RecordEvent, RecordState
from jinqiu.workflow.employment.engine import help_t, participant_t, record_audit_t
from jinqiu.workflow.employment.trail import verify_record_chains
from tests.api.conftest import World, username
from tests.factories import case_in

CLERK = username("clerk", "WH-HC-001")


def paid_case(world: World, unit: str = "WH-HC-001") -> int:
    return case_in(world.engine, world.clock, world.campaign, unit, CaseState.FOLLOW_UP)


def post(world: World, url: str, body: Any = None, who: str = CLERK) -> httpx.Response:
    return world.client.post(url, json=body, headers=world.as_(who))


def register(world: World, case_id: int, who: str = CLERK, **changes: Any) -> httpx.Response:
    body = {
        "case_id": case_id,
        "graduation_year": 2024,
        "school": "山东大学（威海）",
        "major": "机械工程",
        "studies_locally": True,
        **changes,
    }
    return post(world, f"/api/campaigns/{world.campaign}/employment-records", body, who)


def fire(
    world: World, record: dict[str, Any], event: RecordEvent, who: str = CLERK, **body: Any
) -> httpx.Response:
    return post(
        world,
        f"/api/employment-records/{record['id']}/events",
        {"event": event.value, "version": record["version"], **body},
        who,
    )


def read(world: World, record_id: int, who: str = CLERK) -> dict[str, Any]:
    response = world.client.get(f"/api/employment-records/{record_id}", headers=world.as_(who))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def refused(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    assert body["message"]
    return body


def test_a_record_goes_from_registered_to_employed_with_its_help_on_its_own_chain(
    world: World,
) -> None:
    made = register(world, paid_case(world))
    assert made.status_code == 201, made.text
    record = made.json()
    assert (record["state"], record["version"], record["help_count"]) == ("registered", 1, 0)
    assert record["student"] == "王*明"  # a clerk holds no pii.read
    assert read(world, record["id"], "manager.wh-hc")["student"] == "王小明"

    helped = post(
        world,
        f"/api/employment-records/{record['id']}/help",
        {
            "kind": "plan",
            "text": "一人一策：简历指导，推荐本地制造业岗位",
            "given_on": "2024-07-19",
        },
    )
    assert helped.status_code == 201, helped.text
    record = helped.json()["record"]
    assert (record["version"], record["help_count"]) == (2, 1)

    steps = [
        (RecordEvent.START_SEEKING, {}, RecordState.SEEKING),
        (RecordEvent.INTERVIEW, {"data": {"employer": "威海某机械厂"}}, RecordState.INTERVIEWING),
        (RecordEvent.NO_OFFER, {}, RecordState.SEEKING),
        (RecordEvent.GIVE_UP, {"opinion": "暂未找到合适岗位"}, RecordState.NOT_EMPLOYED),
        (RecordEvent.RESUME_SEEKING, {}, RecordState.SEEKING),
        (RecordEvent.INTERVIEW, {}, RecordState.INTERVIEWING),
        (RecordEvent.EMPLOY, {"data": {"employer": "威海某电子公司"}}, RecordState.EMPLOYED),
    ]
    for event, body, state in steps:
        moved = fire(world, record, event, **body)
        assert moved.status_code == 200, (event, moved.text)
        assert moved.json()["state"] == state.value
        record = read(world, record["id"])
    assert (record["destination"], record["allowed_events"]) == ("威海某电子公司", [])
    history = [(h["event"], h["from"], h["to"]) for h in record["history"]]
    assert history[:2] == [("create", None, "registered"), ("help", "registered", "registered")]
    assert [h[0] for h in history[2:]] == [e.value for e, _, _ in steps]
    assert record["history"][1]["data"]["text"].startswith("一人一策")
    assert record["version"] == 1 + 1 + len(steps)

    # Ended: no more events, no more help.
    refused(fire(world, record, RecordEvent.RESUME_SEEKING), 409, "event_not_allowed")
    late = post(world, f"/api/employment-records/{record['id']}/help", {"kind": "training"})
    refused(late, 409, "record_ended")
    with world.engine.connect() as conn:
        assert list(verify_record_chains(conn)) == []
        assert conn.execute(select(help_t.c.kind)).scalars().all() == ["plan"]


def test_the_machine_refuses_what_it_does_not_allow(world: World) -> None:
    record = register(world, paid_case(world)).json()
    # Straight to further study from registered is allowed (a graduate already admitted) …
    assert set(MACHINE.events_from(RecordState.REGISTERED)) == {
        RecordEvent.START_SEEKING,
        RecordEvent.EMPLOY,
        RecordEvent.CONTINUE_STUDY,
    }
    # … giving up before seeking is not.
    body = refused(fire(world, record, RecordEvent.GIVE_UP, opinion="无"), 409, "event_not_allowed")
    assert "continue_study" in body["details"]["allowed_events"]
    no_school = fire(world, record, RecordEvent.CONTINUE_STUDY)
    reasons = refused(no_school, 422, "guard_failed")["details"]["reasons"]
    assert [r["code"] for r in reasons] == ["destination_missing"]
    refused(
        fire(world, {**record, "version": 7}, RecordEvent.START_SEEKING), 409, "version_conflict"
    )
    # Only the roles that record may move it; a sibling cannot see it at all.
    refused(fire(world, record, RecordEvent.START_SEEKING, who="reviewer.wh-hc"), 403, "forbidden")
    refused(
        fire(world, record, RecordEvent.START_SEEKING, who="manager.wh-hc-002"), 404, "not_found"
    )
    assert fire(world, record, RecordEvent.START_SEEKING).status_code == 200
    given_up = refused(
        fire(world, {**record, "version": 2}, RecordEvent.GIVE_UP), 422, "validation_error"
    )
    assert given_up["details"][0]["field"] == "opinion"
    studying = fire(
        world, {**record, "version": 2}, RecordEvent.CONTINUE_STUDY, data={"school": "大连理工大学"}
    )
    assert studying.json()["state"] == "further_study"
    assert read(world, record["id"])["destination"] == "大连理工大学"


def test_help_is_validated_and_a_refusal_leaves_nothing(world: World) -> None:
    record = register(world, paid_case(world)).json()
    url = f"/api/employment-records/{record['id']}/help"
    cases = [
        ({"kind": "plan"}, "text"),
        ({"kind": "loan"}, "amount"),
        ({"kind": "training", "amount": "100"}, "amount"),
        ({"kind": "subsidy", "amount": 1.5}, "amount"),
        ({"kind": "subsidy", "amount": "0.001"}, "amount"),
        ({"kind": "subsidy", "amount": "2000000"}, "amount"),
        ({"kind": "massage"}, "kind"),
        ({"kind": "training", "given_on": "2024-07-21"}, "given_on"),  # tomorrow
        ({"kind": "training", "given_on": "2020-01-01"}, "given_on"),  # years ago
        ({"kind": "training", "text": "x" * 2001}, "text"),
    ]
    for body, field in cases:
        error = refused(post(world, url, body), 422, "validation_error")
        assert error["details"][0]["field"] == field, (body, error)
    refused(post(world, url, {"kind": "training"}, who="reviewer.wh-hc"), 403, "forbidden")
    refused(post(world, url, {"kind": "training"}, who="clerk.wh-hc-002"), 404, "not_found")
    assert read(world, record["id"])["version"] == 1
    with world.engine.connect() as conn:
        assert conn.execute(select(help_t.c.id)).all() == []
    subsidy = post(world, url, {"kind": "subsidy", "amount": "500.50"})
    assert subsidy.status_code == 201, subsidy.text
    assert subsidy.json()["record"]["help"][0]["amount"] == "500.50"


def test_only_a_paid_case_of_the_subtree_is_registered_once(world: World) -> None:
    waiting = case_in(world.engine, world.clock, world.campaign, "WH-HC-001", CaseState.APPROVAL)
    error = refused(register(world, waiting), 422, "validation_error")
    assert (error["details"][0]["field"], error["details"][0]["code"]) == ("case_id", "not_aided")
    sibling = paid_case(world, "WH-HC-002")
    error = refused(register(world, sibling), 422, "validation_error")
    assert error["details"][0]["code"] == "unknown_case"
    paid = paid_case(world)
    error = refused(register(world, paid, graduation_year=2025), 422, "validation_error")
    assert error["details"][0]["field"] == "graduation_year"
    refused(register(world, paid, who="approver.wh-hc-001"), 403, "forbidden")
    assert register(world, paid).status_code == 201
    refused(register(world, paid), 409, "already_registered")
    listed = world.client.get(
        f"/api/campaigns/{world.campaign}/employment-records",
        params={"unit": "WH-HC"},
        headers=world.as_("auditor.wh-hc"),
    )
    assert listed.status_code == 200 and listed.json()["total"] == 1, listed.text
    hidden = world.client.get(
        f"/api/campaigns/{world.campaign}/employment-records",
        headers=world.as_("auditor.wh-hc-002"),
    )
    assert hidden.json() == {"total": 0, "items": []}


def test_the_records_chain_verifies_and_a_tampered_entry_is_named(world: World) -> None:
    record = register(world, paid_case(world)).json()
    post(world, f"/api/employment-records/{record['id']}/help", {"kind": "internship"})
    fire(world, {**record, "version": 2}, RecordEvent.START_SEEKING)
    with world.engine.begin() as conn:
        entry = conn.execute(select(record_audit_t).where(record_audit_t.c.seq == 2)).one()
        conn.execute(
            update(record_audit_t)
            .where(record_audit_t.c.id == entry.id)
            .values(data={**entry.data, "kind": "training"})
        )
    with world.engine.connect() as conn:
        (broken,) = verify_record_chains(conn)
    assert (broken.case_id, broken.seq, broken.entry_id) == (record["id"], 2, entry.id)
    assert broken.describe().startswith(f"employment record {record['id']}, seq 2")


def test_work_study_posts_take_paid_cases_of_their_subtree(world: World) -> None:
    url = f"/api/campaigns/{world.campaign}/work-study-posts"
    body = {
        "unit": "WH-HC-001",
        "title": "图书馆助理",
        "employer": "威海市图书馆",
        "kind": "community",
        "hours_per_week": 8,
        "hourly_pay": "20.50",
    }
    for bad, field in (
        ({"hours_per_week": 41}, "hours_per_week"),
        ({"hourly_pay": 20.5}, "hourly_pay"),
        ({"hourly_pay": "0"}, "hourly_pay"),
        ({"kind": "mine"}, "kind"),
        ({"unit": "WH-WD-001"}, "unit"),
    ):
        error = refused(post(world, url, {**body, **bad}), 422, "validation_error")
        assert error["details"][0]["field"] == field, (bad, error)
    made = post(world, url, body)
    assert made.status_code == 201, made.text
    assert (made.json()["hourly_pay"], made.json()["participants"]) == ("20.50", 0)
    people = f"/api/work-study-posts/{made.json()['id']}/participants"
    paid, other = paid_case(world), paid_case(world)
    waiting = case_in(world.engine, world.clock, world.campaign, "WH-HC-001", CaseState.APPROVAL)
    elsewhere = paid_case(world, "WH-HC-002")
    for case_id, code in ((waiting, "not_aided"), (elsewhere, "unknown_case")):
        error = refused(post(world, people, {"case_id": case_id}), 422, "validation_error")
        assert error["details"][0]["code"] == code
    assert post(world, people, {"case_id": paid}).status_code == 201
    refused(post(world, people, {"case_id": paid}), 409, "already_participating")
    added = post(world, people, {"case_id": other})
    assert [m["case_id"] for m in added.json()["members"]] == [paid, other]
    assert added.json()["members"][0]["student"] == "王*明"
    gone = world.client.delete(f"{people}/{other}", headers=world.as_(CLERK))
    assert gone.status_code == 204, gone.text
    refused(world.client.delete(f"{people}/{other}", headers=world.as_(CLERK)), 404, "not_found")
    closed = post(world, f"/api/work-study-posts/{made.json()['id']}/close")
    assert (closed.json()["open"], closed.json()["participants"]) == (False, 1)
    refused(post(world, people, {"case_id": other}), 409, "post_closed")
    refused(post(world, f"/api/work-study-posts/{made.json()['id']}/close"), 409, "post_closed")
    with world.engine.connect() as conn:
        rows = conn.execute(
            select(
                participant_t.c.case_id, participant_t.c.active, participant_t.c.removed_by
            ).order_by(participant_t.c.id)
        ).all()
    assert [tuple(r) for r in rows] == [(paid, True, None), (other, False, CLERK)]
    listed = world.client.get(url, headers=world.as_("finance.wh-hc"), params={"unit": "WH-HC"})
    assert [p["participants"] for p in listed.json()["items"]] == [1]
