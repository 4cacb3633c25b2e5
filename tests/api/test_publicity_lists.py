"""Publicity lists and objections through the API (both databases): build, publish, print,
object, resolve, and the sweep ending a list; masking, scope and bad input."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select

from jinqiu.states import CaseState
from jinqiu.workflow.audit.models import AuditEntry
from jinqiu.workflow.cases.trail import verify_case_chains
from jinqiu.workflow.deadlines.sweep import sweep
from jinqiu.workflow.publicity_lists.models import PublicityListAudit
from tests.api.conftest import World
from tests.factories import case_in, case_row

REVIEWER = "reviewer.wh-hc"  # the district union
audit_t = AuditEntry.__table__  # type: ignore[attr-defined]
list_audit_t = PublicityListAudit.__table__  # type: ignore[attr-defined]


def ready_cases(world: World, n: int, unit: str = "WH-HC-001", **student: Any) -> list[int]:
    return [
        case_in(world.engine, world.clock, world.campaign, unit, CaseState.READY_FOR_PUBLICITY,
                student_changes=student or None)
        for _ in range(n)
    ]  # fmt: skip


def post(world: World, url: str, body: Any = None, user: str = REVIEWER) -> Any:
    return world.client.post(url, json=body, headers=world.as_(user))


def build(world: World, body: dict[str, Any], user: str = REVIEWER) -> Any:
    return post(world, f"/api/campaigns/{world.campaign}/publicity-lists", body, user)


def case_trail(world: World, case_id: int) -> list[Any]:
    with world.engine.connect() as conn:
        return list(
            conn.execute(
                select(audit_t).where(audit_t.c.case_id == case_id).order_by(audit_t.c.seq)
            )
        )


def list_trail(world: World, list_id: int) -> list[Any]:
    with world.engine.connect() as conn:
        return list(
            conn.execute(
                select(list_audit_t)
                .where(list_audit_t.c.list_id == list_id)
                .order_by(list_audit_t.c.seq)
            )
        )


def test_a_list_ending_over_national_day_moves_its_cases_on_the_day_after(world: World) -> None:
    cases = ready_cases(world, 3)
    world.clock.set(dt.datetime(2024, 9, 27, 9))  # a Friday; 9/29 (Sunday) is worked (调休)
    built = build(world, {"unit": "WH-HC"})
    assert built.status_code == 201, built.text
    body = built.json()
    assert body["status"] == "draft" and sorted(body["case_ids"]) == sorted(cases)
    published = post(world, f"/api/publicity-lists/{body['id']}/publish")
    assert published.status_code == 200, published.text
    # 5 working days after 9/27: 9/29, 9/30, then 10/1–10/7 off, 10/8, 10/9, 10/10.
    assert published.json()["status"] == "published"
    assert published.json()["ends_on"] == "2024-10-10"
    assert {case_row(world.engine, c).state for c in cases} == {CaseState.PUBLICITY.value}
    assert {case_row(world.engine, c).publicity_ends_on for c in cases} == {dt.date(2024, 10, 10)}
    for day in (dt.datetime(2024, 10, 3, 8), dt.datetime(2024, 10, 10, 8)):
        world.clock.set(day)
        assert sweep(world.engine, world.clock, base_url="").publicity.ended == []
    world.clock.set(dt.datetime(2024, 10, 11, 8))
    report = sweep(world.engine, world.clock, base_url="")
    assert sorted(report.publicity.ended) == sorted(cases)
    assert report.publicity.lists.ended == {body["id"]: sorted(cases)}
    assert {case_row(world.engine, c).state for c in cases} == {CaseState.APPROVAL.value}
    again = sweep(world.engine, world.clock, base_url="")  # idempotent
    assert again.publicity.ended == [] and again.publicity.lists.ended == {}
    read = world.client.get(f"/api/publicity-lists/{body['id']}", headers=world.as_(REVIEWER))
    assert read.json()["status"] == "ended"
    assert [e.event for e in list_trail(world, body["id"])] == [
        "create", "publish", "end_publicity"
    ]  # fmt: skip
    trail = case_trail(world, cases[0])
    assert [e.event for e in trail][-2:] == ["publish", "end_publicity"]
    assert trail[-2].actor == REVIEWER and trail[-2].data["publicity_list"] == body["id"]
    assert trail[-1].actor == "scheduler"


def test_objections_one_upheld_one_dismissed_hold_the_list_until_resolved(world: World) -> None:
    first, second, third = ready_cases(world, 3)
    world.clock.set(dt.datetime(2024, 8, 12, 9))
    list_id = build(world, {"unit": "WH-HC"}).json()["id"]
    ends_on = post(world, f"/api/publicity-lists/{list_id}/publish").json()["ends_on"]
    url = f"/api/publicity-lists/{list_id}/objections"
    objections = []
    for case_id, content in ((first, "其父在外地另有住房"), (second, "家庭收入不实")):
        made = post(world, url, {"case_id": case_id, "objector": "李某", "contact": "13900000000",
                                 "content": content})  # fmt: skip
        assert made.status_code == 201, made.text
        assert made.json()["status"] == "open"
        objections.append(made.json()["id"])
    again = post(world, url, {"case_id": first, "objector": "赵某", "contact": "139",
                              "content": "同上"})  # fmt: skip
    assert again.status_code == 409 and again.json()["code"] == "objection_already_open"
    world.clock.set(dt.datetime.combine(dt.date.fromisoformat(ends_on), dt.time(8))
                    + dt.timedelta(days=1))  # fmt: skip
    held = sweep(world.engine, world.clock, base_url="")
    assert held.publicity.lists.held == [list_id] and held.publicity.ended == []
    assert {case_row(world.engine, c).state for c in (first, second, third)} == {"publicity"}

    upheld = post(world, f"/api/objections/{objections[0]}/resolve",
                  {"outcome": "upheld", "reason": "经核实，家庭有两套住房"})  # fmt: skip
    assert upheld.status_code == 200, upheld.text
    assert upheld.json()["case_state"] == "rejected"
    twice = post(world, f"/api/objections/{objections[0]}/resolve",
                 {"outcome": "dismissed", "reason": "再议"})  # fmt: skip
    assert twice.status_code == 409 and twice.json()["code"] == "objection_resolved"
    assert sweep(world.engine, world.clock, base_url="").publicity.lists.held == [list_id]
    dismissed = post(world, f"/api/objections/{objections[1]}/resolve",
                     {"outcome": "dismissed", "reason": "经核实，收入情况属实"})  # fmt: skip
    assert dismissed.json()["case_state"] == "publicity"

    ended = sweep(world.engine, world.clock, base_url="")
    assert ended.publicity.lists.ended == {list_id: sorted([second, third])}
    assert case_row(world.engine, first).state == "rejected"
    assert case_row(world.engine, second).state == "approval"
    # The trails: the list's, and each case's.
    assert [(e.event, e.data.get("outcome")) for e in list_trail(world, list_id)] == [
        ("create", None), ("publish", None), ("object", None), ("object", None),
        ("resolve_objection", "upheld"), ("resolve_objection", "dismissed"),
        ("end_publicity", None),
    ]  # fmt: skip
    rejected = case_trail(world, first)
    assert [e.event for e in rejected][-3:] == ["object", "resolve_objection", "reject"]
    assert rejected[-3].opinion == "其父在外地另有住房"
    assert rejected[-2].data == {"objection": objections[0], "outcome": "upheld"}
    assert rejected[-1].opinion == "公示异议成立：经核实，家庭有两套住房"
    kept = case_trail(world, second)
    assert [e.event for e in kept][-3:] == ["object", "resolve_objection", "end_publicity"]
    assert kept[-2].data == {"objection": objections[1], "outcome": "dismissed"}
    with world.engine.connect() as conn:
        assert list(verify_case_chains(conn)) == []
    detail = world.client.get(f"/api/publicity-lists/{list_id}", headers=world.as_(REVIEWER))
    assert [(o["status"], o["reason"]) for o in detail.json()["objections"]] == [
        ("upheld", "经核实，家庭有两套住房"), ("dismissed", "经核实，收入情况属实"),
    ]  # fmt: skip


def test_the_list_masks_given_names_and_never_shows_identity_numbers(world: World) -> None:
    (case_id,) = ready_cases(world, 1, name="张小明")
    number = case_row(world.engine, case_id).student_id
    list_id = build(world, {"unit": "WH-HC-001", "case_ids": [case_id]}).json()["id"]
    for user in (REVIEWER, "manager.wh"):  # a pii.read holder too
        for fmt in ("json", "html"):
            got = world.client.get(f"/api/publicity-lists/{list_id}?format={fmt}",
                                   headers=world.as_(user))  # fmt: skip
            assert got.status_code == 200, got.text
            assert "张*明" in got.text and "张小明" not in got.text
            with world.engine.connect() as conn:
                from jinqiu.workflow.cases.models import Student

                student_t = Student.__table__  # type: ignore[attr-defined]
                id_number = conn.execute(
                    select(student_t.c.id_number).where(student_t.c.id == number)
                ).scalar_one()
            assert id_number not in got.text and id_number[-4:] not in got.text
    row = world.client.get(f"/api/publicity-lists/{list_id}", headers=world.as_(REVIEWER)).json()
    assert row["rows"] == [{"case_id": case_id, "name": "张*明", "school": "山东大学（威海）",
                            "education_level": "undergraduate", "amount": "3000.00"}]  # fmt: skip
    pdf = world.client.get(
        f"/api/publicity-lists/{list_id}?format=pdf", headers=world.as_(REVIEWER)
    )
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF-") and b"STSong-Light" in pdf.content


def test_a_list_outside_the_callers_subtree_is_not_found(world: World) -> None:
    ready_cases(world, 1)
    list_id = build(world, {"unit": "WH-HC-001"}).json()["id"]
    outsider = "reviewer.wh-wd"
    for got in (
        world.client.get(f"/api/publicity-lists/{list_id}", headers=world.as_(outsider)),
        post(world, f"/api/publicity-lists/{list_id}/publish", user=outsider),
        post(world, f"/api/publicity-lists/{list_id}/objections",
             {"case_id": 1, "objector": "a", "contact": "b", "content": "c"}, user=outsider),
    ):  # fmt: skip
        assert got.status_code == 404, got.text
    # a sibling unit cannot build a list of another unit's cases
    sibling = build(world, {"unit": "WH-HC-001"}, user="reviewer.wh-hc-002")
    assert sibling.status_code == 422  # named in a create's body: the field, as everywhere
    assert sibling.json()["details"][0]["field"] == "unit"
    # nor name a case outside the unit
    (elsewhere,) = ready_cases(world, 1, unit="WH-WD-001")
    outside = build(world, {"unit": "WH-HC", "case_ids": [elsewhere]})
    assert outside.status_code == 422
    assert outside.json()["details"][0]["field"] == "case_ids"
    clerk = build(world, {"unit": "WH-HC"}, user="clerk.wh-hc")
    assert clerk.status_code == 403


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"unit": "WH-HC", "working_days": 0}, "working_days"),
        ({"unit": "WH-HC", "working_days": 31}, "working_days"),
        ({"unit": "WH-HC", "starts_on": "2023-01-01"}, "starts_on"),
        ({"unit": "WH-HC", "starts_on": "2024-13-01"}, "starts_on"),
        ({"unit": "WH-HC", "case_ids": []}, "case_ids"),
        ({"unit": "WH-HC", "case_ids": [0]}, "case_ids.0"),
        ({"unit": "WH-HC", "extra": 1}, "extra"),
        ({"unit": ""}, "unit"),
    ],
)
def test_bad_input_is_422_naming_the_field_in_chinese(
    world: World, body: dict[str, Any], field: str
) -> None:
    ready_cases(world, 1)
    got = build(world, body)
    assert got.status_code == 422, got.text
    problem = got.json()
    assert problem["code"] == "validation_error"
    assert any(d["field"] == field for d in problem["details"]), problem
    assert any("\u4e00" <= ch <= "\u9fff" for ch in problem["message"])


def test_cases_not_ready_are_refused_by_name_and_a_draft_cannot_be_published_twice(
    world: World,
) -> None:
    (ready,) = ready_cases(world, 1)
    surveyed = case_in(world.engine, world.clock, world.campaign, "WH-HC-001", CaseState.SURVEY)
    refused = build(world, {"unit": "WH-HC", "case_ids": [ready, surveyed]})
    assert refused.status_code == 422
    assert [(d["case_id"], d["code"]) for d in refused.json()["details"]] == [
        (surveyed, "not_ready")
    ]
    list_id = build(world, {"unit": "WH-HC", "case_ids": [ready]}).json()["id"]
    on_two = build(world, {"unit": "WH-HC", "case_ids": [ready]})
    assert on_two.json()["details"][0]["code"] == "already_listed"
    assert post(world, f"/api/publicity-lists/{list_id}/publish").status_code == 200
    twice = post(world, f"/api/publicity-lists/{list_id}/publish")
    assert twice.status_code == 409 and twice.json()["code"] == "event_not_allowed"
    not_on = post(world, f"/api/publicity-lists/{list_id}/objections",
                  {"case_id": surveyed, "objector": "a", "contact": "b", "content": "c"})  # fmt: skip
    assert not_on.status_code == 422 and not_on.json()["details"][0]["field"] == "case_id"


def test_a_withdrawn_list_returns_its_cases_to_waiting(world: World) -> None:
    cases = ready_cases(world, 2)
    list_id = build(world, {"unit": "WH-HC"}).json()["id"]
    post(world, f"/api/publicity-lists/{list_id}/publish")
    gone = post(world, f"/api/publicity-lists/{list_id}/withdraw", {"reason": "名单有误，重新公示"})
    assert gone.status_code == 200 and gone.json()["status"] == "withdrawn"
    assert {case_row(world.engine, c).state for c in cases} == {"ready_for_publicity"}
    assert {case_row(world.engine, c).publicity_ends_on for c in cases} == {None}
    again = build(world, {"unit": "WH-HC"})
    assert sorted(again.json()["case_ids"]) == sorted(cases)


def test_a_single_case_cannot_be_published_by_hand(world: World) -> None:
    (case_id,) = ready_cases(world, 1)
    got = post(world, f"/api/cases/{case_id}/events", {"event": "publish", "version": 3})
    assert got.status_code == 403, got.text


def test_creating_a_campaign_answers_the_publicity_warning(world: World) -> None:
    from tests.factories import weihai_file

    body = weihai_file(name="2024年度金秋助学（再建）").model_dump(mode="json")
    made = world.client.post("/api/campaigns", json=body, headers=world.as_("admin.wh"))
    assert made.status_code == 201, made.text
    (warning,) = made.json()["warnings"]
    assert warning["code"] == "publicity_after_payment_window" and warning["field"] == "phases"
    assert "2024-08-29" in warning["message"]
    read = world.client.get(f"/api/campaigns/{made.json()['id']}", headers=world.as_("admin.wh"))
    assert read.json()["warnings"] == []  # said once, when it is loaded


def test_the_lists_audit_chain_verifies_and_a_tampered_entry_is_named(world: World) -> None:
    from sqlalchemy import update

    from jinqiu.workflow.publicity_lists.trail import verify_list_chains

    ready_cases(world, 2)
    list_id = build(world, {"unit": "WH-HC"}).json()["id"]
    post(world, f"/api/publicity-lists/{list_id}/publish")
    with world.engine.connect() as conn:
        assert list(verify_list_chains(conn)) == []
    publish_entry = list_trail(world, list_id)[1]
    with world.engine.begin() as conn:
        conn.execute(
            update(list_audit_t)
            .where(list_audit_t.c.id == publish_entry.id)
            .values(data={**publish_entry.data, "ends_on": "2024-12-31"})
        )
    with world.engine.connect() as conn:
        (broken,) = verify_list_chains(conn)
    assert (broken.case_id, broken.seq, broken.entry_id) == (list_id, 2, publish_entry.id)
    assert broken.describe().startswith(f"publicity list {list_id}, seq 2")


def test_a_case_that_leaves_publicity_with_an_open_objection_does_not_hold_the_list(
    world: World,
) -> None:
    """The applicant withdraws a case under objection: the list ends for the others, and the
    objection can still be resolved — on its record (who, when, why): the list has ended and
    the case's trail has ended too."""
    first, second = ready_cases(world, 2)
    world.clock.set(dt.datetime(2024, 8, 12, 9))
    list_id = build(world, {"unit": "WH-HC"}).json()["id"]
    ends_on = post(world, f"/api/publicity-lists/{list_id}/publish").json()["ends_on"]
    made = post(world, f"/api/publicity-lists/{list_id}/objections",
                {"case_id": first, "objector": "李某", "contact": "139", "content": "不实"})  # fmt: skip
    version = case_row(world.engine, first).version
    gone = post(world, f"/api/cases/{first}/events",
                {"event": "withdraw", "version": version}, user="clerk.wh-hc-001")  # fmt: skip
    assert gone.status_code == 200, gone.text
    world.clock.set(dt.datetime.fromisoformat(ends_on) + dt.timedelta(days=1, hours=8))
    report = sweep(world.engine, world.clock, base_url="")
    assert report.publicity.lists.ended == {list_id: [second]}
    resolved = post(world, f"/api/objections/{made.json()['id']}/resolve",
                    {"outcome": "dismissed", "reason": "申请人已撤回"})  # fmt: skip
    assert resolved.status_code == 200, resolved.text
    assert resolved.json()["case_state"] == "withdrawn"
    assert [e.event for e in list_trail(world, list_id)][-1] == "end_publicity"
    detail = world.client.get(f"/api/publicity-lists/{list_id}", headers=world.as_(REVIEWER))
    assert [(o["status"], o["reason"]) for o in detail.json()["objections"]] == [
        ("dismissed", "申请人已撤回")
    ]
