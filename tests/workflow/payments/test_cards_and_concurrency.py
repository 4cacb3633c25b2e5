"""Bank cards checked as the notices ask (digits, 16–19, Luhn, a known issuer, the holder one of
the family), and on PostgreSQL two imports of the same result file at once apply it once."""

from __future__ import annotations

import csv
import io
import threading
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from jinqiu.states import CaseState
from jinqiu.workflow.audit.models import AuditEntry
from jinqiu.workflow.clock import ManualClock
from jinqiu.workflow.db import transaction
from jinqiu.workflow.payments import service
from jinqiu.workflow.payments.cards import Names, card_reasons, luhn_valid, with_check_digit
from jinqiu.workflow.payments.reconcile import unreconciled
from tests.factories import actor_of, case_in, case_row, weihai

audit_t = AuditEntry.__table__  # type: ignore[attr-defined]
FAMILY = Names(worker="王建国", student="王小明", guardian="李秀英")


def codes(number: str | None, holder: str | None = None) -> list[str]:
    return [r.code for r in card_reasons(number, holder, FAMILY)]


class TestCards:
    def test_a_valid_card_of_a_known_bank_in_the_familys_name_passes(self) -> None:
        number = with_check_digit("622202" + "1" * 12)
        assert luhn_valid(number) and len(number) == 19
        for holder in (None, "王建国", "王小明", "李秀英"):
            assert codes(number, holder) == []

    @pytest.mark.parametrize(
        ("number", "expected"),
        [
            (None, ["card_missing"]),
            ("6222 0212", ["card_not_digits"]),
            ("622202123456789", ["card_length"]),  # 15 digits
            ("62220212345678901234", ["card_length"]),  # 20
            ("6222021234567890", ["card_checksum"]),
            (with_check_digit("999999" + "0" * 9), ["card_issuer_unknown"]),
        ],
    )
    def test_each_problem_is_named(self, number: str | None, expected: list[str]) -> None:
        assert codes(number) == expected

    def test_an_account_in_anothers_name_is_refused(self) -> None:
        assert codes(with_check_digit("621700" + "2" * 12), "张三") == ["card_holder_mismatch"]


@pytest.mark.postgres
def test_two_imports_of_one_result_file_at_once_apply_it_once(
    pg: Engine, clock: ManualClock
) -> None:
    _tree, campaign = weihai(pg, clock)
    cases = [
        case_in(
            pg,
            clock,
            campaign,
            "WH-HC-001",
            CaseState.DISBURSEMENT,
            worker_changes={"bank_card_number": with_check_digit(f"622848{n:012d}")},
        )
        for n in range(1, 21)
    ]
    finance = actor_of(pg, "WH", "finance")
    with transaction(pg) as conn:
        batch = service.build_batch(
            conn,
            campaign_id=campaign,
            fund_source="government",
            unit_code=None,
            case_ids=None,
            actor=finance,
            clock=clock,
        ).id
        exported = service.export_file(
            conn, batch, "csv", actor=finance, clock=clock, purpose="test"
        )
    rows = list(csv.reader(io.StringIO(exported.content.decode("gb18030"))))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["序号", "金额", "状态", "失败原因"])
    writer.writerows(
        [r[0], r[4], "失败" if r[0] == "7" else "成功", "户名不符"] for r in rows[1:-1]
    )
    content = out.getvalue().encode("utf-8")

    answers: list[Any] = []
    start = threading.Barrier(2)

    def import_once() -> None:
        start.wait()
        with transaction(pg) as conn:
            answers.append(
                service.import_result(conn, batch, content, "r.csv", actor=finance, clock=clock)
            )

    threads = [threading.Thread(target=import_once) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert answers == [service.Applied(19, 1)] * 2
    with pg.connect() as conn:
        pays = conn.execute(
            select(audit_t.c.case_id, func.count())
            .where(audit_t.c.event == "pay")
            .group_by(audit_t.c.case_id)
        ).all()
        assert len(pays) == 19 and {n for _, n in pays} == {1}
        assert unreconciled(conn, campaign) == {}
    assert case_row(pg, cases[6]).state == CaseState.DISBURSEMENT
