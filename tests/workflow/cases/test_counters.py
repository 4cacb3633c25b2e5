"""Dashboard counters on both databases: a property test (random creations and transitions, most
of them refused by a guard, a role or a stale version) keeps `stored` equal to `recount` after
every step; counters written around the engine are found and repaired (`jinqiu counters
verify`); and GET /api/dashboard read as a city, a district and a grassroots manager."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, delete, func, insert, select, text, update

from jinqiu.demo.units import seed_weihai_tree
from jinqiu.states import CaseEvent, CaseState, events_from
from jinqiu.workflow.campaigns.service import load_campaign
from jinqiu.workflow.cases.counters import (
    LISTED_ROWS,
    counter_differences,
    recount,
    repair_counters,
    stored,
    unit_case_count,
)
from jinqiu.workflow.cases.engine import apply_event
from jinqiu.workflow.cases.models import Case
from jinqiu.workflow.cases.schema import CaseCreate
from jinqiu.workflow.cases.service import create_case
from jinqiu.workflow.clock import ManualClock
from jinqiu.workflow.db import snapshot, transaction
from jinqiu.workflow.deadlines.sweep import sweep
from jinqiu.workflow.errors import DomainError, NotFound
from jinqiu.workflow.roles import SCHEDULER, Actor
from jinqiu.workflow.units.models import Unit
from tests.api import conftest as api_conftest
from tests.api.conftest import World, username
from tests.factories import actor, new_case, student, weihai, weihai_file, worker

case_t = Case.__table__  # type: ignore[attr-defined]
unit_t = Unit.__table__  # type: ignore[attr-defined]
count_t = unit_case_count

# Cases are opened at grassroots unions of two districts, so the counters of WH, WH-HC and
# WH-WD each add up several units.
CASE_UNITS = ("WH-HC-001", "WH-HC-002", "WH-WD-001")
APPROVAL_UNITS = {0: "grassroots", 1: "district", 2: "city"}
# The next step on the main path: most drawn events are these, so examples get far.
FORWARD = {
    CaseState.SURVEY: CaseEvent.SUBMIT,
    CaseState.ARCHIVE_CHECK: CaseEvent.VERIFY,
    CaseState.READY_FOR_PUBLICITY: CaseEvent.PUBLISH,  # as a publicity list fires it
    CaseState.PUBLICITY: CaseEvent.END_PUBLICITY,
    CaseState.APPROVAL: CaseEvent.APPROVE,
    CaseState.DISBURSEMENT: CaseEvent.PAY,
    CaseState.FOLLOW_UP: CaseEvent.CLOSE,
}
REVIEWING = (
    CaseEvent.VERIFY,
    CaseEvent.RETURN,
    CaseEvent.REJECT,
    CaseEvent.OBJECT,
    CaseEvent.RESOLVE_OBJECTION,
)


class Actors:
    """The people of the property test, built once per test from the seeded tree."""

    def __init__(self, engine: Engine) -> None:
        with engine.connect() as conn:
            self.by_key: dict[tuple[str, str], Actor] = {
                (unit, role): actor(conn, unit, role)
                for unit in (*CASE_UNITS, "WH-HC", "WH-WD", "WH")
                for role in ("clerk", "reviewer", "approver", "finance", "manager")
            }

    def of(self, unit: str, role: str) -> Actor:
        return self.by_key[(unit, role)]


def district_of(unit: str) -> str:
    return unit.rsplit("-", 1)[0]


def right_actor(actors: Actors, event: CaseEvent, unit: str, level: int) -> Actor:
    """Who would fire `event` on a case of `unit`; `level` picks the approving union."""
    if event in REVIEWING:
        return actors.of(district_of(unit), "reviewer")
    if event in (CaseEvent.END_PUBLICITY, CaseEvent.PUBLISH, CaseEvent.UNLIST):
        return SCHEDULER  # the sweep, or a publicity list
    if event is CaseEvent.APPROVE:
        return actors.of((unit, district_of(unit), "WH")[level], "approver")
    if event in (CaseEvent.PAY, CaseEvent.PAYMENT_FAILED):
        return actors.of("WH", "finance")
    return actors.of(unit, "clerk")  # submit, withdraw, close


def case_input(campaign: int, unit: str, variant: str, id_number: str | None) -> CaseCreate:
    worker_changes: dict[str, Any] = {}
    student_changes: dict[str, Any] = {}
    if variant == "not_archived":
        worker_changes = {"archive_status": "none", "archived_on": None}
    elif variant == "archive_expired":
        worker_changes = {"archived_on": "2023-01-10"}
    elif variant == "already_aided":
        student_changes = {"already_aided_by": "国家助学金"}
    elif variant == "senior":
        student_changes = {"education_level": "senior", "tier": None, "tuition_invoice": "1800"}
    if id_number is not None:
        student_changes["id_number"] = id_number  # the same student again: a duplicate
    return CaseCreate.model_validate(
        {
            "campaign": campaign,
            "unit": unit,
            "worker": worker(**worker_changes),
            "student": student(**student_changes),
        }
    )


def case_state(engine: Engine, case_id: int) -> Any:
    with engine.connect() as conn:
        return conn.execute(
            select(case_t.c.state, case_t.c.version, case_t.c.approval_step).where(
                case_t.c.id == case_id
            )
        ).one()


def counters(
    engine: Engine, campaign: int
) -> tuple[dict[str, dict[str, int]], dict[str, dict[str, int]]]:
    with engine.connect() as conn:
        return stored(conn, campaign), recount(conn, campaign)


def test_counters_equal_a_recount_after_any_mix_of_events(db: Engine) -> None:
    with transaction(db) as conn:
        seed_weihai_tree(conn, grassroots_per_district=3)
    actors = Actors(db)
    applied: Counter[str] = Counter()
    refused: Counter[str] = Counter()
    examples = iter(range(1, 10**6))  # one campaign name per example: names are unique per year

    @settings(
        max_examples=25,
        deadline=None,
        derandomize=True,
        database=None,
        # No shrinking: it can take minutes per database on a failure; the failing example's
        # draws and the step's stored-vs-recount difference are printed as they are.
        phases=(Phase.explicit, Phase.reuse, Phase.generate),
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        # Each example has its own campaign (one student, one application per campaign), so
        # examples do not see each other's cases; the tree is shared.
        clock = ManualClock(dt.datetime(2024, 7, 18, 9))
        name = f"2024年度金秋助学活动（样例 {next(examples)}）"
        with transaction(db) as conn:
            # No visits rule: `close` is one event here (visits are tests/api/test_followup.py's).
            campaign = load_campaign(conn, weihai_file(name=name, follow_up=None), clock)
        cases: list[tuple[int, str]] = []
        students: list[str] = []
        # The simplest example (first choices everywhere) is the happy path: one case moving
        # forward a day at a time; hypothesis mixes in waits, new cases, other events and
        # actors, missing opinions and stale versions from there.
        for _ in range(data.draw(st.integers(20, 40), label="steps")):
            moves = ("event",) * 5 + ("wait",) + (("create",) if len(cases) < 3 else ())
            step = data.draw(st.sampled_from(moves if cases else ("create",)), label="step")
            before = counters(db, campaign)[0]
            if step == "wait":
                clock.advance(dt.timedelta(days=data.draw(st.integers(3, 10), label="days")))
                continue
            clock.advance(
                dt.timedelta(days=data.draw(st.sampled_from((1, 0, 0, 1, 2)), label="gap"))
            )
            if step == "create":
                unit = data.draw(st.sampled_from(CASE_UNITS), label="unit")
                variant = data.draw(
                    st.sampled_from(
                        (
                            "plain",
                            "plain",
                            "plain",
                            "senior",
                            "not_archived",
                            "archive_expired",
                            "already_aided",
                            "duplicate",
                        )
                    ),
                    label="variant",
                )
                again = students[-1] if variant == "duplicate" and students else None
                spec = case_input(campaign, unit, variant, again)
                try:
                    with transaction(db) as conn:
                        case_id = create_case(
                            conn, spec, actor=actors.of(unit, "clerk"), clock=clock
                        )
                except DomainError as refusal:
                    refused[f"create:{refusal.code}"] += 1
                    assert counters(db, campaign)[0] == before, "a refused creation moved counters"
                else:
                    applied["create"] += 1
                    cases.append((case_id, unit))
                    students.append(spec.student.id_number)
            else:
                case_id, unit = cases[-1 - data.draw(st.integers(0, len(cases) - 1), label="case")]
                row = case_state(db, case_id)
                state = CaseState(row.state)
                allowed = events_from(state)
                pick = data.draw(
                    st.sampled_from(("forward",) * 6 + ("allowed",) * 2 + ("any",)), label="pick"
                )
                if pick == "forward" and state in FORWARD:
                    event = FORWARD[state]
                elif pick != "any" and allowed:
                    event = data.draw(st.sampled_from(allowed), label="allowed event")
                else:
                    event = data.draw(st.sampled_from(list(CaseEvent)), label="any event")
                level = data.draw(
                    st.sampled_from((row.approval_step, row.approval_step, 0, 1, 2)), label="level"
                )
                who = right_actor(actors, event, unit, min(level, 2))
                if data.draw(st.sampled_from((False,) * 14 + (True,)), label="wrong actor"):
                    who = (
                        actors.of(unit, "clerk")
                        if who.roles != ("clerk",)
                        else actors.of("WH", "finance")
                    )
                opinion = data.draw(
                    st.sampled_from(("同意", "缺少录取通知书", "同意", None)), label="opinion"
                )
                stale = data.draw(st.sampled_from((False,) * 19 + (True,)), label="stale")
                version = row.version - 1 if stale else row.version
                try:
                    with transaction(db) as conn:
                        apply_event(
                            conn,
                            case_id=case_id,
                            event=event,
                            expected_version=version,
                            actor=who,
                            clock=clock,
                            opinion=opinion,
                        )
                except DomainError as refusal:
                    refused[f"{event.value}:{refusal.code}"] += 1
                    assert counters(db, campaign)[0] == before, f"refused {event} moved counters"
                    assert case_state(db, case_id) == row
                else:
                    applied[event.value] += 1
            counted, recounted = counters(db, campaign)
            assert counted == recounted, f"after {step}: stored {counted} != recount {recounted}"

    run()
    # The mixes are about real transitions, not only refusals: the simplest example alone is a
    # case's whole life (every approval level, payment, closing), the others add the detours.
    assert {
        "create",
        "submit",
        "verify",
        "end_publicity",
        "approve",
        "pay",
        "close",
        "withdraw",
    } <= set(applied), applied
    assert applied["approve"] >= 3
    assert sum(applied.values()) - applied["create"] >= 50, applied
    refusal_codes = {key.split(":")[1] for key in refused}
    assert {"guard_failed", "event_not_allowed", "version_conflict"} <= refusal_codes, refused


def test_counters_equal_a_recount_along_a_whole_campaign_of_cases(db: Engine) -> None:
    """Deterministic companion of the property test: every event of the lifecycle, each
    checked against a recount right after it."""
    clock = ManualClock(dt.datetime(2024, 7, 20, 9))
    with transaction(db) as conn:
        seed_weihai_tree(conn, grassroots_per_district=3)
        campaign = load_campaign(conn, weihai_file(follow_up=None), clock)  # a bare `close`
    actors = Actors(db)

    def check() -> None:
        counted, recounted = counters(db, campaign)
        assert counted == recounted

    def fire(case_id: int, event: str, who: Actor, opinion: str | None = "同意") -> None:
        row = case_state(db, case_id)
        with transaction(db) as conn:
            apply_event(
                conn,
                case_id=case_id,
                event=event,
                expected_version=row.version,
                actor=who,
                clock=clock,
                opinion=opinion,
            )
        check()

    ids = {}
    for name, unit in (
        ("paid", "WH-HC-001"),
        ("returned", "WH-HC-002"),
        ("rejected", "WH-WD-001"),
        ("withdrawn", "WH-HC-001"),
        ("failed", "WH-WD-001"),
    ):
        with transaction(db) as conn:
            ids[name] = create_case(
                conn,
                case_input(campaign, unit, "plain", None),
                actor=actors.of(unit, "clerk"),
                clock=clock,
            )
        check()
        fire(ids[name], "submit", actors.of(unit, "clerk"))
    fire(ids["returned"], "return", actors.of("WH-HC", "reviewer"), "缺少录取通知书")
    fire(ids["withdrawn"], "withdraw", actors.of("WH-HC-001", "clerk"))
    clock.set(dt.datetime(2024, 8, 1, 10))
    fire(ids["rejected"], "reject", actors.of("WH-WD", "reviewer"), "收入高于困难标准")
    for name, district in (("paid", "WH-HC"), ("failed", "WH-WD")):
        fire(ids[name], "verify", actors.of(district, "reviewer"))
        fire(ids[name], "publish", SCHEDULER)  # as a publicity list fires it
    fire(ids["paid"], "object", actors.of("WH-HC", "reviewer"), "群众反映")
    fire(ids["paid"], "resolve_objection", actors.of("WH-HC", "reviewer"), "经核实仍符合条件")
    clock.set(dt.datetime(2024, 8, 9, 10))
    for name, unit in (("paid", "WH-HC-001"), ("failed", "WH-WD-001")):
        fire(ids[name], "end_publicity", SCHEDULER)
        for level in range(3):
            fire(ids[name], "approve", right_actor(actors, CaseEvent.APPROVE, unit, level))
    fire(ids["failed"], "payment_failed", actors.of("WH", "finance"), "银行卡号与户名不符")
    for name, unit in (("paid", "WH-HC-001"), ("failed", "WH-WD-001")):
        fire(ids[name], "pay", actors.of("WH", "finance"))
        fire(ids[name], "close", actors.of(unit, "clerk"))
    with db.connect() as conn:
        final = stored(conn, campaign)
    assert final["WH"] == {"closed": 2, "survey": 1, "rejected": 1, "withdrawn": 1}
    assert final["WH-HC"] == {"closed": 1, "survey": 1, "withdrawn": 1}
    assert final["WH-WD-001"] == {"closed": 1, "rejected": 1}
    assert "WH-RC" not in final


def test_many_rows_and_a_transitions_few_are_counted_alike(db: Engine) -> None:
    """A transaction that moves cases in many units writes its counters' rows as arrays (one
    parameter per column), a transition's few rows (its unit and the ancestors) as a list of
    plain values (`LISTED_ROWS`): both add up to a recount, a new row with its parent."""
    clock = ManualClock(dt.datetime(2024, 7, 20, 9))
    _tree, campaign = weihai(db, clock)
    with snapshot(db) as conn:
        grassroots = (
            conn.execute(
                select(unit_t.c.code).where(unit_t.c.level == "grassroots").order_by(unit_t.c.code)
            )
            .scalars()
            .all()
        )
    assert len(grassroots) > LISTED_ROWS
    with transaction(db) as conn:  # every grassroots union's first case: many rows at once
        for code in grassroots:
            spec = CaseCreate.model_validate(
                {"campaign": campaign, "unit": code, "worker": worker(), "student": student()}
            )
            create_case(conn, spec, actor=actor(conn, code, "clerk"), clock=clock)
    with snapshot(db) as conn:
        assert counter_differences(conn) == []
        first = conn.execute(select(func.min(case_t.c.id))).scalar_one()
        unit_code = conn.execute(
            select(unit_t.c.code)
            .join(case_t, case_t.c.unit_id == unit_t.c.id)
            .where(case_t.c.id == first)
        ).scalar_one()
    submit_on(db, clock, first, unit_code)  # one transition: its unit and the ancestors
    with snapshot(db) as conn:
        assert counter_differences(conn) == []
        assert stored(conn, campaign)[unit_code] == {"archive_check": 1}
        assert stored(conn, campaign)["WH"]["survey"] == len(grassroots) - 1
        parents = dict(
            conn.execute(
                select(count_t.c.unit_code, count_t.c.parent_code).where(
                    count_t.c.campaign_id == campaign
                )
            ).all()
        )
    assert all(parents[code] is not None for code in grassroots)


def test_counters_written_around_the_engine_are_found_and_repaired(db: Engine) -> None:
    clock = ManualClock(dt.datetime(2024, 7, 20, 9))
    _tree, campaign = weihai(db, clock)
    edited, kept = (
        new_case(db, clock, campaign, "WH-HC-001"),
        new_case(db, clock, campaign, "WH-HC-001"),
    )
    new_case(db, clock, campaign, "WH-WD-001")
    with snapshot(db) as conn:
        assert counter_differences(conn) == []
        assert counter_differences(conn, campaign) == []
    # Drift: a state changed by hand, a unit's counters lost, a counter for a unit with no cases.
    with transaction(db) as conn:
        conn.execute(update(case_t).where(case_t.c.id == edited).values(state="withdrawn"))
        conn.execute(delete(count_t).where(count_t.c.unit_code == "WH-WD-001"))
        conn.execute(insert(count_t).values(campaign_id=campaign, unit_code="WH-RC", closed=4))
    with snapshot(db) as conn:
        found = counter_differences(conn)
    assert [(d.campaign_id, d.unit_code, d.state, d.stored, d.counted) for d in found] == [
        (campaign, "WH", "survey", 3, 2),
        (campaign, "WH", "withdrawn", 0, 1),
        (campaign, "WH-HC", "survey", 2, 1),
        (campaign, "WH-HC", "withdrawn", 0, 1),
        (campaign, "WH-HC-001", "survey", 2, 1),
        (campaign, "WH-HC-001", "withdrawn", 0, 1),
        (campaign, "WH-RC", "closed", 4, 0),
        (campaign, "WH-WD-001", "survey", 0, 1),
    ]
    assert found[0].describe() == f"campaign {campaign}, unit WH, state survey: counter 3, cases 2"
    with snapshot(db) as conn, pytest.raises(NotFound):
        counter_differences(conn, campaign + 1)  # no such campaign: not "the counters match"

    with transaction(db) as conn:
        assert repair_counters(conn) == found
    with snapshot(db) as conn:
        assert counter_differences(conn) == []
        assert stored(conn, campaign) == recount(conn, campaign)
    # The repaired counters go on counting: the next transition moves them, still exact.
    with transaction(db) as conn:
        apply_event(
            conn,
            case_id=kept,
            event="submit",
            expected_version=1,
            actor=actor(conn, "WH-HC-001", "clerk"),
            clock=clock,
        )
    with snapshot(db) as conn:
        assert counter_differences(conn) == []
        assert stored(conn, campaign)["WH-HC-001"] == {"withdrawn": 1, "archive_check": 1}
        parents = dict(
            conn.execute(
                select(count_t.c.unit_code, count_t.c.parent_code).where(
                    count_t.c.campaign_id == campaign
                )
            ).all()
        )
    with transaction(db) as conn:
        assert repair_counters(conn) == []
    # Every row names its unit's parent (a dashboard reads a unit's children's rows by it): the
    # rows the transitions made, and the one the repair made again (WH-WD-001's).
    assert {code: parents[code] for code in ("WH", "WH-HC", "WH-HC-001", "WH-WD-001")} == {
        "WH": None,
        "WH-HC": "WH",
        "WH-HC-001": "WH-HC",
        "WH-WD-001": "WH-WD",
    }


# -- GET /api/dashboard -------------------------------------------------------------------------
world = api_conftest.world  # the API tests' fixture: users per role at six units, on `db`


def dashboard(world: World, user: str, unit: str | None = None) -> Any:
    params: dict[str, Any] = {"campaign": world.campaign}
    if unit is not None:
        params["unit"] = unit
    return world.client.get(
        "/api/dashboard", params=params, headers=world.as_(username(*user.split("@")))
    )


def submit(world: World, case_id: int, unit: str) -> None:
    submit_on(world.engine, world.clock, case_id, unit)


def submit_on(engine: Engine, clock: ManualClock, case_id: int, unit: str) -> None:
    """The unit's clerk submits the case (at version 1)."""
    with transaction(engine) as conn:
        apply_event(
            conn,
            case_id=case_id,
            event="submit",
            expected_version=1,
            actor=actor(conn, unit, "clerk"),
            clock=clock,
        )


