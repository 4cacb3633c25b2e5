"""not_already_aided: "已经接受政府有关部门或其他社会机构救助的学生，不再重复救助" (county
summaries); Dalian 2011: "避免重复救助"."""

from __future__ import annotations

import pytest

from jinqiu.workflow.cases.guards import GUARDS
from jinqiu.workflow.cases.guards.double_aid import not_already_aided
from tests.workflow.cases.guards.builders import codes, context, student


class TestNoDoubleAid:
    def test_a_student_aided_by_no_one_else_passes(self) -> None:
        assert not_already_aided(context(student_facts=student(already_aided_by=None))) == []

    @pytest.mark.parametrize("source", ["国家助学金", "民政部门", "某慈善基金会"])
    def test_a_student_already_aided_elsewhere_is_refused(self, source: str) -> None:
        reasons = not_already_aided(context(student_facts=student(already_aided_by=source)))
        assert codes(reasons) == ["already_aided"]

    def test_the_refusal_names_who_already_aided_the_student(self) -> None:
        reasons = not_already_aided(context(student_facts=student(already_aided_by="国家助学金")))
        assert "国家助学金" in reasons[0].message
        assert "不再重复救助" in reasons[0].message

    def test_the_registry_finds_the_guard_by_its_table_name(self) -> None:
        assert GUARDS["not_already_aided"] is not_already_aided
