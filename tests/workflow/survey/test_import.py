"""Importing the 摸底表: every row checked as the API checks it, a dry run that writes nothing,
all-or-nothing unless skip_invalid, re-imports that create nothing twice, hostile files refused
with the database exactly as before."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import Engine, func, select

from jinqiu.workflow.audit.models import AuditEntry
from jinqiu.workflow.cases.counters import counter_differences
from jinqiu.workflow.cases.models import Case, Worker
from jinqiu.workflow.clock import ManualClock
from jinqiu.workflow.db import transaction
from jinqiu.workflow.errors import FileUnreadable, PermissionDenied, TooLarge, ValidationFailed
from jinqiu.workflow.survey.models import SurveyEntry, SurveyImport
from jinqiu.workflow.survey.service import ImportReport, import_survey
from jinqiu.workflow.survey.sheet import MAX_FILE_BYTES
from jinqiu.workflow.survey.workbook import annotated_workbook, template_workbook
from tests.factories import actor, new_case, weihai
from tests.workflow.survey.files import (
    HEADERS,
    csv_bytes,
    macro_workbook,
    survey_row,
    xlsx,
    zip_bomb,
)

UNIT = "WH-HC-001"
case_t = Case.__table__  # type: ignore[attr-defined]
worker_t = Worker.__table__  # type: ignore[attr-defined]
entry_t = SurveyEntry.__table__  # type: ignore[attr-defined]
import_t = SurveyImport.__table__  # type: ignore[attr-defined]
audit_t = AuditEntry.__table__  # type: ignore[attr-defined]


@pytest.fixture
def campaign(db: Engine, clock: ManualClock) -> int:
    return weihai(db, clock)[1]


def run(
    db: Engine,
    clock: ManualClock,
    campaign: int,
    content: bytes,
    *,
    dry_run: bool = False,
    skip_invalid: bool = False,
    role: str = "clerk",
    unit: str = UNIT,
) -> ImportReport:
    with transaction(db) as conn:
        return import_survey(
            conn,
            campaign_id=campaign,
            unit_code=unit,
            content=content,
            filename="摸底表.xlsx",
            dry_run=dry_run,
            skip_invalid=skip_invalid,
            actor=actor(conn, UNIT, role),
            clock=clock,
        )


def counts(db: Engine) -> tuple[int, int, int, int, int]:
    with db.connect() as conn:
        return tuple(  # type: ignore[return-value]
            conn.execute(select(func.count()).select_from(t)).scalar_one()
            for t in (case_t, worker_t, entry_t, import_t, audit_t)
        )


def codes(report: ImportReport) -> list[tuple[int, str, str]]:
    return [(p.row, p.column, p.code) for p in report.errors]


class TestFormats:
    def test_a_workbook_with_a_merged_title_is_read_from_its_header_row(
        self, db: Engine, clock: ManualClock, campaign: int
    ) -> None:
        report = run(db, clock, campaign, xlsx([survey_row(), survey_row()]), dry_run=True)
        assert (report.rows, report.valid, report.errors, report.header_row) == (2, 2, [], 3)
        assert report.format == "xlsx"

    @pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030"])
    def test_csv_in_each_encoding_excel_and_wps_save(
        self, db: Engine, clock: ManualClock, campaign: int, encoding: str
    ) -> None:
        rows = [survey_row(学生姓名="张晓燕"), survey_row(备注="单亲家庭，母亲务工")]
        report = run(db, clock, campaign, csv_bytes(rows, encoding))
        assert (report.created, report.errors) == (2, [])
        with db.connect() as conn:
            names = set(conn.execute(select(entry_t.c.student_name)).scalars())
            remark = conn.execute(select(entry_t.c.remark).where(entry_t.c.remark.is_not(None)))
            assert names == {"张晓燕", rows[1]["学生姓名"]}
            assert remark.scalar_one() == "单亲家庭，母亲务工"

    def test_headers_with_spaces_and_full_width_characters_match(
        self, db: Engine, clock: ManualClock, campaign: int
    ) -> None:
        spaced = tuple(
            {
                "学生姓名": "学 生 姓 名",
                "身份证号码": "身份证号码＊",
                "中考/高考分数": "中考／高考分数",
            }.get(h, f" {h}\u3000")
            for h in HEADERS
        )
        row = survey_row()
        content = xlsx([dict(zip(spaced, (row[h] for h in HEADERS), strict=True))], spaced)
        report = run(db, clock, campaign, content)
        assert (report.created, report.errors) == (1, [])

    def test_dates_as_excel_serials_or_chinese_text(
        self, db: Engine, clock: ManualClock, campaign: int
    ) -> None:
        rows = [survey_row(建档日期=45352), survey_row(建档日期="2024年3月1日", 入学年份=2024.0)]
        report = run(db, clock, campaign, xlsx(rows))
        assert report.errors == []
        with db.connect() as conn:
            dates = set(conn.execute(select(entry_t.c.archived_on)).scalars())
        assert dates == {dt.date(2024, 3, 1)}

    def test_an_identity_number_excel_stored_as_a_number_is_refused(
        self, db: Engine, clock: ManualClock, campaign: int
    ) -> None:
        # A number ending in a digit (one ending in X is text even to Excel).
        row = next(r for r in (survey_row() for _ in range(200)) if r["身份证号码"][-1].isdigit())
        as_float = float(row["身份证号码"])  # what Excel keeps: 15 significant digits
        rows = [survey_row(身份证号码=as_float), survey_row()]
        report = run(db, clock, campaign, xlsx(rows))
        assert codes(report) == [(4, "身份证号码", "id_number_as_number")]
        assert "文本" in report.errors[0].message
        assert counts(db)[0] == 0

    def test_scientific_notation_in_a_csv_is_refused(
        self, db: Engine, clock: ManualClock, campaign: int
    ) -> None:
        report = run(
            db, clock, campaign, csv_bytes([survey_row(职工身份证号码="3.71002E+17")], "gb18030")
        )
        assert codes(report) == [(2, "职工身份证号码", "id_number_as_number")]


class TestRows:
    def test_each_bad_row_names_its_row_column_and_reason(
        self, db: Engine, clock: ManualClock, campaign: int
    ) -> None:
        good = survey_row()
        wrong_check = good["身份证号码"][:-1] + ("0" if good["身份证号码"][-1] != "0" else "1")
        rows = [
            survey_row(身份证号码=wrong_check),
            survey_row(当前学历="大学"),
            survey_row(学生姓名=None),
            survey_row(职工类别="农民工、外星人"),
            survey_row(建档日期="2025-01-01"),
            good,
        ]
        report = run(db, clock, campaign, xlsx(rows), dry_run=True)
        assert codes(report) == [
            (4, "身份证号码", "id_number_checksum"),
            (5, "当前学历", "not_allowed"),
            (6, "学生姓名", "missing"),
            (7, "职工类别", "not_allowed"),
            (8, "建档日期", "date_in_future"),
        ]
        assert all(p.message for p in report.errors)
        assert (report.rows, report.valid) == (6, 1)

    def test_a_category_the_campaign_does_not_admit_is_refused(
        self, db: Engine, clock: ManualClock
    ) -> None:
        only_migrants = [
            {
                "code": "migrant_worker",
                "label": "困难农民工家庭",
                "source": "摸清困难职工家庭（包括农民工家庭，新就业形态劳动者家庭等）子女上学困难现状",
            }
        ]
        campaign = weihai(db, clock, categories=only_migrants)[1]
        rows = [survey_row(职工类别="农民工"), survey_row(职工类别="困难劳模")]
        report = run(db, clock, campaign, xlsx(rows), dry_run=True)
        assert codes(report) == [(5, "职工类别", "category_not_in_campaign")]

    def test_the_same_student_twice_in_the_file(
        self, db: Engine, clock: ManualClock, campaign: int
    ) -> None:
        first = survey_row()
        again = survey_row(身份证号码=first["身份证号码"])
        report = run(db, clock, campaign, xlsx([first, again]), dry_run=True)
        assert codes(report) == [(5, "身份证号码", "duplicate_in_file")]
        assert "第 4 行" in report.errors[0].message

    def test_a_student_with_an_open_case_already(
        self, db: Engine, clock: ManualClock, campaign: int
    ) -> None:
        row = survey_row()
        new_case(db, clock, campaign, UNIT, student_changes={"id_number": row["身份证号码"]})
        report = run(db, clock, campaign, xlsx([row]))
        assert codes(report) == [(4, "身份证号码", "duplicate_student")]
        assert counts(db)[0] == 1

    def test_a_formula_cell_is_refused(self, db: Engine, clock: ManualClock, campaign: int) -> None:
        report = run(db, clock, campaign, xlsx([survey_row(年制="=2+2")]), dry_run=True)
        assert codes(report) == [(4, "年制", "formula")]


class TestWriting:
    def test_a_dry_run_writes_nothing(self, db: Engine, clock: ManualClock, campaign: int) -> None:
        before = counts(db)
        report = run(db, clock, campaign, xlsx([survey_row(), survey_row()]), dry_run=True)
        assert (report.valid, report.created, report.written) == (2, 0, False)
        assert counts(db) == before

    def test_an_import_creates_real_cases_and_the_register(
        self, db: Engine, clock: ManualClock, campaign: int
    ) -> None:
        rows = [
            survey_row(建档类型="相对困难", 建档日期="2024-02-01"),
            survey_row(**{"中考/高考分数": None, "录取学校": None, "入学年份": 2022}),
            survey_row(是否申请="否", 备注="今年不申请"),
        ]
        report = run(db, clock, campaign, xlsx(rows))
        assert (report.created, report.registered, report.written) == (2, 3, True)
        with db.connect() as conn:
            entries = conn.execute(select(entry_t).order_by(entry_t.c.row_number)).all()
            assert [(e.section, e.applying, e.case_id is not None) for e in entries] == [
                ("exam_this_year", True, True),
                ("in_school", True, True),
                ("exam_this_year", False, False),
            ]
            assert entries[2].remark == "今年不申请"
            archive = conn.execute(
                select(worker_t.c.archive_status, worker_t.c.archived_on)
                .join(case_t, case_t.c.worker_id == worker_t.c.id)
                .where(case_t.c.id == entries[0].case_id)
            ).one()
            assert tuple(archive) == ("relative", dt.date(2024, 2, 1))
            states = set(conn.execute(select(case_t.c.state)).scalars())
            chains = conn.execute(select(audit_t.c.event, audit_t.c.actor)).all()
            assert counter_differences(conn, campaign) == []
            recorded = conn.execute(select(import_t)).one()
        assert states == {"survey"}
        assert sorted(tuple(c) for c in chains) == [("create", f"clerk@{UNIT}")] * 2
        assert (recorded.rows, recorded.created, recorded.registered) == (3, 2, 3)
        assert recorded.file_sha256 == report.file_sha256

    def test_with_a_bad_row_nothing_is_written(
        self, db: Engine, clock: ManualClock, campaign: int
    ) -> None:
        before = counts(db)
        rows = [survey_row(), survey_row(当前学历="大学"), survey_row()]
        report = run(db, clock, campaign, xlsx(rows))
        assert (report.created, report.written, len(report.errors)) == (0, False, 1)
        assert counts(db) == before

    def test_skip_invalid_imports_the_good_rows_and_reports_the_rest(
        self, db: Engine, clock: ManualClock, campaign: int
    ) -> None:
        rows = [survey_row(), survey_row(当前学历="大学"), survey_row()]
        report = run(db, clock, campaign, xlsx(rows), skip_invalid=True)
        assert (report.created, report.registered) == (2, 2)
        assert codes(report) == [(5, "当前学历", "not_allowed")]
        with db.connect() as conn:
            assert conn.execute(select(import_t.c.invalid)).scalar_one() == 1

    def test_importing_the_same_file_again_creates_nothing(
        self, db: Engine, clock: ManualClock, campaign: int
    ) -> None:
        rows = [survey_row(), survey_row(是否申请="否")]
        content = xlsx(rows)
        run(db, clock, campaign, content)
        after_first = counts(db)
        again = run(db, clock, campaign, content)
        assert (again.created, again.registered, again.already_imported) == (0, 0, 2)
        assert (again.errors, again.file_already_imported) == ([], True)
        assert counts(db)[:3] == after_first[:3]
        assert counts(db)[4] == after_first[4]

    def test_a_changed_row_for_a_registered_student_is_an_error(
        self, db: Engine, clock: ManualClock, campaign: int
    ) -> None:
        row = survey_row()
        run(db, clock, campaign, xlsx([row]))
        report = run(db, clock, campaign, xlsx([{**row, "学校": "威海职业学院"}, survey_row()]))
        assert codes(report) == [(4, "身份证号码", "already_in_register")]
        assert report.created == 0

    def test_a_role_that_may_not_create_cases_may_not_import(
        self, db: Engine, clock: ManualClock, campaign: int
    ) -> None:
        with pytest.raises(PermissionDenied):
            run(db, clock, campaign, xlsx([survey_row()]), role="reviewer")

    def test_a_unit_outside_the_clerks_subtree_is_unknown(
        self, db: Engine, clock: ManualClock, campaign: int
    ) -> None:
        with pytest.raises(ValidationFailed) as refused:
            run(db, clock, campaign, xlsx([survey_row()]), unit="WH-HC-002")
        assert refused.value.details[0]["code"] == "unknown_unit"


def _truncated() -> bytes:
    content = xlsx([survey_row() for _ in range(30)])
    return content[: len(content) * 2 // 3]


class TestHostileFiles:
    @pytest.mark.parametrize(
        ("content", "reason"),
        [
            (_truncated(), "damaged"),
            (b"PK\x03\x04" + b"\x00" * 100, "damaged"),
            (zip_bomb(), "zip_bomb"),
            (macro_workbook([survey_row()]), "macro"),
            (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600, "old_format"),
            ("学生姓名\t身份证号码".encode("utf-16"), "not_spreadsheet"),
            (xlsx([survey_row()], ("姓名", "号码", "学校")), "no_header"),
            (xlsx([survey_row()], tuple(h for h in HEADERS if h != "当前学历")), "missing_columns"),
        ],
        ids=[
            "truncated",
            "zip-header-only",
            "zip-bomb",
            "macro",
            "xls",
            "utf-16",
            "wrong-headers",
            "missing-column",
        ],
    )
    def test_refused_with_a_reason_and_nothing_written(
        self, db: Engine, clock: ManualClock, campaign: int, content: bytes, reason: str
    ) -> None:
        before = counts(db)
        with pytest.raises(FileUnreadable) as refused:
            run(db, clock, campaign, content)
        assert refused.value.details["reason"] == reason
        assert refused.value.message
        assert counts(db) == before

    def test_a_file_over_the_limit_is_too_large(
        self, db: Engine, clock: ManualClock, campaign: int
    ) -> None:
        with pytest.raises(TooLarge):
            run(db, clock, campaign, b"x" * (MAX_FILE_BYTES + 1))


class TestWorkbooks:
    def test_the_error_file_carries_each_bad_rows_reasons(
        self, db: Engine, clock: ManualClock, campaign: int
    ) -> None:
        content = xlsx([survey_row(), survey_row(当前学历="大学", 年制="四")])
        report = run(db, clock, campaign, content, dry_run=True)
        marked = load_workbook(
            io.BytesIO(annotated_workbook(content, "xlsx", report.header_row, report.errors))
        ).active
        assert marked is not None
        last = marked.max_column
        assert marked.cell(3, last).value == "错误说明"
        assert marked.cell(4, last).value is None
        message = str(marked.cell(5, last).value)
        assert "当前学历：取值须为" in message and "年制：须为整数" in message

    def test_a_csv_comes_back_as_a_workbook_with_the_numbers_whole(
        self, db: Engine, clock: ManualClock, campaign: int
    ) -> None:
        rows = [survey_row(当前学历="大学")]
        content = csv_bytes(rows, "gb18030")
        report = run(db, clock, campaign, content, dry_run=True)
        marked = load_workbook(
            io.BytesIO(annotated_workbook(content, report.format, 1, report.errors))
        ).active
        assert marked is not None
        assert marked.cell(2, HEADERS.index("身份证号码") + 1).value == rows[0]["身份证号码"]
        assert marked.cell(1, len(HEADERS) + 1).value == "错误说明"
        assert "当前学历" in str(marked.cell(2, len(HEADERS) + 1).value)

    def test_the_template_filled_in_imports(
        self, db: Engine, clock: ManualClock, campaign: int
    ) -> None:
        book = load_workbook(io.BytesIO(template_workbook("威海 2024", ["migrant_worker"])))
        sheet = book["摸底表"]
        headers = [c.value for c in sheet[3]]
        assert sheet.cell(1, 1).value.startswith("困难职工子女金秋助学情况摸底表")  # type: ignore[union-attr]
        assert "下面由在校生填写" in [c.value for c in sheet[2]]
        row: dict[str, Any] = survey_row(职工类别="农民工")
        for position, header in enumerate(headers, start=1):
            sheet.cell(4, position, row.get(str(header)))
        out = io.BytesIO()
        book.save(out)
        report = run(db, clock, campaign, out.getvalue())
        assert (report.created, report.errors) == (1, [])
