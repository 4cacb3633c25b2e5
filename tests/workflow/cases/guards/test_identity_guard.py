"""identity_numbers_valid: worker's and student's identity numbers are checked under
GB 11643-1999, and each bad one is a reason of its own."""

from __future__ import annotations

import datetime as dt

from jinqiu.workflow.cases.guards import GUARDS
from jinqiu.workflow.cases.guards.identity import identity_numbers_valid
from jinqiu.workflow.identity import check_character, make_id_number
from tests.workflow.cases.guards.builders import codes, context, student, worker

GOOD_WORKER = make_id_number("371002", dt.date(1978, 3, 14), 31)
GOOD_STUDENT = make_id_number("371002", dt.date(2006, 9, 1), 12)


def wrong_check(number: str) -> str:
    return number[:17] + ("0" if number[17] != "0" else "1")


class TestIdentityNumbersValid:
    def test_the_registry_finds_the_guard_by_its_table_name(self) -> None:
        assert GUARDS["identity_numbers_valid"] is identity_numbers_valid

    def test_valid_numbers_for_worker_and_student_pass(self) -> None:
        ctx = context(
            worker_facts=worker(id_number=GOOD_WORKER),
            student_facts=student(id_number=GOOD_STUDENT),
        )
        assert identity_numbers_valid(ctx) == []

    def test_a_student_number_ending_in_x_passes(self) -> None:
        ctx = context(student_facts=student(id_number="37100220060901006X"))
        assert identity_numbers_valid(ctx) == []

    def test_a_bad_worker_number_is_refused_and_says_it_is_the_workers(self) -> None:
        reasons = identity_numbers_valid(
            context(worker_facts=worker(id_number=wrong_check(GOOD_WORKER)))
        )
        assert codes(reasons) == ["id_number_checksum"]
        assert reasons[0].message.startswith("职工")

    def test_a_bad_student_number_is_refused_and_says_it_is_the_students(self) -> None:
        reasons = identity_numbers_valid(
            context(student_facts=student(id_number=wrong_check(GOOD_STUDENT)))
        )
        assert codes(reasons) == ["id_number_checksum"]
        assert reasons[0].message.startswith("学生")

    def test_both_bad_numbers_are_reported_worker_first(self) -> None:
        impossible_birth = "37100220230230123"
        ctx = context(
            worker_facts=worker(id_number="37100219780314"),
            student_facts=student(id_number=impossible_birth + check_character(impossible_birth)),
        )
        reasons = identity_numbers_valid(ctx)
        assert codes(reasons) == ["id_number_length", "id_number_birth_date"]
        assert [r.message[:2] for r in reasons] == ["职工", "学生"]
