"""The employment and work-study registers in headless Chromium (both databases): a clerk of a
grassroots union follows the nav, registers a graduate of an aided family, records a 一人一策
plan, moves the record on to employment with the machine's buttons, then opens a work-study post
and adds a student to it; the student's given name is masked on every screen."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from typing import Any

import pytest

from jinqiu.states import CaseState
from tests.api.browser_site import DATABASES, SHOTS, Account, browser, sign_in, weihai_site
from tests.factories import case_in

__all__ = ["browser"]  # the module-scoped Chromium fixture, shared
CLERK = "clerk.wh-hc-001"


@pytest.fixture(params=DATABASES)
def site(request: pytest.FixtureRequest, browser: Any) -> Iterator[tuple[str, list[int], str]]:
    with weihai_site(
        request,
        now=dt.datetime(2024, 9, 20, 9),
        users=[Account(CLERK, "WH-HC-001", "clerk", "基层经办")],
    ) as served:
        engine, clock, campaign = served.engine, served.clock, served.campaign
        paid = [
            case_in(engine, clock, campaign, "WH-HC-001", CaseState.FOLLOW_UP,
                    student_changes={"name": name})
            for name in ("张小明", "李晓红")
        ]  # fmt: skip
        yield served.url, paid, served.dialect


def test_a_clerk_keeps_both_registers_in_the_browser(
    browser: Any, site: tuple[str, list[int], str]
) -> None:
    from playwright.sync_api import expect

    url, (graduate, student), dialect = site
    page = sign_in(browser, url, CLERK, "/dashboard")

    page.click("nav a[href='/employment']")
    register = page.locator("[data-testid=register]")
    register.locator("input[name=case_id]").fill(str(graduate))
    register.locator("input[name=school]").fill("山东大学（威海）")
    register.locator("input[name=studies_locally]").check()
    register.locator("button[type=submit]").click()
    page.wait_for_url(re.compile(r"/employment-records/\d+"))
    expect(page.locator("[data-testid=state]")).to_have_text("已登记")

    help_form = page.locator("[data-testid=help]")
    help_form.locator("select[name=kind]").select_option("plan")
    help_form.locator("input[name=text]").fill("一人一策：简历指导，推荐本地制造业岗位")
    help_form.locator("button[type=submit]").click()
    expect(page.locator("[data-testid=help-list]")).to_contain_text("一人一策：简历指导")

    page.locator("[data-testid=event-start_seeking] button").click()
    expect(page.locator("[data-testid=state]")).to_have_text("求职中")
    employ = page.locator("[data-testid=event-employ]")
    employ.locator("input[name=destination]").fill("威海某电子公司")
    employ.locator("button").click()
    expect(page.locator("[data-testid=state]")).to_have_text("已就业")
    expect(page.locator("[data-testid=history] tbody tr")).to_have_count(4)
    page.screenshot(path=str(SHOTS / f"employment-record-{dialect}.png"), full_page=True)
    assert "张小明" not in page.content() and "张*明" in page.content()

    page.click("nav a[href='/work-study']")
    post = page.locator("[data-testid=open-post]")
    post.locator("input[name=title]").fill("图书馆助理")
    post.locator("input[name=employer]").fill("威海市图书馆")
    post.locator("select[name=kind]").select_option("community")
    post.locator("input[name=hours_per_week]").fill("8")
    post.locator("input[name=hourly_pay]").fill("20.50")
    post.locator("button[type=submit]").click()
    page.wait_for_url(re.compile(r"/work-study-posts/\d+"))
    adding = page.locator("[data-testid=add-participant]")
    adding.locator("input[name=case_id]").fill(str(student))
    adding.locator("button[type=submit]").click()
    expect(page.locator("[data-testid=members] tbody tr")).to_have_count(1)
    expect(page.locator("[data-testid=members]")).to_contain_text("李*红")
    page.screenshot(path=str(SHOTS / f"work-study-post-{dialect}.png"), full_page=True)
    page.context.close()
