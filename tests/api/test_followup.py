"""Follow-up visits (回访) and continuing aid (续助) over HTTP, on both databases: a visit is a
record and an entry on the case's chain; the visit that meets the campaign's follow-up rule
closes the case through the engine; without a rule the close is bare, as before. A paid case
is renewed into a later campaign without re-entering the family, and refused after graduation,
after the family left the archive, before payment, into the same or an earlier year, twice."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
from sqlalchemy import func, select

from jinqiu.states import CaseState
from jinqiu.workflow.campaigns.service import load_campaign
from jinqiu.workflow.cases.models import Case, Student, Worker
from jinqiu.workflow.cases.trail import verify_case_chains
from jinqiu.workflow.db import transaction
from jinqiu.workflow.followup.models import FollowUpVisit
from tests.api.conftest import World
from tests.factories import case_in, case_row, weihai_file_in

visit_t = FollowUpVisit.__table__  # type: ignore[attr-defined]
case_t = Case.__table__  # type: ignore[attr-defined]
worker_t = Worker.__table__  # type: ignore[attr-defined]
student_t = Student.__table__  # type: ignore[attr-defined]
CLERK, SIBLING, MANAGER = "clerk.wh-hc-001", "clerk.wh-hc-002", "manager.wh-hc"
RULE = {
    "visits_required": 2,
    "source": "通过走访、座谈、谈心等方式，关心关爱困难职工家庭子女生活、学习及心理状况",
}


def campaign_of(world: World, year: int, **changes: Any) -> int:
    """The Weihai campaign file moved to `year`, loaded for the city."""
    with transaction(world.engine) as conn:
        return load_campaign(conn, weihai_file_in(year, **changes), world.clock)


def paid(world: World, campaign: int, **student_changes: Any) -> int:
    case = case_in(world.engine, world.clock, campaign, "WH-HC-001", CaseState.FOLLOW_UP,
                   student_changes=student_changes or None)  # fmt: skip
    world.clock.advance(dt.timedelta(days=10))  # visits come after the payment
    return case


def visit(world: World, case: int, who: str = CLERK, **changes: Any) -> httpx.Response:
    body = {"date": str(world.clock.now().date()), "kind": "home", "visitor": "工会 李干事",
            "situation": "studying", "notes": "学习生活正常"} | changes  # fmt: skip
    return world.client.post(f"/api/cases/{case}/visits", json=body, headers=world.as_(who))


def history(world: World, case: int) -> list[dict[str, Any]]:
    response = world.client.get(f"/api/cases/{case}/history", headers=world.as_(CLERK))
    assert response.status_code == 200
    return list(response.json())


def visits_stored(world: World, case: int) -> int:
    with world.engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count()).select_from(visit_t).where(visit_t.c.case_id == case)
            ).scalar_one()
        )


def chains_hold(world: World) -> None:
    with world.engine.connect() as conn:
        assert list(verify_case_chains(conn)) == []


# -- visits -------------------------------------------------------------------------------------


def test_the_visit_that_meets_the_rule_closes_the_case_with_its_audit_entries(world: World) -> None:
    campaign = campaign_of(world, 2024, name="2024年度金秋助学（回访）", follow_up=RULE)
    case = paid(world, campaign)
    first = visit(world, case, kind="phone")
    assert first.status_code == 201, first.text
    body = first.json()
    assert (body["kind"], body["kind_label"], body["situation_label"]) == (
        "phone",
        "电话",
        "在读正常",
    )
    assert (body["visits"], body["visits_required"], body["case_state"]) == (1, 2, "follow_up")

    # Closing by hand before the rule is met: refused, the missing visit named.
    early = world.client.post(f"/api/cases/{case}/events", headers=world.as_(CLERK),
                              json={"event": "close", "version": body["case_version"]})  # fmt: skip
    assert early.status_code == 422, early.text
    (reason,) = early.json()["details"]["reasons"]
    assert reason["code"] == "visits_missing" and "还差1次" in reason["message"]

    second = visit(world, case, kind="school", visitor="辅导员 张老师")
    assert second.status_code == 201, second.text
    assert (second.json()["case_state"], second.json()["visits"]) == ("closed", 2)
    row = case_row(world.engine, case)
    assert (row.state, row.follow_up_visits, row.version) == (
        "closed",
        2,
        second.json()["case_version"],
    )
    trail = history(world, case)
    assert [h["event"] for h in trail[-3:]] == ["visit", "visit", "close"]
    assert trail[-1]["from"] == "follow_up" and trail[-1]["to"] == "closed"
    assert trail[-2]["data"]["kind"] == "school" and trail[-2]["data"]["visits"] == 2
    listed = world.client.get(f"/api/cases/{case}/visits", headers=world.as_(CLERK)).json()
    assert [(v["kind"], v["visitor"]) for v in listed] == [
        ("phone", "工会 李干事"),
        ("school", "辅导员 张老师"),
    ]
    chains_hold(world)


def test_without_a_rule_a_visit_is_recorded_and_the_close_stays_bare(world: World) -> None:
    campaign = campaign_of(world, 2024, name="2024年度金秋助学（无回访要求）", follow_up=None)
    case = paid(world, campaign)
    recorded = visit(world, case)
    assert recorded.status_code == 201, recorded.text
    assert (recorded.json()["case_state"], recorded.json()["visits_required"]) == ("follow_up", 0)
    version = case_row(world.engine, case).version
    bare = world.client.post(f"/api/cases/{case}/events", headers=world.as_(CLERK),
                             json={"event": "close", "version": version})  # fmt: skip
    assert bare.status_code == 200 and bare.json()["state"] == "closed", bare.text


def test_a_manager_closes_short_of_the_rule_with_a_reason(world: World) -> None:
    campaign = campaign_of(world, 2024, name="2024年度金秋助学（回访）", follow_up=RULE)
    case = paid(world, campaign)
    version = case_row(world.engine, case).version
    closed = world.client.post(
        f"/api/cases/{case}/events",
        headers=world.as_(MANAGER),
        json={"event": "close", "version": version, "opinion": "家庭已迁居外省，无法联系",
              "data": {"override": {"guards": ["follow_up_visits_done"], "reason": "无法联系"}}},
    )  # fmt: skip
    assert closed.status_code == 200 and closed.json()["state"] == "closed", closed.text
    assert history(world, case)[-1]["data"]["override"]["reason"] == "无法联系"


def test_a_visit_is_refused_outside_follow_up_and_for_bad_input_writing_nothing(
    world: World,
) -> None:
    surveyed = case_in(world.engine, world.clock, world.campaign, "WH-HC-001", CaseState.SURVEY)
    outside = visit(world, surveyed)
    assert outside.status_code == 409 and outside.json()["code"] == "event_not_allowed"
    assert "回访" in outside.json()["message"]

    case = paid(world, world.campaign)
    row = case_row(world.engine, case)
    today = world.clock.now().date()
    refused = {
        "future date": ({"date": str(today + dt.timedelta(days=1))}, "date", "date_in_future"),
        "before payment": ({"date": str(row.paid_on - dt.timedelta(days=1))}, "date", "date_before_payment"),
        "unknown kind": ({"kind": "email"}, "kind", None),
        "unknown situation": ({"situation": "dropped"}, "situation", None),
        "over-long visitor": ({"visitor": "李" * 51}, "visitor", None),
        "over-long notes": ({"notes": "很" * 2001}, "notes", None),
        "unknown field": ({"mood": "好"}, "mood", None),
        "NUL": ({"notes": "a\x00b"}, "body", "nul_character"),  # the middleware's, for every body
        "control character": ({"visitor": "李\x07"}, "visitor", None),
        "exit in future": ({"archive_exited_on": str(today + dt.timedelta(days=3))}, "archive_exited_on", "date_in_future"),
    }  # fmt: skip
    for what, (changes, field, code) in refused.items():
        response = visit(world, case, **changes)
        assert response.status_code == 422, (what, response.text)
        body = response.json()
        assert body["code"] == "validation_error" and body["message"], what
        assert field in {d["field"].split(".")[-1] for d in body["details"]}, (what, body)
        if code:
            assert code in {d["code"] for d in body["details"]}, (what, body)
    assert visits_stored(world, case) == 0
    assert case_row(world.engine, case).version == row.version
    chains_hold(world)


def test_visits_are_scoped_and_need_the_follow_up_permission(world: World) -> None:
    case = paid(world, world.campaign)
    assert visit(world, case, who=SIBLING).status_code == 404
    listed = world.client.get(f"/api/cases/{case}/visits", headers=world.as_(SIBLING))
    assert listed.status_code == 404 and listed.json()["code"] == "not_found"
    finance = visit(world, case, who="finance.wh-hc-001")
    assert finance.status_code == 403 and finance.json()["code"] == "forbidden"
    assert visit(world, case, who="reviewer.wh-hc").status_code == 201  # the parent's reviewer
    assert visits_stored(world, case) == 1


def test_notes_are_masked_without_pii_read(world: World) -> None:
    case = paid(world, world.campaign)
    number = "371002197803143111"
    assert visit(world, case, notes=f"核对身份证{number}无误").status_code == 201
    clerk = world.client.get(f"/api/cases/{case}/visits", headers=world.as_(CLERK)).json()
    assert number not in clerk[0]["notes"] and number[-4:] in clerk[0]["notes"]
    manager = world.client.get(f"/api/cases/{case}/visits", headers=world.as_(MANAGER)).json()
    assert number in manager[0]["notes"]


# -- renewals -----------------------------------------------------------------------------------


def renew(world: World, case: int, campaign: int, who: str = CLERK) -> httpx.Response:
    return world.client.post(f"/api/cases/{case}/renewal", json={"campaign": campaign},
                             headers=world.as_(who))  # fmt: skip


def test_a_renewal_carries_the_family_and_the_student_and_goes_through_the_machine(
    world: World,
) -> None:
    later = campaign_of(world, 2025)
    case = paid(world, world.campaign)
    response = renew(world, case, later)
    assert response.status_code == 201, response.text
    new = response.json()
    assert (new["state"], new["version"], new["campaign"], new["renewal_of"]) == (
        "survey",
        1,
        later,
        case,
    )
    assert new["unit"] == "WH-HC-001"
    with world.engine.connect() as conn:
        old_row, new_row = (
            conn.execute(select(case_t).where(case_t.c.id == i)).one() for i in (case, new["id"])
        )
        for table, key in ((worker_t, "worker_id"), (student_t, "student_id")):
            old_values, new_values = (
                conn.execute(select(table).where(table.c.id == getattr(r, key))).one()._asdict()
                for r in (old_row, new_row)
            )
            assert old_values.pop("id") != new_values.pop("id")  # each case keeps its own form
            assert old_values == new_values  # nothing re-entered
    assert history(world, new["id"])[0]["data"] == {"renewal_of": case}
    assert history(world, case)[-1]["event"] == "renew"
    assert history(world, case)[-1]["data"] == {"renewal": new["id"], "campaign": later}

    # The renewal is an application like any: the archive is checked afresh (last year's
    # archive date is over a year old by now, so the clerk corrects it), then it is submitted.
    world.clock.set(dt.datetime(2025, 7, 20, 9, 0))
    world.tokens.clear()  # a year on: sign in again
    stale = world.client.post(f"/api/cases/{new['id']}/events", headers=world.as_(CLERK),
                              json={"event": "submit", "version": 1})  # fmt: skip
    assert stale.status_code == 422, stale.text
    assert "archive_expired" in {r["code"] for r in stale.json()["details"]["reasons"]}
    fresh = world.client.patch(f"/api/cases/{new['id']}", json={"worker": {"archived_on": "2025-03-01"}},
                               headers={**world.as_(CLERK), "If-Match": 'W/"1"'})  # fmt: skip
    assert fresh.status_code == 200, fresh.text
    submitted = world.client.post(f"/api/cases/{new['id']}/events", headers=world.as_(CLERK),
                                  json={"event": "submit", "version": 2})  # fmt: skip
    assert submitted.status_code == 200 and submitted.json()["state"] == "archive_check", (
        submitted.text
    )

    again = renew(world, case, later)
    assert again.status_code == 409 and again.json()["code"] == "renewal_exists", again.text
    chains_hold(world)


def test_renewals_are_refused_with_every_reason(world: World) -> None:
    later = campaign_of(world, 2025)
    cases = {
        "graduated by years": paid(world, world.campaign, enrollment_year=2022, program_years=3),
        "graduated on a visit": paid(world, world.campaign),
        "archive exited": paid(world, world.campaign),
        "not paid": case_in(world.engine, world.clock, world.campaign, "WH-HC-001", CaseState.APPROVAL),
    }  # fmt: skip
    assert visit(world, cases["graduated on a visit"], situation="graduated").status_code == 201
    exited = visit(world, cases["archive exited"], archive_exited_on=str(world.clock.now().date()))
    assert exited.status_code == 201
    expected = {
        "graduated by years": {"graduated"},
        "graduated on a visit": {"graduated"},
        "archive exited": {"archive_exited"},
        "not paid": {"not_paid"},
    }
    for what, case in cases.items():
        before = case_row(world.engine, case).version
        response = renew(world, case, later)
        assert response.status_code == 422 and response.json()["code"] == "guard_failed", (
            what,
            response.text,
        )
        reasons = response.json()["details"]["reasons"]
        assert {r["code"] for r in reasons} == expected[what], (what, reasons)
        assert all(r["message"] for r in reasons)
        assert case_row(world.engine, case).version == before, what
    same_year = renew(world, cases["graduated on a visit"], world.campaign)
    assert {r["code"] for r in same_year.json()["details"]["reasons"]} == {
        "not_later_year",
        "graduated",
    }
    with world.engine.connect() as conn:
        assert (
            conn.execute(
                select(func.count()).select_from(case_t).where(case_t.c.renewal_of.is_not(None))
            ).scalar_one()
            == 0
        )
    unknown = renew(world, cases["archive exited"], 999_999)
    assert unknown.status_code == 422 and unknown.json()["details"][0]["field"] == "campaign"


def test_renewal_is_scoped_and_needs_the_right_to_enter_cases(world: World) -> None:
    later = campaign_of(world, 2025)
    case = paid(world, world.campaign)
    sibling = renew(world, case, later, who=SIBLING)
    assert sibling.status_code == 404 and sibling.json()["code"] == "not_found"
    reviewer = renew(world, case, later, who="reviewer.wh-hc-001")
    assert reviewer.status_code == 403 and reviewer.json()["code"] == "forbidden"
    assert renew(world, case, later, who="clerk.wh-hc").status_code == 201  # the parent's clerk


def test_the_dashboard_counts_renewals_apart(world: World) -> None:
    later = campaign_of(world, 2025)
    renewed = [paid(world, world.campaign) for _ in range(2)]
    for case in renewed:
        assert renew(world, case, later).status_code == 201
    case_in(world.engine, world.clock, later, "WH-HC-002", CaseState.SURVEY)  # a new application
    board = world.client.get("/api/dashboard", params={"campaign": later, "unit": "WH"},
                             headers=world.as_("manager.wh")).json()  # fmt: skip
    assert board["renewals"] == {"total": 2, "states": {"survey": 2}}
    assert board["total"] == 3
    sibling = world.client.get("/api/dashboard", params={"campaign": later},
                               headers=world.as_("manager.wh-hc-002")).json()  # fmt: skip
    assert sibling["renewals"] == {"total": 0, "states": {}}
