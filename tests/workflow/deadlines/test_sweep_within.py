"""A sweep split by subtree (`jinqiu tick --within CODE`, JINQIU_SWEEP_WITHIN for serve's
scheduler): a national deployment runs one sweeper per group of provinces, each sweeping only
the campaigns organised inside its subtree. The split is about time, not correctness: sweepers
that overlap still send every reminder once (the ledger's unique key)."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from jinqiu.workflow.campaigns.service import load_campaign
from jinqiu.workflow.clock import ManualClock
from jinqiu.workflow.db import make_engine, transaction
from jinqiu.workflow.deadlines.models import ReminderLedger
from jinqiu.workflow.deadlines.sweep import sweep
from jinqiu.workflow.errors import NotFound
from tests.command import run_jinqiu
from tests.factories import BY_LEVEL, new_case, weihai_by_level, weihai_file

ROOT = Path(__file__).parents[3]

ledger_t = ReminderLedger.__table__  # type: ignore[attr-defined]
BASE_URL = "https://jinqiu.example.org"


def campaigns_of(report: Any) -> set[int]:
    return {r.campaign_id for r in report.reminders}


def ledger_rows(db: Engine) -> int:
    with db.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(ledger_t)).scalar_one())


@pytest.fixture
def two_organisers(db: Engine, clock: ManualClock) -> tuple[int, int]:
    """The city's campaign and one organised by the district 环翠区, each with a case in survey
    under 环翠区 (so each campaign's survey deadline has a unit to remind)."""
    _tree, city = weihai_by_level(db, clock)
    with transaction(db) as conn:
        district = load_campaign(
            conn,
            weihai_file(organizer="WH-HC", name="环翠区2024年度金秋助学活动", deadlines=BY_LEVEL),
            clock,
        )
    new_case(db, clock, city, "WH-HC-001")
    new_case(db, clock, district, "WH-HC-002")
    clock.set(dt.datetime(2024, 7, 31, 8))  # the survey deadline's day
    return city, district


def test_a_sweep_within_a_subtree_sweeps_only_the_campaigns_organised_there(
    db: Engine, clock: ManualClock, two_organisers: tuple[int, int]
) -> None:
    city, district = two_organisers
    assert sweep(db, clock, base_url=BASE_URL, within="WH-WD").reminders == []
    assert ledger_rows(db) == 0
    in_district = sweep(db, clock, base_url=BASE_URL, within="WH-HC")
    assert in_district.reminders and campaigns_of(in_district) == {district}
    in_city = sweep(db, clock, base_url=BASE_URL, within="WH")  # the district's: already sent
    assert in_city.reminders and campaigns_of(in_city) == {city}
    assert in_city.already_sent == len(in_district.reminders)
    everything = sweep(db, clock, base_url=BASE_URL)
    assert everything.reminders == []
    assert ledger_rows(db) == len(in_district.reminders) + len(in_city.reminders)


def test_overlapping_sweepers_send_each_reminder_once(
    db: Engine, clock: ManualClock, two_organisers: tuple[int, int]
) -> None:
    whole = sweep(db, clock, base_url=BASE_URL, within="WH")
    again = sweep(db, clock, base_url=BASE_URL, within="WH-HC")
    assert campaigns_of(whole) == set(two_organisers)
    assert again.reminders == [] and ledger_rows(db) == len(whole.reminders)


def test_an_unknown_unit_is_refused_before_anything_is_swept(
    db: Engine, clock: ManualClock, two_organisers: tuple[int, int]
) -> None:
    with pytest.raises(NotFound):
        sweep(db, clock, base_url=BASE_URL, within="NO-SUCH-UNIT")
    assert ledger_rows(db) == 0


def test_jinqiu_tick_within_a_subtree(tmp_path: Path, clock: ManualClock) -> None:
    """The command an operator runs per group of provinces; a code that names no unit is a
    clear error, before anything is swept."""
    url = f"sqlite:///{tmp_path / 'jinqiu.db'}"
    env = {**os.environ, "JINQIU_DATABASE_URL": url, "PYTHONUTF8": "1"}
    env.pop("JINQIU_SWEEP_WITHIN", None)
    assert run_jinqiu(env, ["db", "upgrade"], cwd=ROOT).code == 0
    engine = make_engine(url)
    try:
        _tree, campaign = weihai_by_level(engine, clock)
        new_case(engine, clock, campaign, "WH-HC-001")
    finally:
        engine.dispose()
    now = ["--now", "2024-07-31T08:00:00+08:00"]
    unknown = run_jinqiu(env, ["tick", *now, "--within", "NO-SUCH"], cwd=ROOT)
    assert unknown.code != 0 and "not_found" in unknown.err and "NO-SUCH" in unknown.err
    elsewhere = run_jinqiu(env, ["tick", *now, "--within", "WH-HC"], cwd=ROOT)  # organised by WH
    assert elsewhere.code == 0, elsewhere.err
    assert "  reminders: 0 new, 0 already sent\n" in elsewhere.out
    by_env = run_jinqiu({**env, "JINQIU_SWEEP_WITHIN": "WH"}, ["tick", *now], cwd=ROOT)
    assert by_env.code == 0, by_env.err
    assert "  reminders: 0 new" not in by_env.out
