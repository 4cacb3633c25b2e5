"""The import streams its file a chunk of rows at a time: what a file longer than one chunk
must still give — all or nothing, every bad row reported, duplicates found across chunks, the
row cap refused with nothing left behind — and racing imports of one file refused cleanly."""

from __future__ import annotations

import io
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import Engine, func, select

from jinqiu.workflow.cases.counters import counter_differences
from jinqiu.workflow.cases.models import Case
from jinqiu.workflow.cases.trail import verify_case_chains
from jinqiu.workflow.clock import ManualClock
from jinqiu.workflow.db import transaction
from jinqiu.workflow.errors import TooLarge
from jinqiu.workflow.survey import workbook
from jinqiu.workflow.survey.models import SurveyEntry, SurveyImport
from jinqiu.workflow.survey.service import CHUNK, ImportRaced, ImportReport, import_survey
from jinqiu.workflow.survey.sheet import MAX_PHYSICAL_ROWS, MAX_ROWS
from tests.factories import actor, weihai
from tests.workflow.cases.test_concurrency import gate, race
from tests.workflow.survey.files import HEADERS, csv_bytes, survey_row, xlsx

UNIT = "WH-HC-001"
case_t = Case.__table__  # type: ignore[attr-defined]
entry_t = SurveyEntry.__table__  # type: ignore[attr-defined]
import_t = SurveyImport.__table__  # type: ignore[attr-defined]
LONGER_THAN_A_CHUNK = CHUNK + 200
FIRST_DATA_ROW = 2  # a CSV's header is row 1


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
) -> ImportReport:
    with transaction(db) as conn:
        return import_survey(
            conn,
            campaign_id=campaign,
            unit_code=UNIT,
            content=content,
            filename="摸底表.csv",
            dry_run=dry_run,
            skip_invalid=skip_invalid,
            actor=actor(conn, UNIT, "clerk"),
            clock=clock,
        )


def counts(db: Engine) -> tuple[int, int, int]:
    with db.connect() as conn:
        return tuple(  # type: ignore[return-value]
            conn.execute(select(func.count()).select_from(t)).scalar_one()
            for t in (case_t, entry_t, import_t)
        )


def rows(n: int, **changes_at: dict[str, Any]) -> list[dict[str, Any]]:
    """n fresh rows; `changes_at["r1100"]` changes the row that lands on file row 1100."""
    made = [survey_row() for _ in range(n)]
    for key, changes in changes_at.items():
        made[int(key[1:]) - FIRST_DATA_ROW].update(changes)
    return made


def test_a_bad_row_in_a_later_chunk_takes_back_the_chunks_written_before_it(
    db: Engine, clock: ManualClock, campaign: int
) -> None:
    bad_at = FIRST_DATA_ROW + CHUNK + 100  # the first chunk was written when it is met
    content = csv_bytes(rows(LONGER_THAN_A_CHUNK, **{f"r{bad_at}": {"当前学历": "大学"}}), "utf-8")
    report = run(db, clock, campaign, content)
    assert [(p.row, p.column, p.code) for p in report.errors] == [
        (bad_at, "当前学历", "not_allowed")
    ]
    assert (report.rows, report.valid, report.written) == (
        LONGER_THAN_A_CHUNK,
        LONGER_THAN_A_CHUNK - 1,
        False,
    )
    assert (report.created, report.registered) == (0, 0)
    assert counts(db) == (0, 0, 0)


def test_skip_invalid_writes_every_good_row_of_every_chunk(
    db: Engine, clock: ManualClock, campaign: int
) -> None:
    bad_at = FIRST_DATA_ROW + CHUNK + 100
    content = csv_bytes(rows(LONGER_THAN_A_CHUNK, **{f"r{bad_at}": {"当前学历": "大学"}}), "utf-8")
    report = run(db, clock, campaign, content, skip_invalid=True)
    good = LONGER_THAN_A_CHUNK - 1
    assert (report.created, report.registered, len(report.errors)) == (good, good, 1)
    assert counts(db) == (good, good, 1)
    with db.connect() as conn:
        recorded = conn.execute(select(import_t)).one()
        assert (recorded.rows, recorded.created, recorded.registered, recorded.invalid) == (
            LONGER_THAN_A_CHUNK,
            good,
            good,
            1,
        )
        assert list(verify_case_chains(conn)) == []
        assert counter_differences(conn, campaign) == []


def test_a_student_again_in_a_later_chunk_is_a_duplicate_of_the_first_row(
    db: Engine, clock: ManualClock, campaign: int
) -> None:
    made = rows(LONGER_THAN_A_CHUNK)
    again_at = FIRST_DATA_ROW + CHUNK + 50
    made[again_at - FIRST_DATA_ROW]["身份证号码"] = made[0]["身份证号码"]
    report = run(db, clock, campaign, csv_bytes(made, "utf-8"), dry_run=True)
    assert [(p.row, p.code) for p in report.errors] == [(again_at, "duplicate_in_file")]
    assert f"第 {FIRST_DATA_ROW} 行" in report.errors[0].message


