"""Payment batches through the API (both databases): the round trip — a batch, its bank file read
back with the csv and openpyxl readers, a bank result with two failures, the cards corrected, a
retry batch, everything paid — with the funds reconciled after every step; bad result files
refused whole, naming their rows, with nothing applied; cancel releasing a reservation; card
numbers masked in JSON and errors; the upload bounded."""

from __future__ import annotations

import csv
import hashlib
import io
from typing import Any

import pytest
from openpyxl import Workbook, load_workbook
from sqlalchemy import func, select

from jinqiu.states import CaseState
from jinqiu.states.payment_batch import BatchState
from jinqiu.workflow.audit.models import AuditEntry
from jinqiu.workflow.payments.cards import with_check_digit
from jinqiu.workflow.payments.models import PaymentBatch
from jinqiu.workflow.payments.reconcile import unreconciled
from tests.api.conftest import World
from tests.factories import case_in, case_row

FINANCE = "finance.wh"
audit_t = AuditEntry.__table__  # type: ignore[attr-defined]
batch_t = PaymentBatch.__table__  # type: ignore[attr-defined]


def card(n: int, prefix: str = "622848") -> str:
    """A valid 19-digit 中国农业银行 debit card number."""
    return with_check_digit(f"{prefix}{n:012d}")


def payable(world: World, n: int, *, unit: str = "WH-HC-001", number: str | None = None) -> int:
    return case_in(
        world.engine,
        world.clock,
        world.campaign,
        unit,
        CaseState.DISBURSEMENT,
        worker_changes={"bank_card_number": number or card(n)},
    )


def reconciled(world: World) -> None:
    with world.engine.connect() as conn:
        assert unreconciled(conn, world.campaign) == {}
    shown = world.client.get(f"/api/campaigns/{world.campaign}/funds", headers=world.as_(FINANCE))
    assert shown.status_code == 200, shown.text
    body = shown.json()
    assert body["reconciled"] is True, body
    for s in body["sources"]:
        parts = [float(s[k]) for k in ("free", "reserved", "paid")]
        assert abs(float(s["budget"]) - sum(parts)) < 0.005


def build(world: World, **body: Any) -> Any:
    return world.client.post(
        f"/api/campaigns/{world.campaign}/payment-batches",
        json={"fund_source": "government", **body},
        headers=world.as_(FINANCE),
    )


def download(world: World, batch: int, fmt: str = "csv") -> Any:
    got = world.client.get(
        f"/api/payment-batches/{batch}/file", params={"format": fmt}, headers=world.as_(FINANCE)
    )
    assert got.status_code == 200, got.text
    return got


def result_csv(rows: list[tuple[str, str, str, str, str]], total: str | None = None) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["序号", "卡号", "金额", "状态", "失败原因"])
    writer.writerows(rows)
    if total is not None:
        writer.writerow(["合计", "", total, "", ""])
    return out.getvalue().encode("gb18030")


def upload(world: World, batch: int, content: bytes, name: str = "result.csv") -> Any:
    return world.client.post(
        f"/api/payment-batches/{batch}/result",
        files={"file": (name, content, "text/csv")},
        headers=world.as_(FINANCE),
    )


def bank_rows(world: World, batch: int) -> list[list[str]]:
    text = download(world, batch).content.decode("gb18030")
    return list(csv.reader(io.StringIO(text)))


def answer_all(rows: list[list[str]], failing: dict[str, str]) -> bytes:
    """The bank's result: every data row 成功 unless its 序号 is in `failing` (→ reason)."""
    data = [r for r in rows[1:] if r[0] != "合计"]
    total = rows[-1][4]
    return result_csv(
        [
            (r[0], r[2], r[4], "失败" if r[0] in failing else "成功", failing.get(r[0], ""))
            for r in data
        ],
        total,
    )


def states(world: World, ids: list[int]) -> list[str]:
    return [case_row(world.engine, c).state for c in ids]


