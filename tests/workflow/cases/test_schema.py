"""Case input (the 摸底表's worker and student fields): strict — unknown fields are refused by
name, identity numbers are checked, and amounts are never floats."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from jinqiu.workflow.cases.schema import CaseCreate
from jinqiu.workflow.errors import ValidationFailed
from jinqiu.workflow.identity import make_id_number
from jinqiu.workflow.validation import parse

WORKER_ID = make_id_number("371002", dt.date(1978, 3, 14), 31)
STUDENT_ID = make_id_number("371002", dt.date(2006, 9, 1), 12)
STUDENT_ID_WITH_X = "37100220060901006X"


def case_input(
    worker: dict[str, Any] | None = None,
    student: dict[str, Any] | None = None,
    **top: Any,
) -> dict[str, Any]:
    """A Weihai family: a deep-hardship worker and a daughter going to a first-tier university."""
    return {
        "campaign": 1,
        "unit": "WH-HC-001",
        "worker": {
            "name": "王建国",
            "id_number": WORKER_ID,
            "household_size": 4,
            "monthly_income_per_capita": "850",
            "archive_status": "deep",
            "archived_on": "2024-03-01",
            **(worker or {}),
        },
        "student": {
            "name": "王小红",
            "id_number": STUDENT_ID,
            "relation": "女",
            "education_level": "undergraduate",
            "tier": "first",
            **(student or {}),
        },
        **top,
    }


def problems(data: dict[str, Any]) -> list[dict[str, str]]:
    with pytest.raises(ValidationFailed) as caught:
        parse(CaseCreate, data)
    return list(caught.value.details)


def fields(data: dict[str, Any]) -> list[str]:
    return [p["field"] for p in problems(data)]


def wrong_check(number: str) -> str:
    return number[:17] + ("0" if number[17] != "0" else "1")


class TestAWellFormedCase:
    def test_the_family_validates(self) -> None:
        spec = parse(CaseCreate, case_input())
        assert spec.worker.archive_status == "deep"
        assert spec.worker.archived_on == dt.date(2024, 3, 1)
        assert spec.worker.monthly_income_per_capita == Decimal("850")
        assert spec.student.education_level == "undergraduate"

    def test_an_identity_number_is_stored_trimmed_and_upper_case(self) -> None:
        spec = parse(
            CaseCreate, case_input(student={"id_number": f" {STUDENT_ID_WITH_X.lower()} "})
        )
        assert spec.student.id_number == STUDENT_ID_WITH_X

    def test_a_worker_outside_the_archive_is_none_by_default(self) -> None:
        data = case_input()
        del data["worker"]["archive_status"], data["worker"]["archived_on"]
        spec = parse(CaseCreate, data)
        assert (spec.worker.archive_status, spec.worker.archived_on) == ("none", None)


class TestUnknownFieldsAreRefused:
    def test_an_unknown_top_level_field_is_named(self) -> None:
        found = problems(case_input(priority="high"))
        assert [(p["field"], p["code"]) for p in found] == [("priority", "extra_forbidden")]

    def test_an_unknown_student_field_is_named(self) -> None:
        found = problems(case_input(student={"nickname": "小红"}))
        assert [(p["field"], p["code"]) for p in found] == [("student.nickname", "extra_forbidden")]

    def test_an_unknown_worker_field_is_named(self) -> None:
        assert fields(case_input(worker={"salary": "3000"})) == ["worker.salary"]

    def test_every_unknown_field_is_named_at_once(self) -> None:
        data = case_input(worker={"salary": "3000"}, student={"nickname": "小红"}, priority="high")
        assert set(fields(data)) == {"worker.salary", "student.nickname", "priority"}


class TestIdentityNumbers:
    def test_a_bad_student_checksum_names_the_student_id_number(self) -> None:
        found = problems(case_input(student={"id_number": wrong_check(STUDENT_ID)}))
        assert [p["field"] for p in found] == ["student.id_number"]
        assert "校验位" in found[0]["message"]

    def test_a_bad_worker_number_names_the_worker_id_number(self) -> None:
        found = problems(case_input(worker={"id_number": WORKER_ID[:15]}))
        assert [p["field"] for p in found] == ["worker.id_number"]
        assert "18" in found[0]["message"]

    def test_a_missing_student_number_is_named(self) -> None:
        data = case_input()
        del data["student"]["id_number"]
        assert [(p["field"], p["code"]) for p in problems(data)] == [
            ("student.id_number", "missing")
        ]


class TestAmountsAreNeverFloats:
    def test_a_tuition_invoice_as_a_float_is_refused(self) -> None:
        found = problems(
            case_input(student={"education_level": "senior", "tuition_invoice": 1500.0})
        )
        assert [p["field"] for p in found] == ["student.tuition_invoice"]
        assert "浮点数" in found[0]["message"]

    def test_an_income_as_a_float_is_refused(self) -> None:
        found = fields(case_input(worker={"monthly_income_per_capita": 850.5}))
        assert found == ["worker.monthly_income_per_capita"]

    @pytest.mark.parametrize("invoice", ["1500", 1500, "1500.50"])
    def test_a_tuition_invoice_as_a_string_or_integer_is_exact(self, invoice: object) -> None:
        spec = parse(
            CaseCreate,
            case_input(student={"education_level": "senior", "tuition_invoice": invoice}),
        )
        assert spec.student.tuition_invoice == Decimal(str(invoice))

    def test_a_tuition_invoice_with_less_than_a_fen_is_refused(self) -> None:
        assert fields(case_input(student={"tuition_invoice": "1500.001"})) == [
            "student.tuition_invoice"
        ]

    def test_a_negative_tuition_invoice_is_refused(self) -> None:
        assert fields(case_input(student={"tuition_invoice": "-1"})) == ["student.tuition_invoice"]


class TestClosedLists:
    def test_an_unknown_archive_status_is_named(self) -> None:
        found = problems(case_input(worker={"archive_status": "poor"}))
        assert [(p["field"], p["code"]) for p in found] == [
            ("worker.archive_status", "literal_error")
        ]

    def test_an_unknown_category_is_named_with_its_position(self) -> None:
        # A code's shape here; whether the campaign has it, when the case is created
        # (tests/workflow/campaigns/test_notice_campaigns.py).
        data = case_input(worker={"categories": ["migrant_worker", "Retiree!"]})
        assert fields(data) == ["worker.categories.1"]

    def test_an_unknown_education_level_is_named(self) -> None:
        assert fields(case_input(student={"education_level": "kindergarten"})) == [
            "student.education_level"
        ]

    def test_a_bank_card_number_must_be_12_to_19_digits(self) -> None:
        assert fields(case_input(worker={"bank_card_number": "6222-0212"})) == [
            "worker.bank_card_number"
        ]
        spec = parse(CaseCreate, case_input(worker={"bank_card_number": "6222021234567890123"}))
        assert spec.worker.bank_card_number == "6222021234567890123"