def test_a_long_file_imported_twice_creates_nothing_the_second_time(
    db: Engine, clock: ManualClock, campaign: int
) -> None:
    content = csv_bytes(rows(LONGER_THAN_A_CHUNK), "gb18030")
    first = run(db, clock, campaign, content)
    assert (first.created, first.errors) == (LONGER_THAN_A_CHUNK, [])
    again = run(db, clock, campaign, content)
    assert (again.created, again.registered, again.already_imported, again.errors) == (
        0,
        0,
        LONGER_THAN_A_CHUNK,
        [],
    )
    assert counts(db)[:2] == (LONGER_THAN_A_CHUNK, LONGER_THAN_A_CHUNK)


def test_rows_past_the_cap_refuse_the_file_and_leave_nothing(
    db: Engine, clock: ManualClock, campaign: int
) -> None:
    """A chunk of real rows is written, then the file goes on past the rows read at most (blank
    lines, as a sheet formatted far down gives them): refused, and the written chunk taken back."""
    content = csv_bytes(rows(LONGER_THAN_A_CHUNK), "utf-8") + b"\r\n" * MAX_PHYSICAL_ROWS
    with pytest.raises(TooLarge) as refused:
        run(db, clock, campaign, content)
    assert refused.value.message == f"行数过多：最多 {MAX_ROWS} 行"
    assert refused.value.details == {"max_rows": MAX_ROWS}
    assert counts(db) == (0, 0, 0)


RACERS = 4


def test_racing_imports_of_one_register_keep_it_once(
    db: Engine, clock: ManualClock, campaign: int
) -> None:
    """Rows of families surveyed but not applying go to the register only: its unique key, not
    the cases' index, decides the race. The losers are refused (409 import_conflict) or, having
    waited for the winner (SQLite's writers queue), find every row already imported."""
    racing_imports(db, clock, campaign, "released-together")


def test_racing_imports_that_all_read_before_any_writes_are_refused_but_one(
    pg: Engine, clock: ManualClock
) -> None:
    """PostgreSQL only: SQLite's writers queue on BEGIN IMMEDIATE, so none of them can read
    before another writes there."""
    racing_imports(pg, clock, weihai(pg, clock)[1], "all-read-before-any-write")


def racing_imports(db: Engine, clock: ManualClock, campaign: int, kind: str) -> None:
    content = xlsx([survey_row(是否申请="否") for _ in range(3)])

    def importing(_i: int) -> ImportReport:
        return run(db, clock, campaign, content)

    if kind == "released-together":
        outcomes = race(importing, RACERS)
    else:
        with gate(db, "INSERT INTO survey_entry", RACERS) as held:
            outcomes = race(importing, RACERS, hold=held)
        assert held.reached == RACERS
    unexpected = [o for o in outcomes if isinstance(o, BaseException)]
    unexpected = [o for o in unexpected if not isinstance(o, ImportRaced)]
    assert unexpected == []
    reports = [o for o in outcomes if isinstance(o, ImportReport)]
    refused = [o for o in outcomes if isinstance(o, ImportRaced)]
    assert [r.registered for r in reports if r.registered] == [3]
    assert all(r.already_imported == 3 for r in reports if not r.registered)
    if kind == "all-read-before-any-write":
        assert len(refused) == RACERS - 1
    assert all((e.status, e.code) == (409, "import_conflict") for e in refused)
    # Each import that was not refused is on record (a re-import too, as registering nothing).
    assert counts(db) == (0, 3, len(reports))


def test_a_real_workbook_of_thousands_of_rows_is_not_taken_for_a_zip_bomb(
    db: Engine, clock: ManualClock, campaign: int
) -> None:
    """The bomb check is a part inflating over MAX_INFLATION times its stored size: a real
    sheet of a few MB (repeated tags and shared strings, ~15 times) must pass it."""
    content = xlsx([survey_row(是否申请="否") for _ in range(3000)])
    report = run(db, clock, campaign, content, dry_run=True)
    assert (report.format, report.rows, report.errors) == ("xlsx", 3000, [])


def test_a_workbook_over_the_full_copy_limit_comes_back_as_its_values_with_the_reasons(
    db: Engine, clock: ManualClock, campaign: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A limit of one row: the path a workbook of more than 20,000 rows takes, without making one.
    monkeypatch.setattr(workbook, "FULL_COPY_MAX_ROWS", 1)
    rows = [survey_row(), survey_row(当前学历="大学")]
    content = xlsx(rows)
    report = run(db, clock, campaign, content, dry_run=True)

    def marked_up(source: bytes) -> Any:
        out = workbook.annotated_workbook(source, "xlsx", report.header_row, report.errors)
        return out, load_workbook(io.BytesIO(out)).active

    out, marked = marked_up(content)
    last = marked.max_column
    assert (last, marked.cell(3, last).value) == (len(HEADERS) + 1, "错误说明")
    assert marked.cell(4, last).value is None
    assert "当前学历：取值须为" in str(marked.cell(5, last).value)
    number = marked.cell(5, HEADERS.index("身份证号码") + 1)
    assert (number.value, number.number_format) == (rows[1]["身份证号码"], "@")
    assert marked.cell(1, 1).value == "困难职工子女金秋助学情况摸底表"
    assert not marked.merged_cells.ranges  # values only: the title's merge is not copied
    _again, remarked = marked_up(out)  # a file given back before: the same column again
    assert remarked.max_column == last
    assert "当前学历" in str(remarked.cell(5, last).value)
