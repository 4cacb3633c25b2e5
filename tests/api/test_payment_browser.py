"""The payment pages in headless Chromium (both databases): finance builds a batch, downloads its
bank file, uploads the bank's result with one 退票 through the page's file input, sees the
failure, corrects the card and retries; no full card number is ever on screen."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from jinqiu.states import CaseState
from jinqiu.workflow.payments.cards import with_check_digit
from jinqiu.workflow.payments.reconcile import unreconciled
from tests.api.browser_site import DATABASES, SHOTS, Account, browser, sign_in, weihai_site
from tests.factories import case_in

__all__ = ["browser"]  # the module-scoped Chromium fixture, shared


def card(n: int) -> str:
    return with_check_digit(f"622848{n:012d}")


@pytest.fixture(params=DATABASES)
def site(request: pytest.FixtureRequest, browser: Any) -> Iterator[tuple[str, Engine, int, str]]:
    with weihai_site(
        request,
        now=dt.datetime(2024, 8, 20, 9),
        users=[Account("finance.wh", "WH", "finance", "财务")],
    ) as served:
        for n in range(1, 4):
            case_in(
                served.engine,
                served.clock,
                served.campaign,
                "WH-HC-001",
                CaseState.DISBURSEMENT,
                worker_changes={"bank_card_number": card(n)},
            )
        yield served.url, served.engine, served.campaign, served.dialect


def test_finance_pays_a_batch_in_the_browser(
    browser: Any, site: tuple[str, Engine, int, str], tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    url, engine, campaign, dialect = site
    page = sign_in(browser, url, "finance.wh", "/payments")
    expect(page.locator("[data-testid=funds]")).to_contain_text("government")

    page.click("[data-testid=build] button[type=submit]")
    page.wait_for_url(re.compile(r"/payments/batches/\d+"))
    expect(page.locator("[data-testid=flash]")).to_contain_text("已建立发放批次")
    expect(page.locator("[data-testid=rows] tbody tr")).to_have_count(3)

    with page.expect_download() as got:
        page.click("[data-testid=download-csv]")
    saved = tmp_path / "batch.csv"
    got.value.save_as(saved)
    rows = list(csv.reader(io.StringIO(saved.read_bytes().decode("gb18030"))))
    assert [r[2] for r in rows[1:4]] == [card(1), card(2), card(3)]

    result = tmp_path / "result.csv"
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["序号", "金额", "状态", "失败原因"])
    for r in rows[1:4]:
        writer.writerow([r[0], r[4], "失败" if r[0] == "3" else "成功", "卡号不存在"])
    result.write_bytes(out.getvalue().encode("gb18030"))
    page.goto(page.url.split("?")[0])  # the batch page, freshly (the file's hash now shown)
    page.set_input_files("[data-testid=upload] input[type=file]", str(result))
    page.click("[data-testid=upload] button[type=submit]")
    page.wait_for_url(re.compile(r"flash="))
    expect(page.locator("[data-testid=flash]")).to_contain_text("成功 2 笔，失败 1 笔")
    failures = page.locator("[data-testid=failures]")
    expect(failures).to_contain_text("卡号不存在")
    page.screenshot(path=str(SHOTS / f"payment-batch-{dialect}.png"), full_page=True)

    failures.locator("input[name=bank_card_number]").fill(card(33))
    failures.locator("input[name=reason]").fill("银行退票：卡号有误，已核对更正")
    failures.locator("button[type=submit]").first.click()
    page.wait_for_url(re.compile(r"flash="))
    expect(page.locator("[data-testid=flash]")).to_contain_text("的银行卡")
    page.click("[data-testid=retry]")
    page.wait_for_url(re.compile(r"/payments/batches/\d+\?flash="))
    expect(page.locator("[data-testid=flash]")).to_contain_text("已建立重发批次")
    expect(page.locator("[data-testid=rows] tbody tr")).to_have_count(1)
    html = page.content()
    for n in (1, 2, 3, 33):
        assert card(n) not in html
    page.context.close()
    with engine.connect() as conn:
        assert unreconciled(conn, campaign) == {}
