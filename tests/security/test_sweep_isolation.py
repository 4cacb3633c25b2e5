"""Finding 3, the sweep side: one broken campaign no longer stops the sweep for all.

A campaign written straight into the database (as before validation existed, or by hand) with
reminder offsets of a million working days, a deadline in a year the calendar does not know, or
an unreadable calendar sits next to a good campaign. A tick still sends the good campaign's
reminders and ends its publicity periods, delivers the mail, and reports the broken campaign:
in the tick's report, in the `sweep_error` table (the last sweep's failures, seen by every
instance: /api/health counts them, /api/admin/sweep-errors lists them) and once a day in the
organizer's inbox and mailbox. Repaired, the campaign is swept again and the report clears."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, select, update

from jinqiu.demo.units import seed_weihai_tree
from jinqiu.notifications.models import InboxMessage
from jinqiu.workflow.campaigns.models import Campaign, CampaignDeadline
from jinqiu.workflow.campaigns.schema import CampaignFile
from jinqiu.workflow.campaigns.service import load_campaign
from jinqiu.workflow.cases.models import Case
from jinqiu.workflow.clock import ManualClock
from jinqiu.workflow.db import transaction
from jinqiu.workflow.deadlines.sweep import sweep
from jinqiu.workflow.failures import SweepError
from jinqiu.workflow.publicity_lists.service import build_list, publish_list
from jinqiu.workflow.tick import tick
from jinqiu.workflow.units.models import Unit
from tests.api.conftest import World, username
from tests.api.conftest import world as world  # the HTTP fixture, on both databases
from tests.factories import WEIHAI, actor_of, new_case, weihai_by_level, weihai_file
from tests.notifications.test_smtp_delivery import SmtpServer, settings_for
from tests.workflow.cases.test_engine import fire

campaign_t = Campaign.__table__  # type: ignore[attr-defined]
deadline_t = CampaignDeadline.__table__  # type: ignore[attr-defined]
case_t = Case.__table__  # type: ignore[attr-defined]
inbox_t = InboxMessage.__table__  # type: ignore[attr-defined]
unit_t = Unit.__table__  # type: ignore[attr-defined]
sweep_error_t = SweepError.__table__  # type: ignore[attr-defined]

# The statistics table is owed by 各区市总工会 (the Weihai file's set), not 市直机关工会工委.
DISTRICT_MAILS = {
    f"{code.lower()}@example.org" for code in ("WH-HC", "WH-WD", "WH-RC", "WH-RS", "WH-GQ")
}
ORGANIZER_MAIL = "whzhfwzx@example.org"  # the city union, organizer of both campaigns
GOOD, BAD = "2026年度金秋助学活动", "2026年度金秋助学活动（手工录入）"


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


def weihai_2026(name: str) -> CampaignFile:
    """Weihai's file moved to 2026, its statistics table due on New Year's Eve (overdue notices
    run into 2027, which the override covers)."""
    raw = json.loads(WEIHAI.read_text(encoding="utf-8").replace("2024-", "2026-"))
    raw.update(name=name, year=2026, calendar={"years": [2027]})
    raw["deadlines"][1]["due"] = "2026-12-31"
    return CampaignFile.model_validate(raw)


def set_campaign(engine: Engine, campaign_id: int, **values: Any) -> None:
    """Rewrites the row as a hand edit would; a new rules token, as any rewrite of the row."""
    with transaction(engine) as conn:
        conn.execute(
            update(campaign_t)
            .where(campaign_t.c.id == campaign_id)
            .values(rules_token=uuid.uuid4().hex, **values)
        )


def set_due(engine: Engine, campaign_id: int, key: str, due: dt.date) -> None:
    with transaction(engine) as conn:
        conn.execute(
            update(deadline_t)
            .where(deadline_t.c.campaign_id == campaign_id, deadline_t.c.key == key)
            .values(due=due)
        )


def offsets_of_a_million_days(engine: Engine, campaign_id: int) -> str:
    set_campaign(engine, campaign_id, reminders={"before_working_days": [1_000_000]})
    return "2003"  # walking back a million working days leaves the known calendar there


def a_deadline_in_an_unknown_year(engine: Engine, campaign_id: int) -> str:
    set_campaign(engine, campaign_id, calendar={})
    set_due(engine, campaign_id, "statistics_report", dt.date(2027, 1, 4))
    return "2027"


def an_unreadable_calendar(engine: Engine, campaign_id: int) -> str:
    set_campaign(engine, campaign_id, calendar={"holidays": ["国庆节"]})
    return "国庆节"


BREAKAGES = [offsets_of_a_million_days, a_deadline_in_an_unknown_year, an_unreadable_calendar]


def sweep_errors(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(select(sweep_error_t).order_by(sweep_error_t.c.id)))


def notices_about(engine: Engine, name: str) -> list[Any]:
    with engine.connect() as conn:
        rows = conn.execute(select(inbox_t).where(inbox_t.c.unit_code == "WH")).all()
    return [r for r in rows if f"「{name}」" in r.title]


@pytest.mark.parametrize("breakage", BREAKAGES, ids=lambda b: b.__name__)
def test_a_broken_campaign_is_reported_while_the_good_one_is_swept_and_delivered(
    db: Engine, smtp: SmtpServer, breakage: Callable[[Engine, int], str]
) -> None:
    clock = ManualClock(dt.datetime(2026, 12, 31, 8))  # the statistics table is due today
    with transaction(db) as conn:
        seed_weihai_tree(conn, grassroots_per_district=3)
        good = load_campaign(conn, weihai_2026(GOOD), clock)
        bad = load_campaign(conn, weihai_2026(BAD), clock)
    with db.connect() as conn:
        original = conn.execute(select(campaign_t).where(campaign_t.c.id == bad)).one()
    named = breakage(db, bad)
    settings = settings_for(smtp.port)

    report = tick(db, clock, settings)

    reminded = {r.unit_code for r in report.sweep.reminders if r.campaign_id == good}
    assert {f"{u.lower()}@example.org" for u in reminded} == DISTRICT_MAILS
    assert [(f.campaign_id, f.campaign_name) for f in report.sweep.failures] == [(bad, BAD)]
    assert named in report.sweep.failures[0].error
    mails = [(r.rcpt_tos[0], str(r.message["Subject"])) for r in smtp.received]
    assert {to for to, _ in mails} == DISTRICT_MAILS | {ORGANIZER_MAIL}
    (notice,) = [subject for to, subject in mails if to == ORGANIZER_MAIL]
    assert BAD in notice
    ((row,),) = [[(r.campaign_id, r.campaign_name) for r in sweep_errors(db)]]
    assert row == (bad, BAD)
    assert len(notices_about(db, BAD)) == 1

    clock.set(dt.datetime(2026, 12, 31, 15))  # the same day, again: reported, not re-notified
    again = tick(db, clock, settings)
    assert again.sweep.failed_campaigns == [bad]
    assert (again.sweep.reminders, again.delivery.sent) == ([], 0)
    assert [(r.campaign_id, r.failures) for r in sweep_errors(db)] == [(bad, 2)]
    assert len(notices_about(db, BAD)) == 1

    set_campaign(db, bad, reminders=original.reminders, calendar=original.calendar)
    set_due(db, bad, "statistics_report", dt.date(2026, 12, 31))
    repaired = tick(db, clock, settings)
    assert repaired.sweep.failures == []
    assert sweep_errors(db) == []
    assert {r.campaign_id for r in repaired.sweep.reminders} == {bad}  # its reminders go out now
    assert repaired.delivery.sent == len(DISTRICT_MAILS)


def test_publicity_ends_for_a_good_campaign_next_to_one_whose_rules_cannot_be_read(
    db: Engine, smtp: SmtpServer
) -> None:
    clock = ManualClock(dt.datetime(2024, 7, 22, 9))
    _tree, good = weihai_by_level(db, clock)
    with transaction(db) as conn:
        bad = load_campaign(conn, weihai_file(name=BAD), clock)
    clerk, reviewer = actor_of(db, "WH-HC-001", "clerk"), actor_of(db, "WH-HC", "reviewer")
    cases, lists = {}, {}
    for campaign in (good, bad):
        case_id = new_case(db, clock, campaign, "WH-HC-001")
        fire(db, clock, case_id, "submit", clerk)
        fire(db, clock, case_id, "verify", reviewer, opinion="材料齐全")
        cases[campaign] = case_id
        with transaction(db) as conn:  # the district's publicity list of it, published
            district = conn.execute(select(unit_t).where(unit_t.c.code == "WH-HC")).one()
            lists[campaign] = build_list(conn, campaign_id=campaign, unit=district,
                                         actor=reviewer, clock=clock)  # fmt: skip
            publish_list(conn, lists[campaign], actor=reviewer, clock=clock)
    an_unreadable_calendar(db, bad)
    clock.set(dt.datetime(2024, 8, 2, 9))  # five working days of publicity are over

    report = tick(db, clock, settings_for(smtp.port))

    assert report.sweep.publicity.ended == [cases[good]]
    stages = {f.stage for f in report.sweep.failures if f.campaign_id == bad}
    assert report.sweep.failed_campaigns == [bad]
    assert f"公示名单结束（名单 {lists[bad]}）" in stages  # and its two deadlines
    with db.connect() as conn:
        states = dict(conn.execute(select(case_t.c.campaign_id, case_t.c.state)).all())
    assert states == {good: "approval", bad: "publicity"}
    assert [r.campaign_id for r in sweep_errors(db)] == [bad]


def test_health_counts_the_failing_campaigns_and_admins_list_them(world: World) -> None:
    health = world.client.get("/api/health")
    assert health.json() == {"status": "ok", "sweep_errors": 0}
    with transaction(world.engine) as conn:
        bad = load_campaign(conn, weihai_file(name=BAD), world.clock)
    offsets_of_a_million_days(world.engine, bad)
    world.clock.set(dt.datetime(2024, 7, 29, 9))  # T-2 of the survey deadline (7/31)

    report = sweep(world.engine, world.clock, base_url="https://jinqiu.example.org")

    assert report.failed_campaigns == [bad]  # both its deadlines failed
    health = world.client.get("/api/health")
    assert (health.status_code, health.json()) == (200, {"status": "ok", "sweep_errors": 1})
    listed = world.client.get("/api/admin/sweep-errors", headers=world.as_(username("admin", "WH")))
    assert listed.status_code == 200, listed.text
    (item,) = listed.json()
    assert (item["campaign"], item["campaign_name"], item["failures"]) == (bad, BAD, 1)
    assert "2003" in item["error"] and item["stage"]
    other_branch = world.client.get(
        "/api/admin/sweep-errors", headers=world.as_(username("admin", "WH-WD"))
    )
    assert [i["campaign"] for i in other_branch.json()] == [bad]  # the city's campaign concerns it
    clerk = world.client.get(
        "/api/admin/sweep-errors", headers=world.as_(username("clerk", "WH-HC-001"))
    )
    assert clerk.status_code == 403
