"""Finding 5: the approval chain of a case is the campaign's levels that exist on the case's own
unit path. A grassroots union directly under the city (市直各基层工会, named in the Weihai and
Bozhou notices) has no district above it: its cases go grassroots → city, and the audit entry
says the district level was skipped. Through the engine and through HTTP, on both databases."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import Engine, select, text, update

from jinqiu.api.pages import queue_filter
from jinqiu.states import CaseState
from jinqiu.workflow.audit.models import AuditEntry
from jinqiu.workflow.cases.engine import allowed_events, current_approval_level, load_context
from jinqiu.workflow.cases.models import Case
from jinqiu.workflow.cases.reads import CaseFilter, list_cases
from jinqiu.workflow.clock import ManualClock
from jinqiu.workflow.db import transaction
from jinqiu.workflow.errors import PermissionDenied
from jinqiu.workflow.roles import Actor
from jinqiu.workflow.units.models import UnitLevel
from jinqiu.workflow.units.service import UnitCreate, create_unit
from jinqiu.workflow.users.models import Role, User
from tests.api.conftest import World
from tests.factories import actor_of, case_in, case_row, student, weihai, worker
from tests.workflow.cases.test_engine import fire

audit_t = AuditEntry.__table__  # type: ignore[attr-defined]
case_t = Case.__table__  # type: ignore[attr-defined]
user_t = User.__table__  # type: ignore[attr-defined]
CITY_DIRECT = "WH-ZS-001"  # a 市直 grassroots union: its parent is the city union itself
VERIFIED = dt.datetime(2024, 8, 1, 10)
PUBLICITY_OVER = dt.datetime(2024, 8, 9, 10)  # five working days after 8/1 is 8/8


def add_city_direct_unit(engine: Engine) -> None:
    with transaction(engine) as conn:
        create_unit(
            conn,
            UnitCreate(
                code=CITY_DIRECT,
                name="威海市直某局基层工会",
                level=UnitLevel.GRASSROOTS,
                parent="WH",
            ),
        )


def last_entry(engine: Engine, case_id: int) -> Any:
    with engine.connect() as conn:
        return conn.execute(
            select(audit_t).where(audit_t.c.case_id == case_id).order_by(audit_t.c.seq.desc())
        ).first()


def may_fire(engine: Engine, case_id: int, who: Actor) -> tuple[str | None, list[str]]:
    """The level the case waits at, and the events `who` is offered on it."""
    with engine.connect() as conn:
        facts, _ = load_context(conn, case_id, today=PUBLICITY_OVER.date())
    events = [e.value for e in allowed_events(who, facts.case, facts.campaign)]
    return current_approval_level(facts.case, facts.campaign), events


def to_approval(engine: Engine, clock: ManualClock, campaign: int, unit: str) -> int:
    """A new case of `unit` whose publicity ended: waiting at the first level on its path."""
    clock.set(VERIFIED)
    case_id = case_in(engine, clock, campaign, unit, CaseState.APPROVAL)
    clock.set(PUBLICITY_OVER)
    return case_id


class TestTheEngine:
    def test_a_city_direct_case_goes_grassroots_then_city_and_the_skip_is_audited(
        self, db: Engine, clock: ManualClock
    ) -> None:
        _tree, campaign = weihai(db, clock)
        add_city_direct_unit(db)
        case_id = to_approval(db, clock, campaign, CITY_DIRECT)
        grassroots, city = actor_of(db, CITY_DIRECT, "approver"), actor_of(db, "WH", "approver")
        assert may_fire(db, case_id, grassroots) == ("grassroots", ["return", "reject", "approve"])

        fire(db, clock, case_id, "approve", grassroots, opinion="同意")
        row = case_row(db, case_id)
        assert row.state == "approval"
        entry = last_entry(db, case_id)
        assert (entry.event, entry.actor_unit) == ("approve", CITY_DIRECT)
        assert entry.data["approval_level"] == "grassroots"
        assert entry.data["skipped_levels"] == ["district"]
        level, events = may_fire(db, case_id, city)
        assert level == "city" and "approve" in events

        fire(db, clock, case_id, "approve", city, opinion="同意资助")
        row = case_row(db, case_id)
        assert (row.state, row.approved_amount_fen) == ("disbursement", 300_000)
        entry = last_entry(db, case_id)
        assert entry.data["approval_level"] == "city" and "skipped_levels" not in entry.data

    def test_the_city_queue_shows_the_case_once_the_grassroots_union_approved(
        self, db: Engine, clock: ManualClock
    ) -> None:
        _tree, campaign = weihai(db, clock)
        add_city_direct_unit(db)
        case_id = to_approval(db, clock, campaign, CITY_DIRECT)
        fire(db, clock, case_id, "approve", actor_of(db, CITY_DIRECT, "approver"), opinion="同意")
        city = actor_of(db, "WH", "approver")
        states, step = queue_filter(city, ["grassroots", "district", "city"])
        with db.connect() as conn:
            rows, _total = list_cases(
                conn,
                city,
                CaseFilter(campaign=campaign, states=states, approval_step=step),
                today=PUBLICITY_OVER.date(),
            )
        assert [r["id"] for r in rows] == [case_id]

    def test_a_district_own_case_starts_at_the_district_and_the_skip_is_audited(
        self, db: Engine, clock: ManualClock
    ) -> None:
        _tree, campaign = weihai(db, clock)
        case_id = to_approval(db, clock, campaign, "WH-HC")
        entry = last_entry(db, case_id)
        assert (entry.event, entry.data["skipped_levels"]) == ("end_publicity", ["grassroots"])
        assert may_fire(db, case_id, actor_of(db, "WH-HC", "approver"))[0] == "district"
        fire(db, clock, case_id, "approve", actor_of(db, "WH-HC", "approver"), opinion="同意")
        fire(db, clock, case_id, "approve", actor_of(db, "WH", "approver"), opinion="同意资助")
        assert case_row(db, case_id).state == "disbursement"

    def test_a_case_already_stuck_at_the_missing_level_is_taken_up_by_the_next(
        self, db: Engine, clock: ManualClock
    ) -> None:
        # What today's code left behind: a 市直 case waiting for a district that is not there.
        _tree, campaign = weihai(db, clock)
        add_city_direct_unit(db)
        case_id = to_approval(db, clock, campaign, CITY_DIRECT)
        with transaction(db) as conn:
            conn.execute(update(case_t).where(case_t.c.id == case_id).values(approval_step=1))
        city = actor_of(db, "WH", "approver")
        assert may_fire(db, case_id, city)[0] == "city"
        fire(db, clock, case_id, "approve", city, opinion="同意资助")
        assert case_row(db, case_id).state == "disbursement"

    def test_a_missing_last_level_makes_the_last_level_on_the_path_final(
        self, db: Engine, clock: ManualClock
    ) -> None:
        _tree, campaign = weihai(db, clock, approval_levels=["grassroots", "district"])
        add_city_direct_unit(db)
        case_id = to_approval(db, clock, campaign, CITY_DIRECT)
        fire(db, clock, case_id, "approve", actor_of(db, CITY_DIRECT, "approver"), opinion="同意")
        assert case_row(db, case_id).state == "disbursement"
        assert last_entry(db, case_id).data["skipped_levels"] == ["district"]

    def test_with_no_campaign_level_on_the_path_nobody_approves_and_the_case_may_be_withdrawn(
        self, db: Engine, clock: ManualClock
    ) -> None:
        _tree, campaign = weihai(db, clock, approval_levels=["district"])
        add_city_direct_unit(db)
        case_id = to_approval(db, clock, campaign, CITY_DIRECT)
        assert last_entry(db, case_id).data["skipped_levels"] == ["district"]
        for unit in (CITY_DIRECT, "WH"):
            assert may_fire(db, case_id, actor_of(db, unit, "approver")) == (None, [])
        with pytest.raises(PermissionDenied, match="没有本活动的审批层级"):
            fire(db, clock, case_id, "approve", actor_of(db, "WH", "approver"), opinion="同意")
        assert may_fire(db, case_id, actor_of(db, CITY_DIRECT, "clerk"))[1] == ["withdraw"]

    def test_a_case_under_a_district_still_needs_all_three_levels(
        self, db: Engine, clock: ManualClock
    ) -> None:
        _tree, campaign = weihai(db, clock)
        case_id = to_approval(db, clock, campaign, "WH-HC-001")
        assert "skipped_levels" not in last_entry(db, case_id).data
        fire(db, clock, case_id, "approve", actor_of(db, "WH-HC-001", "approver"), opinion="同意")
        assert "skipped_levels" not in last_entry(db, case_id).data
        assert may_fire(db, case_id, actor_of(db, "WH", "approver")) == ("district", [])
        assert case_row(db, case_id).approval_step == 1


def test_a_city_direct_case_is_approved_through_http(world: World) -> None:
    response = world.client.post(
        "/api/units",
        json={
            "code": CITY_DIRECT,
            "name": "威海市直某局基层工会",
            "level": "grassroots",
            "parent": "WH",
        },
        headers=world.as_("admin.wh"),
    )
    assert response.status_code == 201, response.text
    with transaction(world.engine) as conn:  # its clerk and approver, with the fixture's password
        unit_id = conn.execute(
            text("SELECT id FROM unit WHERE code = :c"), {"c": CITY_DIRECT}
        ).scalar_one()
        password_hash = conn.execute(
            select(user_t.c.password_hash).where(user_t.c.username == "clerk.wh-hc-001")
        ).scalar_one()
        conn.execute(
            user_t.insert(),
            [
                {
                    "username": f"{role}.{CITY_DIRECT.lower()}",
                    "password_hash": password_hash,
                    "display_name": role,
                    "unit_id": unit_id,
                    "roles": [role],
                    "is_active": True,
                    "created_at": world.clock.now(),
                }
                for role in (Role.CLERK.value, Role.APPROVER.value)
            ],
        )
    clerk, approver = f"clerk.{CITY_DIRECT.lower()}", f"approver.{CITY_DIRECT.lower()}"

    def event(case: dict[str, Any], who: str, name: str, **extra: Any) -> dict[str, Any]:
        response = world.client.post(
            f"/api/cases/{case['id']}/events",
            json={"event": name, "version": case["version"], **extra},
            headers=world.as_(who),
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    response = world.client.post(
        "/api/cases",
        json={
            "campaign": world.campaign,
            "unit": CITY_DIRECT,
            "worker": worker(),
            "student": student(),
        },
        headers=world.as_(clerk),
    )
    assert response.status_code == 201, response.text
    case = event(response.json(), clerk, "submit")
    world.clock.set(VERIFIED)
    case = event(case, "reviewer.wh", "verify", opinion="档案核查无误")
    listed = world.client.post(
        f"/api/campaigns/{world.campaign}/publicity-lists",
        json={"unit": CITY_DIRECT, "case_ids": [case["id"]]},
        headers=world.as_("reviewer.wh"),
    )
    assert listed.status_code == 201, listed.text
    published = world.client.post(
        f"/api/publicity-lists/{listed.json()['id']}/publish", headers=world.as_("reviewer.wh")
    )
    assert published.status_code == 200, published.text
    world.clock.set(PUBLICITY_OVER)
    from jinqiu.workflow.publicity import end_due_publicity

    assert end_due_publicity(world.engine, world.clock).ended == [case["id"]]
    case = world.client.get(f"/api/cases/{case['id']}", headers=world.as_(approver)).json()
    assert (case["state"], case["approval_level"]) == ("approval", "grassroots")
    assert "approve" in case["allowed_events"]

    event(case, approver, "approve", opinion="同意")
    case = world.client.get(f"/api/cases/{case['id']}", headers=world.as_("approver.wh")).json()
    assert (case["state"], case["approval_level"]) == ("approval", "city")
    assert "approve" in case["allowed_events"]
    history = world.client.get(
        f"/api/cases/{case['id']}/history", headers=world.as_("approver.wh")
    ).json()
    assert history[-1]["data"]["skipped_levels"] == ["district"]

    case = event(case, "approver.wh", "approve", opinion="同意资助")
    assert case["state"] == "disbursement"