def test_the_round_trip_pays_every_case_and_the_funds_reconcile_after_every_step(
    world: World,
) -> None:
    cases = [payable(world, n) for n in range(1, 4)] + [
        payable(world, n, unit="WH-HC-002") for n in range(4, 6)
    ]
    bad = payable(world, 9, number=card(9)[:-1] + str((int(card(9)[-1]) + 1) % 10))
    reconciled(world)

    # Named cases: one with a bad card refuses the whole batch, naming it; nothing is written.
    refused = build(world, case_ids=[cases[0], bad])
    assert refused.status_code == 422, refused.text
    assert [d["code"] for d in refused.json()["details"]] == ["card_checksum"]
    assert str(bad) in refused.json()["details"][0]["message"]
    with world.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(batch_t)).scalar_one() == 0

    # Every payable case: the bad card is left out, with why.
    built = build(world)
    assert built.status_code == 201, built.text
    batch = built.json()
    assert (batch["status"], batch["case_ids"], batch["total"]) == ("draft", cases, "15000.00")
    assert batch["skipped"] == [
        {
            "case_id": bad,
            "reasons": [{"code": "card_checksum", "message": "银行卡号校验位不正确，请核对卡号"}],
        }
    ]
    reconciled(world)

    # The bank file, as the bank opens it: GB18030 CSV and .xlsx, a total row, hashes recorded.
    got = download(world, batch["id"])
    assert got.headers["X-Content-SHA256"] == hashlib.sha256(got.content).hexdigest()
    rows = list(csv.reader(io.StringIO(got.content.decode("gb18030"))))
    assert rows[0] == ["序号", "户名", "卡号", "开户行", "金额", "用途/附言"]
    assert [r[0] for r in rows[1:]] == ["1", "2", "3", "4", "5", "合计"]
    assert {r[1] for r in rows[1:6]} == {"王建国"}
    assert rows[1][2] == card(1) and rows[1][3] == "中国农业银行" and rows[1][4] == "3000.00"
    assert rows[1][5] == "2024年金秋助学金"
    assert rows[6][4] == "15000.00" and "5" in rows[6][5]
    xlsx = download(world, batch["id"], "xlsx")
    sheet = load_workbook(io.BytesIO(xlsx.content), read_only=True).worksheets[0]
    cells = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert cells[0] == rows[0] and cells[1][2] == card(1) and cells[-1][0] == "合计"
    assert download(world, batch["id"], "xlsx").content == xlsx.content  # same bytes again
    detail = world.client.get(f"/api/payment-batches/{batch['id']}", headers=world.as_(FINANCE))
    shown = detail.json()
    assert shown["status"] == "exported"
    assert shown["csv_sha256"] == got.headers["X-Content-SHA256"]
    assert shown["xlsx_sha256"] == hashlib.sha256(xlsx.content).hexdigest()
    assert card(1) not in detail.text and shown["items"][0]["card_number"].endswith(card(1)[-4:])
    log = world.client.get(
        "/api/audit/pii-access", params={"case": cases[0]}, headers=world.as_("auditor.wh")
    ).json()
    assert [e["purpose"] for e in log] == ["GET /api/payment-batches/{id}/file"] * 3  # 3 downloads

    # While the bank has the file, a case is paid by the batch's result only.
    single = world.client.post(
        f"/api/cases/{cases[0]}/events",
        json={"event": "pay", "version": case_row(world.engine, cases[0]).version},
        headers=world.as_(FINANCE),
    )
    assert single.status_code == 422 and single.json()["details"]["reasons"][0]["code"] == (
        "in_payment_batch"
    )

    # The bank pays three and returns two (退票).
    answered = upload(world, batch["id"], answer_all(rows, {"2": "户名不符", "5": "账户已销户"}))
    assert answered.status_code == 200, answered.text
    assert answered.json() == {"paid": 3, "failed": 2}
    assert states(world, cases) == [
        "follow_up",
        "disbursement",
        "follow_up",
        "follow_up",
        "disbursement",
    ]
    reconciled(world)

    # Finance corrects the two cards (the student's own account), audited on the case.
    for n, case_id in ((12, cases[1]), (15, cases[4])):
        fixed = world.client.put(
            f"/api/cases/{case_id}/bank-card",
            json={
                "bank_card_number": card(n, "621700"),
                "bank_card_holder": "王小明",
                "version": case_row(world.engine, case_id).version,
                "reason": "银行退票：户名不符，改为学生本人账户",
            },
            headers=world.as_(FINANCE),
        )
        assert fixed.status_code == 200, fixed.text
        assert fixed.json()["bank_name"] == "中国建设银行"
    history = world.client.get(
        f"/api/cases/{cases[1]}/history", headers=world.as_("approver.wh")
    ).json()
    amendment = history[-1]
    assert amendment["event"] == "amend"
    change = amendment["data"]["changes"]["worker.bank_card_number"]
    assert change["to"].endswith(card(12, "621700")[-4:]) and card(12, "621700") not in str(history)
    reconciled(world)

    # The retry batch takes the two; the failed batch closes.
    again = world.client.post(
        f"/api/payment-batches/{batch['id']}/retry", headers=world.as_(FINANCE)
    )
    assert again.status_code == 201, again.text
    retry = again.json()
    assert retry["case_ids"] == [cases[1], cases[4]] and retry["total"] == "6000.00"
    old = world.client.get(f"/api/payment-batches/{batch['id']}", headers=world.as_(FINANCE))
    assert old.json()["status"] == "closed"
    retry_rows = bank_rows(world, retry["id"])
    assert [r[1] for r in retry_rows[1:3]] == ["王小明", "王小明"]
    assert retry_rows[1][3] == "中国建设银行"
    paid = upload(world, retry["id"], answer_all(retry_rows, {}))
    assert paid.json() == {"paid": 2, "failed": 0}
    assert states(world, cases) == ["follow_up"] * 5
    done = world.client.get(f"/api/payment-batches/{retry['id']}", headers=world.as_(FINANCE))
    assert done.json()["status"] == "closed"
    reconciled(world)
    funds = world.client.get(f"/api/campaigns/{world.campaign}/funds", headers=world.as_(FINANCE))
    government = next(s for s in funds.json()["sources"] if s["source"] == "government")
    assert government["paid"] == "15000.00" and government["reserved"] == "3000.00"  # the bad card


