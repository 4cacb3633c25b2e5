"""The publicity list pages (both databases): a district reviewer builds a list from the cases
waiting for publicity, publishes it, prints it, records an objection against a row and
resolves it; a refusal is an error page."""

from __future__ import annotations

import datetime as dt
import re

from fastapi.testclient import TestClient

from jinqiu.states import CaseState
from tests.api.conftest import PASSWORD, World
from tests.factories import case_in, case_row

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def page_client(world: World, username: str) -> TestClient:
    client = TestClient(world.client.app, raise_server_exceptions=False)
    signed = client.post(
        "/login", data={"username": username, "password": PASSWORD}, follow_redirects=False
    )
    assert signed.status_code == 303, signed.text
    return client


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, html
    return found.group(1)


def test_a_reviewer_builds_publishes_prints_and_handles_an_objection(world: World) -> None:
    first, second = (
        case_in(world.engine, world.clock, world.campaign, "WH-HC-001",
                CaseState.READY_FOR_PUBLICITY, student_changes={"name": name})
        for name in ("张小明", "李华")
    )  # fmt: skip
    world.clock.set(dt.datetime(2024, 8, 12, 9))
    browser = page_client(world, "reviewer.wh-hc")
    index = browser.get(f"/publicity-lists?campaign={world.campaign}")
    assert index.status_code == 200 and "生成公示名单" in index.text
    csrf = csrf_of(index.text)
    built = browser.post("/publicity-lists", data={"csrf_token": csrf, "campaign": world.campaign,
                                                   "unit": "WH-HC"})  # fmt: skip
    assert built.status_code == 200 and "已生成公示名单" in built.text, built.text
    list_url = re.search(r"/publicity-lists/(\d+)", str(built.url))
    assert list_url
    list_id = int(list_url.group(1))
    assert "张*明" in built.text and "张小明" not in built.text

    published = browser.post(f"/publicity-lists/{list_id}/publish", data={"csrf_token": csrf})
    assert "已发布，公示至 2024-08-19" in published.text
    assert case_row(world.engine, first).state == CaseState.PUBLICITY.value
    again = browser.post(f"/publicity-lists/{list_id}/publish", data={"csrf_token": csrf},
                         headers={"accept": "text/html"})  # fmt: skip
    assert again.status_code == 409 and "<html" in again.text.lower()

    notice = browser.get(f"/publicity-lists/{list_id}/notice")
    assert notice.status_code == 200 and "拟资助对象名单公示" in notice.text
    pdf = browser.get(f"/publicity-lists/{list_id}/notice.pdf")
    assert pdf.content.startswith(b"%PDF-")

    objected = browser.post(
        f"/publicity-lists/{list_id}/objections",
        data={"csrf_token": csrf, "case_id": str(second), "objector": "周某",
              "contact": "13700000000", "content": "家中有营运车辆"},
    )  # fmt: skip
    assert f"已登记对案件 {second} 的异议" in objected.text
    objection = re.search(r'action="/objections/(\d+)/resolve"', objected.text)
    assert objection
    resolved = browser.post(
        f"/objections/{objection.group(1)}/resolve",
        data={"csrf_token": csrf, "outcome": "upheld", "reason": "经核实属实"},
    )
    assert "异议已处理：异议成立" in resolved.text
    assert case_row(world.engine, second).state == CaseState.REJECTED.value
    bad = browser.post(f"/publicity-lists/{list_id}/objections",
                       data={"csrf_token": csrf, "case_id": "x", "objector": "", "contact": "",
                             "content": ""}, headers={"accept": "text/html"})  # fmt: skip
    assert bad.status_code == 422 and "<html" in bad.text.lower()


def test_a_clerk_sees_the_lists_but_may_not_build_one(world: World) -> None:
    browser = page_client(world, "clerk.wh-hc")
    index = browser.get("/publicity-lists")
    assert index.status_code == 200 and "生成名单" not in index.text
    refused = browser.post("/publicity-lists", data={"csrf_token": csrf_of(index.text),
                                                     "campaign": world.campaign, "unit": "WH-HC"},
                           headers={"accept": "text/html"})  # fmt: skip
    assert refused.status_code == 403
