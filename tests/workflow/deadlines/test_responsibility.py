"""A deadline falls on a set of units — by level (and its peers), by parent, or listed — and the
sweep, the pending counts and the dashboard ask that set: Weihai's 7/31 duty is "市直各单位"
(the city union's children at industry and grassroots level: 市直机关工会工委 and whatever is
under it), not every grassroots union."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import Engine, select

from jinqiu.workflow.campaigns.schema import Responsible
from jinqiu.workflow.clock import ManualClock
from jinqiu.workflow.db import transaction
from jinqiu.workflow.deadlines.models import ReminderLedger
from jinqiu.workflow.deadlines.pending import Responsibility, pending_units
from jinqiu.workflow.deadlines.sweep import sweep
from jinqiu.workflow.errors import ValidationFailed
from jinqiu.workflow.statistics.reports import submit_report
from jinqiu.workflow.units.models import Unit
from tests.factories import actor_of, new_case, weihai, weihai_file

ledger_t = ReminderLedger.__table__  # type: ignore[attr-defined]
unit_t = Unit.__table__  # type: ignore[attr-defined]
DISTRICT_UNIONS = ["WH-GQ", "WH-HC", "WH-RC", "WH-RS", "WH-WD"]  # 各区市总工会 (not 市直)


def owing(db: Engine, responsible: Responsibility, done_when: dict[str, Any]) -> dict[str, Any]:
    with db.connect() as conn:
        path = conn.execute(select(unit_t.c.path).where(unit_t.c.code == "WH")).scalar_one()
        units = pending_units(
            conn,
            campaign_id=1,
            organizer_path=path,
            responsible=responsible,
            done_when=done_when,
        )
    return {u.code: u.counts or u.report_kind for u in units}


def by(**spec: Any) -> Responsibility:
    return Responsibility.of(None, Responsible(label="测试", **spec).model_dump(exclude_none=True))


SURVEY = {"no_cases_in": ["survey"]}
REPORT = {"report_submitted": "statistics"}


def test_the_7_31_duty_falls_on_the_city_direct_unions_only(db: Engine, clock: ManualClock) -> None:
    _tree, campaign = weihai(db, clock)
    assert campaign == 1
    new_case(db, clock, campaign, "WH-SZ-001")
    new_case(db, clock, campaign, "WH-HC-001")
    deadline = weihai_file().deadlines[0]
    assert deadline.responsible is not None
    city_direct = Responsibility.of(None, deadline.responsible.model_dump(exclude_none=True))
    # The 环翠 case is nobody's 7/31 business; the 市直 case is 市直机关工会工委's.
    assert owing(db, city_direct, SURVEY) == {"WH-SZ": {"survey": 1}}
    # The same cases by level: every grassroots union with a case in survey.
    assert owing(db, Responsibility.of("grassroots", None), SURVEY) == {
        "WH-HC-001": {"survey": 1},
        "WH-SZ-001": {"survey": 1},
    }


def test_the_sweep_reminds_the_set(db: Engine, clock: ManualClock) -> None:
    _tree, campaign = weihai(db, clock)
    new_case(db, clock, campaign, "WH-SZ-002")
    new_case(db, clock, campaign, "WH-HC-001")
    clock.set(dt.datetime(2024, 7, 31, 8))
    sweep(db, clock, base_url="https://jinqiu.example.org")
    with db.connect() as conn:
        reminded = conn.execute(
            select(unit_t.c.code, ledger_t.c.kind)
            .join(unit_t, unit_t.c.id == ledger_t.c.unit_id)
            .order_by(unit_t.c.code)
        ).all()
    assert [tuple(r) for r in reminded] == [("WH-SZ", "before")]


def test_the_report_duty_falls_on_the_district_unions_listed_by_level(
    db: Engine, clock: ManualClock
) -> None:
    _tree, campaign = weihai(db, clock)
    statistics = weihai_file().deadlines[1].responsible
    assert statistics is not None
    districts = Responsibility.of(None, statistics.model_dump(exclude_none=True))
    assert sorted(owing(db, districts, REPORT)) == DISTRICT_UNIONS
    with transaction(db) as conn:
        submit_report(
            conn,
            campaign_id=campaign,
            unit_code="WH-HC",
            kind="statistics",
            note=None,
            actor=actor_of(db, "WH-HC", "manager"),
            clock=clock,
        )
    assert sorted(owing(db, districts, REPORT)) == [u for u in DISTRICT_UNIONS if u != "WH-HC"]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"parent": "WH"}, ["WH-GQ", "WH-HC", "WH-RC", "WH-RS", "WH-SZ", "WH-WD"]),
        ({"units": ["WH-RC", "WH-SZ-003"]}, ["WH-RC", "WH-SZ-003"]),
        ({"parent": "WH-SZ", "levels": ["grassroots"]}, ["WH-SZ-001", "WH-SZ-002", "WH-SZ-003"]),
        ({"levels": ["industry"]}, ["WH-SZ"]),
    ],
)
def test_a_set_by_parent_listed_or_level(
    db: Engine, clock: ManualClock, spec: dict[str, Any], expected: list[str]
) -> None:
    weihai(db, clock)
    assert sorted(owing(db, by(**spec), REPORT)) == expected


def test_a_unit_outside_the_organizers_tree_is_refused(db: Engine, clock: ManualClock) -> None:
    raw = weihai_file().model_dump(mode="json", exclude_none=True)
    raw["deadlines"][0]["responsible"] = {"units": ["WH-HC", "BZ"], "label": "两个单位"}
    with pytest.raises(ValidationFailed) as refused:
        weihai(db, clock, deadlines=raw["deadlines"])
    (detail,) = refused.value.details
    assert (detail["field"], detail["code"]) == ("deadlines.0.responsible", "unknown_unit")
    assert "BZ" in detail["message"]


def test_a_deadline_names_one_responsibility() -> None:
    raw = weihai_file().model_dump(mode="json", exclude_none=True)
    raw["deadlines"][0]["responsible_level"] = "grassroots"
    with pytest.raises(ValueError, match="responsible_level 或 responsible"):
        weihai_file(deadlines=raw["deadlines"])
