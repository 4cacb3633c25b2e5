"""Dalian 2011: "各区市县总工会、各产业工会请于8月10日前将当年考入大学在档困难职工家庭学生申报材料
（当年考入大学学生“金秋助学”审批登记表、…）…报市总工会" — the form sent on 8/10 already carries
the 企业工会（街道工会）审查意见 and the 区市县、产业工会审核意见, so the deadline is met only when
every case has passed those two levels and waits for the city's 审批 (`done_when.reached_level`).
The sweep's pending units and the dashboard both ask it (both databases)."""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from jinqiu.states import CaseState
from jinqiu.workflow.campaigns.schema import CampaignFile
from jinqiu.workflow.clock import ManualClock
from jinqiu.workflow.dashboard.service import DashboardQuery, dashboard
from jinqiu.workflow.deadlines.pending import Responsibility, pending_units
from jinqiu.workflow.errors import ValidationFailed
from jinqiu.workflow.units.models import Unit
from jinqiu.workflow.validation import parse
from tests.factories import actor_of, case_in, weihai

unit_t = Unit.__table__  # type: ignore[attr-defined]
DALIAN: dict[str, Any] = json.loads(
    (Path(__file__).resolve().parents[3] / "examples" / "campaigns" / "dalian-2011.json").read_text(
        encoding="utf-8"
    )
)
(MATERIALS,) = [d for d in DALIAN["deadlines"] if d["key"] == "freshman_materials"]
ON_THE_DEADLINE = dt.date(2024, 8, 10)  # the Weihai tree's campaign, Dalian's 8/10 rule


@pytest.fixture
def campaign(db: Engine, clock: ManualClock) -> int:
    deadline = {**MATERIALS, "due": "2024-08-10"}
    return weihai(db, clock, deadlines=[deadline])[1]


def owing(db: Engine, campaign: int) -> dict[str, Any]:
    with db.connect() as conn:
        path = conn.execute(select(unit_t.c.path).where(unit_t.c.code == "WH")).scalar_one()
        units = pending_units(
            conn, campaign_id=campaign, organizer_path=path,
            responsible=Responsibility.of(MATERIALS["responsible_level"], None),
            done_when=MATERIALS["done_when"],
        )  # fmt: skip
    return {u.code: u.counts for u in units}


def on_the_dashboard(db: Engine, campaign: int, unit: str) -> dict[str, Any]:
    with db.connect() as conn:
        board = dashboard(
            conn, DashboardQuery(campaign_id=campaign, unit_code=unit),
            actor_of(db, unit, "manager"), today=ON_THE_DEADLINE,
        )  # fmt: skip
    (deadline,) = board["deadlines"]
    return {k: deadline[k] for k in ("pending_cases", "done")}


def test_the_8_10_deadline_asks_for_the_city_s_approval_to_be_next() -> None:
    assert MATERIALS["done_when"]["reached_level"] == "city"
    assert DALIAN["approval_levels"].index("city") == 2  # after 审查 and 审核


@pytest.mark.parametrize(("approved", "owed"), [(0, True), (1, True), (2, False)], ids=str)
def test_a_case_is_owed_until_both_opinions_are_given(
    db: Engine, clock: ManualClock, campaign: int, approved: int, owed: bool
) -> None:
    case_in(db, clock, campaign, "WH-HC-001", CaseState.APPROVAL, approved=approved)
    assert owing(db, campaign) == ({"WH-HC": {"approval": 1}} if owed else {})
    expected = {"pending_cases": int(owed), "done": not owed}
    assert on_the_dashboard(db, campaign, "WH-HC") == expected
    assert on_the_dashboard(db, campaign, "WH") == expected


def test_cases_not_yet_in_approval_are_owed_as_before(
    db: Engine, clock: ManualClock, campaign: int
) -> None:
    case_in(db, clock, campaign, "WH-HC-001", CaseState.ARCHIVE_CHECK)
    case_in(db, clock, campaign, "WH-HC-001", CaseState.DISBURSEMENT)
    assert owing(db, campaign) == {"WH-HC": {"archive_check": 1}}
    assert on_the_dashboard(db, campaign, "WH") == {"pending_cases": 1, "done": False}


def test_a_level_the_campaign_has_not_is_refused_naming_the_deadline() -> None:
    raw = copy.deepcopy(DALIAN)
    raw["deadlines"][0]["done_when"]["reached_level"] = "province"
    with pytest.raises(ValidationFailed, match="freshman_materials"):
        parse(CampaignFile, raw)


def test_reached_level_goes_only_with_no_cases_in() -> None:
    raw = copy.deepcopy(DALIAN)
    raw["deadlines"][1]["done_when"]["reached_level"] = "city"
    with pytest.raises(ValidationFailed) as refused:
        parse(CampaignFile, raw)
    assert refused.value.details[0]["field"].startswith("deadlines.1.done_when")
