"""The donor and 自筹 page in headless Chromium (both databases): the city union's manager
follows the nav, records a donor with its intent (two education levels ticked, a ceiling per
student) and then the city's own funds; both rows show, the intent in words."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest

from tests.api.browser_site import DATABASES, SHOTS, Account, browser, sign_in, weihai_site

__all__ = ["browser"]  # the module-scoped Chromium fixture, shared
MANAGER = "manager.wh"


@pytest.fixture(params=DATABASES)
def site(request: pytest.FixtureRequest, browser: Any) -> Iterator[tuple[str, str]]:
    with weihai_site(
        request,
        now=dt.datetime(2024, 8, 20, 9),
        users=[Account(MANAGER, "WH", "manager", "市总业务主管")],
    ) as served:
        yield served.url, served.dialect


def test_a_manager_records_a_donor_and_own_funds_in_the_browser(
    browser: Any, site: tuple[str, str]
) -> None:
    from playwright.sync_api import expect

    url, dialect = site
    page = sign_in(browser, url, MANAGER, "/dashboard")

    page.click("nav a[href='/donors']")
    donor = page.locator("[data-testid=record-donor]")
    donor.locator("input[name=name]").fill("威海某爱心企业")
    donor.locator("input[name=contact]").fill("王经理 0631-5200000")
    donor.locator("input[name=amount]").fill("18000")
    donor.locator("input[name=education_levels][value=undergraduate]").check()
    donor.locator("input[name=education_levels][value=college]").check()
    donor.locator("input[name=max_per_student]").fill("3500")
    donor.locator("textarea[name=summary]").fill("企业结对捐资助学")
    donor.locator("button[type=submit]").click()
    expect(page.locator("[data-testid=flash]")).to_have_text("已登记捐赠方：威海某爱心企业")
    row = page.locator("[data-testid=donors] tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("学历：大专、本科；每人不超过 3500 元")  # the form's order
    expect(row).to_contain_text("18000.00")

    funds = page.locator("[data-testid=record-unit-fund]")
    funds.locator("select[name=source]").select_option("donation")
    funds.locator("input[name=amount]").fill("12000.50")
    funds.locator("input[name=note]").fill("市总工会募集")
    funds.locator("button[type=submit]").click()
    expect(page.locator("[data-testid=flash]")).to_have_text("已登记自筹：WH 12000.50 元")
    expect(page.locator("[data-testid=unit-funds] tbody tr")).to_contain_text("社会捐助")
    page.screenshot(path=str(SHOTS / f"donors-{dialect}.png"), full_page=True)
    page.context.close()