@pytest.fixture
def late_world(world: World) -> World:
    """Two survey cases at WH-HC-001 and one at WH-WD-001 that nobody submits, one case of
    WH-HC-001 submitted; the sweep reminds before 7/31 and after it, and on 8/2 the survey
    cases are overdue."""
    ids = [
        new_case(world.engine, world.clock, world.campaign, unit)
        for unit in ("WH-HC-001", "WH-HC-001", "WH-HC-001", "WH-WD-001")
    ]
    submit(world, ids[0], "WH-HC-001")
    for day in (29, 31):
        world.clock.set(dt.datetime(2024, 7, day, 8))
        sweep(world.engine, world.clock, base_url="http://127.0.0.1")
    world.clock.set(dt.datetime(2024, 8, 2, 8))
    sweep(world.engine, world.clock, base_url="http://127.0.0.1")
    return world


def reminders_under(engine: Engine, path: str) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                text(
                    "SELECT count(*) FROM reminder_ledger r JOIN unit u ON u.id = r.unit_id "
                    "WHERE u.path LIKE :p"
                ),
                {"p": f"{path}%"},
            ).scalar_one()
        )


def test_dashboard_of_the_city_has_states_units_funds_deadlines_and_phase(
    late_world: World,
) -> None:
    response = dashboard(late_world, "manager@WH")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["campaign"]["id"] == late_world.campaign
    assert body["unit"]["code"] == "WH" and body["unit"]["parent"] is None
    assert list(body["states"]) == [s.value for s in CaseState]
    assert body["states"] == {**dict.fromkeys(body["states"], 0), "survey": 3, "archive_check": 1}
    assert body["total"] == 4
    assert body["overdue"] == 3  # the survey cases, past the survey phase's 7/31
    units = {u["code"]: u for u in body["units"]}
    assert sorted(units) == ["WH-GQ", "WH-HC", "WH-RC", "WH-RS", "WH-SZ", "WH-WD"]
    for u in units.values():
        assert set(u) >= {"code", "name", "level", "states", "total", "overdue", "reminders_sent"}
    assert units["WH-HC"]["states"] == {"survey": 2, "archive_check": 1}
    assert (units["WH-HC"]["total"], units["WH-HC"]["overdue"]) == (3, 2)
    assert (units["WH-WD"]["total"], units["WH-WD"]["overdue"]) == (1, 1)
    assert (
        units["WH-RC"]["total"],
        units["WH-RC"]["overdue"],
        units["WH-RC"]["reminders_sent"],
    ) == (0, 0, 0)
    sent_hc = reminders_under(late_world.engine, "/WH/WH-HC/")
    assert sent_hc > 0
    assert units["WH-HC"]["reminders_sent"] == sent_hc
    assert units["WH-WD"]["reminders_sent"] == reminders_under(late_world.engine, "/WH/WH-WD/") > 0

    funds = body["funds"]
    assert [f["source"] for f in funds["sources"]] == ["government", "donation", "union", "other"]
    assert funds["budget"] == "750000.00" and funds["available"] == "750000.00"
    assert funds["paid"] == funds["reserved"] == "0.00"
    deadlines = {d["key"]: d for d in body["deadlines"]}
    assert deadlines["survey_materials"]["passed"] is True
    assert (
        deadlines["survey_materials"]["pending_cases"],
        deadlines["survey_materials"]["done"],
    ) == (3, False)
    assert deadlines["statistics_report"]["units_owing"] == 6  # every district, none reported
    assert body["phase"]["current"]["key"] == "archive_check"
    assert [p["key"] for p in body["phase"]["all"]] == [
        "survey",
        "archive_check",
        "award",
        "summary",
    ]
    with late_world.engine.connect() as conn:
        assert {s: n for s, n in body["states"].items() if n} == recount(conn, late_world.campaign)[
            "WH"
        ]