@pytest.fixture
def exported(world: World) -> tuple[int, list[list[str]], list[int]]:
    cases = [payable(world, n) for n in range(1, 4)]
    batch = build(world).json()["id"]
    return batch, bank_rows(world, batch), cases


BAD_FILES = {
    "unknown row": (
        lambda rows: [*rows[:3], ("9", card(99), "3000.00", "成功", "")],
        [(5, "批次中没有序号为“9”的一笔")],
    ),
    "changed amount": (
        lambda rows: [rows[0], (rows[1][0], rows[1][1], "2000.00", "成功", ""), rows[2]],
        [(3, "金额与批次不符（批次 3000.00 元，回盘 2000.00 元）")],
    ),
    "duplicate row": (
        lambda rows: [*rows, rows[1]],
        [(5, "与第 3 行重复（序号 2）")],
    ),
    "missing row": (
        lambda rows: rows[:2],
        [(1, "批次中的 1 笔未出现在回盘中（序号 3）")],
    ),
    "unknown status": (
        lambda rows: [rows[0], rows[1], (rows[2][0], rows[2][1], rows[2][2], "处理中", "")],
        [(4, "状态须为“成功”或“失败”，而不是“处理中”")],
    ),
}


@pytest.mark.parametrize("kind", [*BAD_FILES, "total mismatch"])
def test_a_bad_result_file_is_refused_whole_naming_its_rows_and_nothing_is_applied(
    world: World, exported: tuple[int, list[list[str]], list[int]], kind: str
) -> None:
    batch, rows, cases = exported
    answered = [(r[0], r[2], r[4], "成功", "") for r in rows[1:-1]]
    if kind == "total mismatch":
        content, expected = (
            result_csv(answered, "9999.00"),
            [(5, "合计金额与批次不符（批次 9000.00 元，回盘 9999.00 元）")],
        )
    else:
        change, expected = BAD_FILES[kind]
        content = result_csv(change(answered), rows[-1][4])
    versions = [case_row(world.engine, c).version for c in cases]
    with world.engine.connect() as conn:
        entries = conn.execute(select(func.count()).select_from(audit_t)).scalar_one()
    refused = upload(world, batch, content)
    assert refused.status_code == 422, refused.text
    body = refused.json()
    assert body["code"] == "result_file_invalid"
    assert [(r["row"], r["message"]) for r in body["details"]["rows"]] == expected
    assert [case_row(world.engine, c).version for c in cases] == versions
    assert states(world, cases) == ["disbursement"] * 3
    with world.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(audit_t)).scalar_one() == entries
        assert conn.execute(select(batch_t.c.state)).scalar_one() == BatchState.EXPORTED
    reconciled(world)


