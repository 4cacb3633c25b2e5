"""The employment and work-study registers as pages (both databases): a clerk registers a
graduate, records help, moves the record on to employment with the machine's buttons; opens a
work-study post, adds and removes participants and closes it; the nav links them; a reviewer
reads but sees no forms; a refusal is an error page; a sibling union gets 404."""

from __future__ import annotations

import datetime as dt
import re

from jinqiu.states import CaseState
from tests.api.conftest import World
from tests.api.test_publicity_pages import csrf_of, page_client
from tests.factories import case_in


def test_a_clerk_keeps_the_employment_register(world: World) -> None:
    paid = case_in(world.engine, world.clock, world.campaign, "WH-HC-001", CaseState.FOLLOW_UP,
                   student_changes={"name": "张小明"})  # fmt: skip
    world.clock.set(dt.datetime(2024, 9, 20, 9))
    browser = page_client(world, "clerk.wh-hc-001")
    dashboard = browser.get("/dashboard")
    assert 'href="/employment"' in dashboard.text and 'href="/work-study"' in dashboard.text
    index = browser.get(f"/employment?campaign={world.campaign}")
    assert index.status_code == 200 and "登记毕业生" in index.text
    csrf = csrf_of(index.text)
    made = browser.post("/employment", data={
        "csrf_token": csrf, "campaign": world.campaign, "case_id": str(paid),
        "graduation_year": "2024", "school": "山东大学", "studies_locally": "on",
    })  # fmt: skip
    assert made.status_code == 200 and "已登记" in made.text, made.text
    found = re.search(r"/employment-records/(\d+)", str(made.url))
    assert found
    url = f"/employment-records/{found.group(1)}"
    assert "张*明" in made.text and "张小明" not in made.text
    helped = browser.post(f"{url}/help", data={"csrf_token": csrf, "kind": "plan",
                                               "text": "一人一策：推荐本地岗位"})  # fmt: skip
    assert "已登记帮扶" in helped.text and "一人一策：推荐本地岗位" in helped.text
    assert 'data-testid="event-employ"' in helped.text
    seeking = browser.post(f"{url}/events", data={"csrf_token": csrf, "event": "start_seeking",
                                                  "version": "2"})  # fmt: skip
    assert "已更新：求职中" in seeking.text
    employed = browser.post(f"{url}/events", data={
        "csrf_token": csrf, "event": "employ", "version": "3", "destination": "威海某公司",
    })  # fmt: skip
    assert "已更新：已就业" in employed.text and "去向：威海某公司" in employed.text
    assert 'data-testid="help"' not in employed.text  # ended: no more help
    stale = browser.post(f"{url}/events", data={"csrf_token": csrf, "event": "employ",
                                                 "version": "3"}, headers={"accept": "text/html"})  # fmt: skip
    assert stale.status_code == 409 and "<html" in stale.text.lower()
    listed = browser.get(f"/employment?campaign={world.campaign}")
    assert "威海某公司" in listed.text and "已就业" in listed.text

    reviewer = page_client(world, "reviewer.wh-hc")
    read = reviewer.get(url)
    assert read.status_code == 200 and 'data-testid="help"' not in read.text
    assert "登记毕业生" not in reviewer.get(f"/employment?campaign={world.campaign}").text
    refused = reviewer.post(f"{url}/help", data={"csrf_token": csrf_of(read.text),
                                                 "kind": "training"})  # fmt: skip
    assert refused.status_code == 403
    sibling = page_client(world, "clerk.wh-hc-002")
    assert sibling.get(url).status_code == 404


def test_a_clerk_keeps_the_work_study_register(world: World) -> None:
    first, second = (
        case_in(world.engine, world.clock, world.campaign, "WH-HC-001", CaseState.FOLLOW_UP)
        for _ in range(2)
    )
    browser = page_client(world, "clerk.wh-hc-001")
    index = browser.get(f"/work-study?campaign={world.campaign}")
    assert index.status_code == 200 and "发布岗位" in index.text
    csrf = csrf_of(index.text)
    made = browser.post("/work-study", data={
        "csrf_token": csrf, "campaign": world.campaign, "unit": "WH-HC-001", "title": "图书馆助理",
        "employer": "威海市图书馆", "kind": "community", "hours_per_week": "8",
        "hourly_pay": "20",
    })  # fmt: skip
    assert made.status_code == 200 and "已发布岗位" in made.text, made.text
    found = re.search(r"/work-study-posts/(\d+)", str(made.url))
    assert found
    url = f"/work-study-posts/{found.group(1)}"
    for case_id in (first, second):
        added = browser.post(f"{url}/participants", data={"csrf_token": csrf,
                                                         "case_id": str(case_id)})  # fmt: skip
        assert "已添加" in added.text
    assert "参加人员（2 人）" in added.text
    removed = browser.post(f"{url}/participants/{second}/remove", data={"csrf_token": csrf})
    assert "已移出" in removed.text and "参加人员（1 人）" in removed.text
    closed = browser.post(f"{url}/close", data={"csrf_token": csrf})
    assert "岗位已关闭" in closed.text and 'data-testid="add-participant"' not in closed.text
    listed = browser.get(f"/work-study?campaign={world.campaign}")
    assert "威海市图书馆" in listed.text and "已关闭" in listed.text
    bad = browser.post("/work-study", data={
        "csrf_token": csrf, "campaign": world.campaign, "unit": "WH-HC-001", "title": "x",
        "employer": "y", "kind": "community", "hours_per_week": "99", "hourly_pay": "20",
    }, headers={"accept": "text/html"})  # fmt: skip
    assert bad.status_code == 422 and "<html" in bad.text.lower()
    assert page_client(world, "clerk.wh-hc-002").get(url).status_code == 404
