"""The administration pages in headless Chromium (both databases), without the API: the city
union's admin signs in, follows the nav to the units page, creates a grassroots union under a
district (a wrong e-mail address first: the message beside the field, the values kept), then
on the users page creates a clerk of that new union with a password of their choosing; the new
clerk signs in and lands on their work queue. The SQLite run's users page is copied to
docs/screenshots/admin-users.png."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, select

from jinqiu.workflow.units.models import Unit
from tests.api.browser_site import DATABASES, SHOTS, Account, browser, sign_in, weihai_site
from tests.factories import ROOT

__all__ = ["browser"]  # the module-scoped Chromium fixture, shared
ADMIN = "admin.wh"
DOCS_SHOT = ROOT / "docs" / "screenshots" / "admin-users.png"
NEW_PASSWORD = "Jinqiu-autumn-2024"
unit_t = Unit.__table__  # type: ignore[attr-defined]


@pytest.fixture(params=DATABASES)
def site(request: pytest.FixtureRequest, browser: Any) -> Iterator[tuple[str, Engine, str]]:
    with weihai_site(
        request,
        now=dt.datetime(2024, 7, 20, 9),
        users=[Account(ADMIN, "WH", "admin", "系统管理员")],
    ) as served:
        yield served.url, served.engine, served.dialect


def test_an_admin_creates_a_unit_and_a_user_who_signs_in(
    browser: Any, site: tuple[str, Engine, str]
) -> None:
    from playwright.sync_api import expect

    url, engine, dialect = site
    page = sign_in(browser, url, ADMIN)

    page.click("nav a[href='/admin/units']")
    form = page.locator("[data-testid=create-unit]")
    form.locator("input[name=code]").fill("WH-HC-100")
    form.locator("input[name=name]").fill("威海市某新建企业工会")
    form.locator("select[name=level]").select_option("grassroots")
    form.locator("input[name=parent]").fill("WH-HC")
    form.locator("input[name=contact_email]").fill("hc100.example.org")
    form.locator("button[type=submit]").click()
    expect(page.locator("[data-field=contact_email]")).to_have_text("邮箱格式不正确")
    expect(form.locator("input[name=name]")).to_have_value("威海市某新建企业工会")
    form.locator("input[name=contact_email]").fill("hc100@example.org")
    form.locator("button[type=submit]").click()
    expect(page.locator("[data-testid=flash]")).to_contain_text("已创建单位 WH-HC-100")
    expect(page.locator("[data-testid=units] tr[data-code='WH-HC-100']")).to_contain_text(
        "hc100@example.org"
    )

    page.click("nav a[href='/admin/users']")
    form = page.locator("[data-testid=create-user]")
    form.locator("input[name=username]").fill("zhao.clerk")
    form.locator("input[name=display_name]").fill("赵经办")
    form.locator("input[name=unit]").fill("WH-HC-100")
    form.locator("input[name=roles][value=clerk]").check()
    form.locator("input[name=password]").fill(NEW_PASSWORD)
    form.locator("input[name=password_again]").fill(NEW_PASSWORD)
    form.locator("button[type=submit]").click()
    expect(page.locator("[data-testid=flash]")).to_contain_text("已创建用户 zhao.clerk")
    row = page.locator("[data-testid=users] tr[data-username='zhao.clerk']")
    expect(row).to_contain_text("WH-HC-100")
    expect(row).to_contain_text("基层经办")
    assert NEW_PASSWORD not in page.content() and NEW_PASSWORD not in page.url
    shot = SHOTS / f"admin-users-{dialect}.png"
    page.screenshot(path=str(shot))
    if dialect == "sqlite":
        DOCS_SHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, DOCS_SHOT)
        assert DOCS_SHOT.stat().st_size < 300_000
    page.context.close()

    newcomer = sign_in(browser, url, "zhao.clerk", password=NEW_PASSWORD)
    assert newcomer.url.endswith("/queue"), newcomer.url  # a clerk's home is the work queue
    expect(newcomer.locator(".who")).to_contain_text("zhao.clerk · WH-HC-100")
    assert newcomer.locator("nav a[href='/admin/users']").count() == 0
    newcomer.context.close()
    with engine.connect() as conn:
        path = conn.execute(select(unit_t.c.path).where(unit_t.c.code == "WH-HC-100")).scalar()
    assert path == "/WH/WH-HC/WH-HC-100/"
