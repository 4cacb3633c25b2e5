"""Findings 3 and 17, the campaign side: a campaign is checked when it is loaded (API and CLI
share `load_campaign`), so that no campaign can stop the sweep later.

- reminder offsets are small bounded integers (a few dozen working days at most);
- every year the deadlines, phases, publicity and reminder windows touch is covered by the
  official calendar or by the campaign's own `calendar` override (the error names the year);
- phases and deadlines lie inside the campaign's year;
- no control characters in any text of the file; money bounded;
- one campaign per organizer, name and year (409 `duplicate_campaign`)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from jinqiu.workflow.campaigns.models import Campaign
from tests.api.conftest import World, username
from tests.api.conftest import world as world  # the HTTP fixture, on both databases
from tests.factories import WEIHAI

campaign_t = Campaign.__table__  # type: ignore[attr-defined]
RAW: dict[str, Any] = json.loads(WEIHAI.read_text(encoding="utf-8"))


def weihai(**changes: Any) -> dict[str, Any]:
    """The Weihai 2024 file under another name (the world already holds the original)."""
    raw = copy.deepcopy(RAW)
    raw["name"] = "2024年度金秋助学活动（补充）"
    raw.update(changes)
    return raw


def moved_to(year: int, **changes: Any) -> dict[str, Any]:
    """The Weihai file with every date moved to `year`."""
    raw = json.loads(json.dumps(weihai()).replace("2024-", f"{year}-"))
    raw.update(year=year, name=f"{year}年度金秋助学活动", **changes)
    return raw


def post(world: World, body: dict[str, Any]) -> Any:
    return world.client.post(
        "/api/campaigns", json=body, headers=world.as_(username("admin", "WH"))
    )


def campaigns(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(campaign_t)).scalar_one())


def refused(response: Any, *fields: str) -> list[dict[str, str]]:
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["code"] == "validation_error"
    details = body["details"]
    assert [d["field"] for d in details][: len(fields)] == list(fields), details
    return list(details)


@pytest.mark.parametrize(
    ("reminders", "field"),
    [
        ({"before_working_days": [1_000_000]}, "reminders.before_working_days.0"),
        ({"before_working_days": [3, -1]}, "reminders.before_working_days.1"),
        ({"before_working_days": list(range(20))}, "reminders.before_working_days"),
        ({"overdue_every_working_days": 10**9}, "reminders.overdue_every_working_days"),
        ({"escalate_after_working_days": 10**9}, "reminders.escalate_after_working_days"),
    ],
)
def test_reminder_offsets_beyond_a_few_dozen_working_days_are_refused(
    world: World, reminders: dict[str, Any], field: str
) -> None:
    before = campaigns(world.engine)
    refused(post(world, weihai(reminders=reminders)), field)
    assert campaigns(world.engine) == before


def test_reasonable_reminder_offsets_are_accepted(world: World) -> None:
    reminders = {
        "before_working_days": [10, 5, 0],
        "overdue_every_working_days": 2,
        "escalate_after_working_days": 4,
    }
    response = post(world, weihai(reminders=reminders))
    assert response.status_code == 201, response.text
    assert response.json()["reminders"] == reminders


def test_a_campaign_in_a_year_the_official_calendar_lacks_names_the_year_and_the_override(
    world: World,
) -> None:
    (problem,) = refused(post(world, moved_to(2031)), "calendar")
    assert "2031" in problem["message"] and '"years": [2031]' in problem["message"]
    assert response_ok(post(world, moved_to(2031, calendar={"years": [2031]})))


def test_an_overdue_window_running_into_an_unknown_year_needs_that_year_too(
    world: World,
) -> None:
    """A deadline on 2026-12-15 is still swept (overdue notices) into 2027, whose calendar the
    package does not know: the override must say how 2027 works."""
    late = moved_to(2026)
    late["deadlines"][1]["due"] = "2026-12-15"
    (problem,) = refused(post(world, late), "calendar")
    assert "2027" in problem["message"]
    late["calendar"] = {"years": [2027]}
    assert response_ok(post(world, late))


def test_reminders_looking_back_into_an_unknown_year_need_that_year(world: World) -> None:
    """30 working days before 2004-01-20 is in 2003, before the official calendar starts."""
    early = moved_to(2004, reminders={"before_working_days": [30]})
    early["phases"] = [
        {
            "key": "survey",
            "name": "摸底",
            "starts": "2004-01-05",
            "ends": "2004-01-20",
            "cases_leave": ["survey"],
        }
    ]
    early["deadlines"] = [dict(early["deadlines"][0], due="2004-01-20")]
    (problem,) = refused(post(world, early), "calendar")
    assert "2003" in problem["message"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda r: r["phases"][0].update(starts="2023-12-20"), "phases.0.starts"),
        (lambda r: r["phases"][3].update(ends="2025-01-10"), "phases.3.ends"),
        (lambda r: r["deadlines"][1].update(due="2025-03-01"), "deadlines.1.due"),
    ],
)
def test_phases_and_deadlines_outside_the_campaign_year_are_refused(
    world: World, change: Any, field: str
) -> None:
    raw = weihai(calendar={"years": [2025]})
    change(raw)
    (problem,) = refused(post(world, raw), field)
    assert "2024" in problem["message"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda r: r.update(name="金秋\u0001助学"), "name"),
        (lambda r: r["phases"][1].update(name="审核\u007f档案"), "phases.1.name"),
        (lambda r: r["deadlines"][0].update(title="报送\u001b[31m材料"), "deadlines.0.title"),
        (lambda r: r["aid_rules"][1].update(tier="first\u0008"), "aid_rules.1.tier"),
    ],
)
def test_control_characters_in_campaign_texts_are_refused(
    world: World, change: Any, field: str
) -> None:
    raw = weihai()
    change(raw)
    refused(post(world, raw), field)


@pytest.mark.parametrize("amount", ["1e30", "99999999999999999", "1e999999"])
def test_money_beyond_any_budget_is_refused_naming_the_field(world: World, amount: str) -> None:
    raw = weihai()
    raw["funds"][0]["budget"] = amount
    raw["aid_rules"][0].update(amount=amount, cap=amount)
    details = refused(post(world, raw))
    assert {"funds.0.budget", "aid_rules.0.amount"} <= {d["field"] for d in details}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (
            lambda r: r["eligibility"].update(archive_max_age_months=10**12),
            "eligibility.archive_max_age_months",
        ),
        (lambda r: r["calendar"].update(years=[10**9]), "calendar.years.0"),
        (lambda r: r["calendar"].update(holidays=["2024-10-01"] * 5000), "calendar.holidays"),
        (lambda r: r.update(phases=[r["phases"][0]] * 500), "phases"),
    ],
)
def test_other_unbounded_campaign_numbers_and_lists_are_refused(
    world: World, change: Any, field: str
) -> None:
    raw = weihai(calendar={})
    change(raw)
    refused(post(world, raw), field)


def test_the_same_campaign_twice_is_a_409_duplicate(world: World) -> None:
    before = campaigns(world.engine)
    again = copy.deepcopy(RAW)  # the world's campaign: same organizer, name and year
    response = post(world, again)
    assert response.status_code == 409, response.text
    body = response.json()
    assert body["code"] == "duplicate_campaign"
    assert RAW["name"] in body["message"]
    assert campaigns(world.engine) == before
    renamed = post(world, weihai())
    assert renamed.status_code == 201, renamed.text
    # another union's campaign (without Weihai's deadlines, which name the city's units)
    other_organizer = post(world, dict(copy.deepcopy(RAW), organizer="WH-HC", deadlines=[]))
    assert other_organizer.status_code == 201, other_organizer.text


def response_ok(response: Any) -> bool:
    assert response.status_code == 201, response.text
    return True
