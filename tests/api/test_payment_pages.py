"""The payment pages, as finance uses them (both databases): build a batch, download its file,
upload the bank's result, see the failures, correct a card, retry — card numbers masked on every
page and in every refusal shown."""

from __future__ import annotations

import csv
import io
import re

from jinqiu.workflow.payments.cards import with_check_digit
from tests.api.conftest import World
from tests.api.test_payment_batches import card, payable, reconciled
from tests.factories import case_row
from tests.security.test_bounds import sign_in_page


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found is not None
    return found.group(1)


def test_finance_pays_a_batch_through_the_pages(world: World) -> None:
    cases = [payable(world, n) for n in range(1, 4)]
    token = sign_in_page(world, "finance.wh")
    listing = world.client.get(f"/payments?campaign={world.campaign}")
    assert listing.status_code == 200 and "资金对账" in listing.text
    built = world.client.post(
        "/payments/batches",
        data={"csrf_token": token, "campaign": str(world.campaign), "fund_source": "government"},
        follow_redirects=True,
    )
    assert built.status_code == 200, built.text[:500]
    assert "已建立发放批次" in built.text and "草稿" in built.text
    assert card(1) not in built.text and card(1)[-4:] in built.text
    batch = int(re.search(r"发放批次 (\d+)", built.text).group(1))  # type: ignore[union-attr]

    file = world.client.get(f"/payments/batches/{batch}/file?format=csv")
    assert file.status_code == 200
    rows = list(csv.reader(io.StringIO(file.content.decode("gb18030"))))
    assert [r[2] for r in rows[1:4]] == [card(1), card(2), card(3)]

    # A wrong result first: refused whole, the rows named, no number shown in full.
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["序号", "卡号", "金额", "状态", "失败原因"])
    writer.writerow(["1", card(7), "3000.00", "成功", ""])
    wrong = world.client.post(
        f"/payments/batches/{batch}/result",
        data={"csrf_token": token},
        files={"file": ("r.csv", out.getvalue().encode("gb18030"), "text/csv")},
        follow_redirects=True,
    )
    assert "未能办理" in wrong.text and "第 2 行" in wrong.text and card(7) not in wrong.text

    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["序号", "卡号", "金额", "状态", "失败原因"])
    for r in rows[1:4]:
        writer.writerow([r[0], r[2], r[4], "失败" if r[0] == "2" else "成功", "账户已冻结"])
    applied = world.client.post(
        f"/payments/batches/{batch}/result",
        data={"csrf_token": token},
        files={"file": ("r.csv", out.getvalue().encode("gb18030"), "text/csv")},
        follow_redirects=True,
    )
    assert "成功 2 笔，失败 1 笔" in applied.text
    assert "发放失败（退票）" in applied.text and "账户已冻结" in applied.text
    reconciled(world)

    new_card = with_check_digit("622588" + "3" * 12)
    fixed = world.client.post(
        f"/payments/cases/{cases[1]}/bank-card",
        data={
            "csrf_token": csrf_of(applied.text),
            "version": str(case_row(world.engine, cases[1]).version),
            "bank_card_number": new_card,
            "bank_card_holder": "王小明",
            "reason": "银行退票，换用学生本人招商银行卡",
            "batch": str(batch),
        },
        follow_redirects=True,
    )
    assert f"已更正案件 {cases[1]} 的银行卡" in fixed.text and new_card not in fixed.text

    again = world.client.post(
        f"/payments/batches/{batch}/retry", data={"csrf_token": token}, follow_redirects=True
    )
    assert "已建立重发批次" in again.text and "招商银行" in again.text
    assert new_card not in again.text
    reconciled(world)


def test_the_pages_are_for_finance_only(world: World) -> None:
    sign_in_page(world, "clerk.wh")
    assert world.client.get("/payments").status_code == 403
