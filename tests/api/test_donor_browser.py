"""The donor and 自筹 page in headless Chromium (both databases): the city union's manager
follows the nav, records a donor with its intent (two education levels ticked, a ceiling per
student) and then the city's own funds; both rows show, the intent in words."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, text

from jinqiu.api.app import create_app
from jinqiu.workflow.clock import ManualClock
from jinqiu.workflow.config import Settings
from jinqiu.workflow.db import transaction
from jinqiu.workflow.users.service import hash_password
from tests.api.test_browser import (  # the browser and server harness of the page tests
    PASSWORD,
    SHOTS,
    VIEWPORT,
    WAIT_MS,
    ServerThread,
    browser,
    user_t,
)
from tests.conftest import _wipe
from tests.factories import weihai

__all__ = ["browser"]  # the module-scoped Chromium fixture, shared
MANAGER = "manager.wh"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def site(request: pytest.FixtureRequest, browser: Any) -> Iterator[tuple[str, str]]:
    engine: Engine = request.getfixturevalue(
        "sqlite_engine" if request.param == "sqlite" else "pg_engine"
    )
    _wipe(engine)
    clock = ManualClock(dt.datetime(2024, 8, 20, 9))
    weihai(engine, clock)
    with transaction(engine) as conn:
        unit = conn.execute(text("SELECT id FROM unit WHERE code = 'WH'")).scalar_one()
        conn.execute(
            user_t.insert().values(
                username=MANAGER,
                password_hash=hash_password(PASSWORD),
                display_name="市总业务主管",
                unit_id=unit,
                roles=["manager"],
                is_active=True,
                created_at=clock.now(),
            )
        )
    settings = Settings(secret_key="browser-test-secret-0123456789abcdef", token_minutes=24 * 60)
    with ServerThread(create_app(engine=engine, clock=clock, settings=settings)) as server:
        yield server.url, request.param
    _wipe(engine)


def test_a_manager_records_a_donor_and_own_funds_in_the_browser(
    browser: Any, site: tuple[str, str]
) -> None:
    from playwright.sync_api import expect

    url, dialect = site
    context = browser.new_context(viewport=VIEWPORT, locale="zh-CN", base_url=url)
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    page.goto("/dashboard")
    page.fill("input[name=username]", MANAGER)
    page.fill("input[name=password]", PASSWORD)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_url(lambda u: "/login" not in u)

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
    context.close()
