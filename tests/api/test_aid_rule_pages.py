"""The notices' rules on the two faces (both databases): `approve` with `data.amount` through
the API and the case page (the range and the level's opinion label shown, refused outside the
range with the range named), and the priority order on the queue page and in the case list."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from jinqiu.states import CaseState
from jinqiu.workflow.campaigns.service import load_campaign
from jinqiu.workflow.db import transaction
from tests.api.conftest import World, username
from tests.api.test_publicity_pages import csrf_of, page_client
from tests.factories import case_in, case_row, weihai_file

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "campaigns"
DALIAN = json.loads((EXAMPLES / "dalian-2011.json").read_text(encoding="utf-8"))
BOZHOU = json.loads((EXAMPLES / "bozhou-2023.json").read_text(encoding="utf-8"))
APPROVAL_DAY = dt.datetime(2024, 8, 12, 9)
CITY_APPROVER = username("approver", "WH")


def campaign_like(world: World, name: str, **keys: object) -> int:
    """A second campaign on the world's tree with the keys of another notice's file."""
    with transaction(world.engine) as conn:
        return load_campaign(conn, weihai_file(name=name, **keys), world.clock)


def dalian_case_at_the_city(world: World) -> tuple[int, int]:
    campaign = campaign_like(
        world, "大连式审批", opinions=DALIAN["opinions"], aid_rules=DALIAN["aid_rules"]
    )
    case_id = case_in(world.engine, world.clock, campaign, "WH-HC-001", CaseState.APPROVAL,
                      approved=2, student_changes={"enrollment_year": 2024})  # fmt: skip
    world.clock.set(APPROVAL_DAY)
    return campaign, case_id


def test_the_api_takes_the_approver_s_amount_within_the_range(world: World) -> None:
    _campaign, case_id = dalian_case_at_the_city(world)
    version = case_row(world.engine, case_id).version
    url = f"/api/cases/{case_id}/events"
    outside = world.client.post(
        url,
        json={"event": "approve", "version": version, "opinion": "审批同意",
              "data": {"amount": "4500"}},
        headers=world.as_(CITY_APPROVER),
    )  # fmt: skip
    assert outside.status_code == 422, outside.text
    body = outside.json()
    assert body["code"] == "guard_failed"
    assert "2000.00元至4000.00元" in body["message"]
    no_opinion = world.client.post(
        url, json={"event": "approve", "version": version, "data": {"amount": "3500"}},
        headers=world.as_(CITY_APPROVER),
    )  # fmt: skip
    assert no_opinion.status_code == 422
    assert no_opinion.json()["details"][0]["field"] == "opinion"
    assert "审批意见" in no_opinion.json()["message"]
    done = world.client.post(
        url,
        json={"event": "approve", "version": version, "opinion": "审批同意，按3500元资助",
              "data": {"amount": "3500"}},
        headers=world.as_(CITY_APPROVER),
    )  # fmt: skip
    assert done.status_code == 200, done.text
    read = world.client.get(f"/api/cases/{case_id}", headers=world.as_(CITY_APPROVER)).json()
    assert (read["state"], read["approved_amount"]) == ("disbursement", "3500.00")
    history = world.client.get(
        f"/api/cases/{case_id}/history", headers=world.as_(CITY_APPROVER)
    ).json()
    last = history[-1]
    assert last["opinion"] == "审批同意，按3500元资助"
    assert last["data"]["opinion_label"] == DALIAN["opinions"]["approve"]["labels"]["city"]
    assert last["data"]["amount_set_by_approver"] is True


def test_the_case_page_asks_for_the_level_s_opinion_and_the_amount(world: World) -> None:
    _campaign, case_id = dalian_case_at_the_city(world)
    browser = page_client(world, CITY_APPROVER)
    page = browser.get(f"/cases/{case_id}")
    assert page.status_code == 200
    assert "审批意见（审批通过须填写）" in page.text
    assert "2000.00元至4000.00元，须由审批人确定" in page.text
    assert "录取的新生" in page.text  # the rule's source is shown beside it
    done = browser.post(
        f"/cases/{case_id}/events",
        data={"csrf_token": csrf_of(page.text), "event": "approve",
              "version": str(case_row(world.engine, case_id).version),
              "opinion": "同意资助", "amount": "2800"},
    )  # fmt: skip
    assert done.status_code == 200 and "已审批通过" in done.text, done.text
    assert case_row(world.engine, case_id).approved_amount_fen == 280_000
    assert "审批意见：</strong>同意资助" in done.text
    assert "审批确定金额 2800.00 元" in done.text


def test_the_queue_lists_the_freshman_first(world: World) -> None:
    campaign = campaign_like(
        world, "亳州式优先", aid_priority=BOZHOU["aid_priority"],
    )  # fmt: skip
    in_school, freshman = (
        case_in(world.engine, world.clock, campaign, "WH-HC-001", CaseState.APPROVAL, approved=2,
                student_changes={"enrollment_year": year})
        for year in (2022, 2024)
    )  # fmt: skip
    world.clock.set(APPROVAL_DAY)
    listed = world.client.get(
        f"/api/cases?campaign={campaign}", headers=world.as_(CITY_APPROVER)
    ).json()
    assert [(c["id"], c["priority"]) for c in listed["items"]] == [
        (freshman, ["新入学"]),
        (in_school, []),
    ]
    queue = page_client(world, CITY_APPROVER).get(f"/queue?campaign={campaign}")
    assert queue.status_code == 200
    assert queue.text.index(f'href="/cases/{freshman}"') < queue.text.index(
        f'href="/cases/{in_school}"'
    )
    assert "优先·新入学" in queue.text