def test_a_result_as_xlsx_by_card_number_is_applied_and_the_same_file_again_applies_nothing(
    world: World, exported: tuple[int, list[list[str]], list[int]]
) -> None:
    batch, rows, _cases = exported
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["卡号", "金额", "状态", "失败原因"])
    for r in rows[1:-1]:
        sheet.append([r[2], r[4], "成功", None])
    raw = io.BytesIO()
    workbook.save(raw)
    first = upload(world, batch, raw.getvalue(), "result.xlsx")
    assert first.status_code == 200, first.text
    assert first.json() == {"paid": 3, "failed": 0}
    with world.engine.connect() as conn:
        pays = conn.execute(
            select(func.count()).select_from(audit_t).where(audit_t.c.event == "pay")
        ).scalar_one()
    assert upload(world, batch, raw.getvalue(), "result.xlsx").json() == {"paid": 3, "failed": 0}
    with world.engine.connect() as conn:
        assert (
            conn.execute(
                select(func.count()).select_from(audit_t).where(audit_t.c.event == "pay")
            ).scalar_one()
            == pays
            == 3
        )
    reconciled(world)


def test_cancel_releases_the_reservation_but_not_while_the_bank_has_the_file(
    world: World,
) -> None:
    kept, cancelled = payable(world, 1), payable(world, 2)
    batch = build(world, case_ids=[kept]).json()["id"]
    download(world, batch)

    def cancel(case_id: int) -> Any:
        return world.client.post(
            f"/api/cases/{case_id}/events",
            json={
                "event": "cancel",
                "version": case_row(world.engine, case_id).version,
                "opinion": "学生已退学，无法发放",
            },
            headers=world.as_(FINANCE),
        )

    held = cancel(kept)
    assert held.status_code == 422 and held.json()["details"]["reasons"][0]["code"] == (
        "in_payment_batch"
    )
    done = cancel(cancelled)
    assert done.status_code == 200, done.text
    assert done.json()["state"] == "cancelled"
    funds = world.client.get(f"/api/campaigns/{world.campaign}/funds", headers=world.as_(FINANCE))
    government = next(s for s in funds.json()["sources"] if s["source"] == "government")
    assert government["reserved"] == "3000.00"  # only the kept case's
    reconciled(world)


def test_only_finance_handles_batches_and_errors_never_show_a_card_number(
    world: World,
) -> None:
    case_id = payable(world, 1)
    assert build(world).status_code == 201
    as_clerk = world.client.post(
        f"/api/campaigns/{world.campaign}/payment-batches",
        json={"fund_source": "government"},
        headers=world.as_("clerk.wh"),
    )
    assert as_clerk.status_code == 403
    wrong = with_check_digit("999999" + "0" * 12)
    refused = world.client.put(
        f"/api/cases/{case_id}/bank-card",
        json={"bank_card_number": wrong, "version": 99, "reason": "更正"},
        headers=world.as_(FINANCE),
    )
    assert refused.status_code in (409, 422) and wrong not in refused.text


def test_an_oversized_result_file_is_refused_before_it_is_read(
    world: World, exported: tuple[int, list[list[str]], list[int]]
) -> None:
    batch, _rows, cases = exported
    refused = upload(world, batch, b"x" * (5 * 1024 * 1024 + 1))
    assert refused.status_code == 413 and refused.json()["code"] == "too_large"
    assert states(world, cases) == ["disbursement"] * 3
