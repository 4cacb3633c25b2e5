"""Compiled campaign rules are cached per process, keyed by the row's rules_token: a campaign
deleted and loaded again under the same id (SQLite reuses ids, TRUNCATE … RESTART IDENTITY
too) must be checked against its own rules, never the old ones."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Engine

from jinqiu.workflow.cases.engine import apply_event
from jinqiu.workflow.clock import ManualClock
from jinqiu.workflow.db import transaction
from jinqiu.workflow.errors import GuardFailed
from tests.conftest import _wipe
from tests.factories import actor_of, new_case, weihai


def submit(engine: Engine, clock: ManualClock, case_id: int) -> None:
    with transaction(engine) as conn:
        apply_event(
            conn,
            case_id=case_id,
            event="submit",
            expected_version=1,
            actor=actor_of(engine, "WH-HC-001", "clerk"),
            clock=clock,
        )


def test_a_campaign_reloaded_under_the_same_id_is_judged_by_its_new_rules(
    db: Engine, clock: ManualClock
) -> None:
    _tree, first = weihai(db, clock)
    submit(db, clock, new_case(db, clock, first, "WH-HC-001"))  # inside July's survey window

    _wipe(db)
    august = {
        "key": "survey",
        "name": "调查摸底",
        "starts": "2024-08-01",
        "ends": "2024-08-31",
        "cases_leave": ["survey"],
    }
    _tree, second = weihai(db, clock, phases=[august])
    assert second == first  # the same id, handed out again
    case_id = new_case(db, clock, second, "WH-HC-001")
    with pytest.raises(GuardFailed) as refused:
        submit(db, clock, case_id)  # 7/20 is before the new window opens
    assert [r.code for r in refused.value.reasons] == ["survey_not_open"]
    clock.set(dt.datetime(2024, 8, 2, 9))
    submit(db, clock, case_id)