def test_a_sibling_or_parent_unit_is_not_found(late_world: World) -> None:
    for unit in ("WH-HC-002", "WH-HC", "WH"):
        response = dashboard(late_world, "manager@WH-HC-001", unit)
        assert response.status_code == 404, (unit, response.text)
        assert response.json()["code"] == "not_found"
    own = dashboard(late_world, "manager@WH-HC-001")
    assert own.status_code == 200
    assert own.json()["states"]["survey"] == 2 and own.json()["units"] == []


def test_drill_down_from_the_city_to_a_district_and_a_grassroots_union(late_world: World) -> None:
    district = dashboard(late_world, "manager@WH", "WH-HC").json()
    assert district["unit"]["code"] == "WH-HC" and district["unit"]["parent"] == "WH"
    assert [b["code"] for b in district["unit"]["breadcrumb"]] == ["WH", "WH-HC"]
    assert [u["code"] for u in district["units"]] == ["WH-HC-001", "WH-HC-002", "WH-HC-003"]
    assert district["units"][0]["states"] == {"survey": 2, "archive_check": 1}
    assert district["units"][1]["total"] == 0
    assert district["total"] == 3

    grassroots = dashboard(late_world, "manager@WH", "WH-HC-001").json()
    assert grassroots["unit"]["code"] == "WH-HC-001" and grassroots["units"] == []
    assert [b["code"] for b in grassroots["unit"]["breadcrumb"]] == ["WH", "WH-HC", "WH-HC-001"]
    assert grassroots["states"]["survey"] == 2 and grassroots["overdue"] == 2
    # A district manager's breadcrumb starts at their own union: the city is not theirs.
    seen_from_district = dashboard(late_world, "manager@WH-HC", "WH-HC-001").json()
    assert [b["code"] for b in seen_from_district["unit"]["breadcrumb"]] == ["WH-HC", "WH-HC-001"]
    assert dashboard(late_world, "manager@WH", "WH-XX-999").status_code == 404


def test_counters_follow_a_transition_at_every_level_of_the_path(late_world: World) -> None:
    with late_world.engine.connect() as conn:
        case_id = conn.execute(
            select(func.min(case_t.c.id)).where(case_t.c.state == "survey")
        ).scalar_one()
    before = {
        u: dashboard(late_world, "manager@WH", u).json()["states"]
        for u in ("WH", "WH-HC", "WH-HC-001", "WH-WD")
    }
    late_world.clock.set(dt.datetime(2024, 8, 2, 10))
    with transaction(late_world.engine) as conn:
        apply_event(
            conn,
            case_id=case_id,
            event="withdraw",
            expected_version=1,
            actor=actor(conn, "WH-HC-001", "clerk"),
            clock=late_world.clock,
        )
    for unit in ("WH", "WH-HC", "WH-HC-001"):
        after = dashboard(late_world, "manager@WH", unit).json()["states"]
        assert after["survey"] == before[unit]["survey"] - 1, unit
        assert after["withdrawn"] == before[unit]["withdrawn"] + 1, unit
    assert dashboard(late_world, "manager@WH", "WH-WD").json()["states"] == before["WH-WD"]
