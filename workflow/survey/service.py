"""Importing a survey spreadsheet into the register, creating a case for each row that applies.

Every row is read and checked first (the same input model as POST /api/cases; duplicates in the
file, against the register and against the campaign's open cases); a dry run stops there and
writes nothing. A real import is all-or-nothing unless `skip_invalid`: with bad rows and
without it, nothing is written either. Cases are created by `cases.batch.create_cases` — the
rows, first audit entry and counters of `create_case`, the service behind POST /api/cases,
set-based — in the caller's one transaction. The file is streamed a chunk of rows at a time
(read, checked, written), so memory is bounded by the chunk, not the file's rows.

Re-importing is harmless: a row whose student is already on the register with the same
values is counted as already imported; the file's SHA-256 is kept with each import."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError

from jinqiu.workflow.campaigns.models import Campaign
from jinqiu.workflow.cases.batch import create_cases
from jinqiu.workflow.cases.models import Case, still_open
from jinqiu.workflow.cases.service import create_case
from jinqiu.workflow.clock import Clock
from jinqiu.workflow.driver import insert_rows, probed_by_key
from jinqiu.workflow.errors import Conflict, DomainError, PermissionDenied, ValidationFailed
from jinqiu.workflow.roles import Actor, Grant
from jinqiu.workflow.survey.columns import COLUMNS, campaign_categories
from jinqiu.workflow.survey.models import SurveyEntry, SurveyImport
from jinqiu.workflow.survey.rows import Problem, SurveyRow, blank, read_row
from jinqiu.workflow.survey.sheet import MAX_ROWS, Cell, Sheet, open_sheet, too_many_rows
from jinqiu.workflow.units.models import Unit

entry_t = SurveyEntry.__table__  # type: ignore[attr-defined]
import_t = SurveyImport.__table__  # type: ignore[attr-defined]
case_t = Case.__table__  # type: ignore[attr-defined]
unit_t = Unit.__table__  # type: ignore[attr-defined]
campaign_t = Campaign.__table__  # type: ignore[attr-defined]

CHUNK = 1000  # rows read, checked and written together (and keys per IN (…) lookup)
STUDENT_ID_HEADER = next(c.header for c in COLUMNS if c.target == "student.id_number")
# (phase, rows done, rows in all or None while the file is still being read)
Progress = Callable[[str, int, int | None], None]


@dataclass
class ImportReport:
    rows: int = 0  # data rows in the file (blank rows not counted)
    valid: int = 0  # rows without a problem (already imported ones included)
    created: int = 0  # cases created
    registered: int = 0  # register rows written (applying or not)
    already_imported: int = 0  # rows on the register already, unchanged
    errors: list[Problem] = field(default_factory=list)
    dry_run: bool = True
    written: bool = False
    file_sha256: str = ""
    file_already_imported: bool = False
    import_id: int | None = None
    format: str = ""
    header_row: int = 0
    ignored_columns: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "valid": self.valid,
            "created": self.created,
            "registered": self.registered,
            "already_imported": self.already_imported,
            "errors": [p.as_dict() for p in self.errors],
            "dry_run": self.dry_run,
            "written": self.written,
            "file_sha256": self.file_sha256,
            "file_already_imported": self.file_already_imported,
            "import_id": self.import_id,
            "format": self.format,
            "header_row": self.header_row,
            "ignored_columns": self.ignored_columns,
        }


def _no_progress(phase: str, done: int, total: int | None) -> None:
    return None


def _target(conn: Connection, campaign_id: int, unit_code: str, actor: Actor) -> tuple[Any, Any]:
    """The unit (in the actor's subtree) and the campaign (which must concern it)."""
    unit = conn.execute(
        select(unit_t.c.id, unit_t.c.path).where(unit_t.c.code == unit_code)
    ).first()
    if unit is None or not actor.sees(unit.path):
        raise ValidationFailed(
            f"单位 {unit_code} 不存在",
            [{"field": "unit", "code": "unknown_unit", "message": "单位不存在"}],
        )
    campaign = conn.execute(
        select(campaign_t.c.id, campaign_t.c.categories, unit_t.c.path)
        .join(unit_t, unit_t.c.id == campaign_t.c.organizer_unit_id)
        .where(campaign_t.c.id == campaign_id)
    ).first()
    if campaign is None or not unit.path.startswith(campaign.path):
        raise ValidationFailed(
            f"活动 {campaign_id} 不存在",
            [{"field": "campaign", "code": "unknown_campaign", "message": "活动不存在"}],
        )
    return unit, campaign


class ImportRaced(Conflict):
    """Another import wrote the same students meanwhile (the register's unique key): nothing
    of this one is kept; importing the file again reports those rows as already imported."""

    code = "import_conflict"


def _data_rows(sheet: Sheet) -> Iterator[list[tuple[int, tuple[Cell, ...]]]]:
    """The sheet's non-blank rows, CHUNK at a time, refused past MAX_ROWS."""
    chunk: list[tuple[int, tuple[Cell, ...]]] = []
    seen = 0
    for number, cells in sheet.rows:
        if blank(cells):
            continue
        seen += 1
        if seen > MAX_ROWS:
            raise too_many_rows()
        chunk.append((number, cells))
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _against_file(rows: list[SurveyRow], header: str, first: dict[str, int]) -> None:
    """`first`: each student's first row so far in the file (earlier chunks included)."""
    for row in rows:
        key = row.key()
        if key is None:
            continue
        if key in first:
            row.problems.append(
                Problem(
                    row.number,
                    header,
                    "duplicate_in_file",
                    f"与第 {first[key]} 行是同一名学生（身份证号码相同）",
                )
            )
            row.case = None
        else:
            first[key] = row.number


def _against_database(
    conn: Connection, campaign_id: int, rows: list[SurveyRow], header: str
) -> set[int]:
    """Problems for rows the register or an open case already has (one query each for the
    chunk); returns the numbers of the rows already on the register unchanged (skipped, not
    errors)."""
    keys = [k for r in rows if (k := r.key()) is not None]
    if not keys:
        return set()
    registered: dict[str, str] = {
        number: digest
        for number, digest in conn.execute(
            probed_by_key(
                conn,
                [entry_t.c.student_id_number, entry_t.c.row_hash],
                entry_t.c.student_id_number,
                keys,
                entry_t.c.campaign_id == campaign_id,
            )
        )
    }
    open_cases = set(
        conn.execute(
            probed_by_key(
                conn,
                [case_t.c.student_id_number],
                case_t.c.student_id_number,
                keys,
                case_t.c.campaign_id == campaign_id,
                still_open(case_t.c.state),
            )
        ).scalars()
    )
    unchanged: set[int] = set()
    for row in rows:
        key = row.key()
        if key is None:
            continue
        if key in registered:
            if registered[key] == row.digest():
                unchanged.add(row.number)
                continue
            row.problems.append(
                Problem(
                    row.number,
                    header,
                    "already_in_register",
                    "该学生已在本活动的摸底登记中，且内容与本行不同：请在案件中补正，不要重复导入",
                )
            )
            row.case = None
        elif row.applying and key in open_cases:
            row.problems.append(
                Problem(
                    row.number,
                    header,
                    "duplicate_student",
                    "该学生在本次活动中已有在办的申请，不能重复申请",
                )
            )
            row.case = None
    return unchanged


def import_survey(
    conn: Connection,
    *,
    campaign_id: int,
    unit_code: str,
    content: bytes,
    filename: str,
    dry_run: bool,
    skip_invalid: bool,
    actor: Actor,
    clock: Clock,
    progress: Progress = _no_progress,
) -> ImportReport:
    """Reads, checks and (unless a dry run, or rows are bad without `skip_invalid`) imports
    the file in the caller's transaction. The report lists every bad row.

    The file is streamed a chunk of rows at a time: read and checked (against the file so far,
    the register and the open cases), then written while no row is bad (or with
    `skip_invalid`), so memory holds one chunk, the students seen and the problems. A bad row
    met after chunks were written takes them back (a savepoint); the rest is still checked,
    so the report names every bad row."""
    if not actor.may(Grant.CREATE_CASE):
        raise PermissionDenied("当前角色无权导入摸底表")
    unit, campaign = _target(conn, campaign_id, unit_code, actor)
    admitted = campaign_categories(campaign.categories)
    today = clock.now().date()
    sheet = open_sheet(content)
    header = next(
        (h for i, h in sheet.headers.items() if sheet.columns[i].target == "student.id_number"),
        STUDENT_ID_HEADER,
    )
    sha = hashlib.sha256(content).hexdigest()
    report = ImportReport(
        dry_run=dry_run,
        file_sha256=sha,
        file_already_imported=conn.execute(
            select(import_t.c.id).where(
                import_t.c.campaign_id == campaign_id, import_t.c.file_sha256 == sha
            )
        ).first()
        is not None,
        format=sheet.format,
        header_row=sheet.header_row,
        ignored_columns=sheet.unknown,
    )
    phase = "read" if dry_run else "import"
    first: dict[str, int] = {}
    writer: _Writer | None = None
    savepoint = None
    if not dry_run:
        savepoint = conn.begin_nested()
        writer = _Writer(conn, report, campaign_id, unit.id, filename, skip_invalid, actor, clock)
    try:
        for chunk in _data_rows(sheet):
            rows = [
                read_row(
                    sheet,
                    number,
                    cells,
                    campaign_id=campaign_id,
                    unit_code=unit_code,
                    admitted_categories=admitted,
                    today=today,
                )
                for number, cells in chunk
            ]
            _against_file(rows, header, first)
            unchanged = _against_database(conn, campaign_id, rows, header)
            report.rows += len(rows)
            report.valid += sum(1 for r in rows if not r.problems)
            report.already_imported += len(unchanged)
            report.errors.extend(p for r in rows for p in r.problems)
            if writer is not None and (skip_invalid or not report.errors):
                writer.write([r for r in rows if r.case is not None and r.number not in unchanged])
            progress(phase, report.rows, None)
    except BaseException:
        if savepoint is not None and savepoint.is_active:
            savepoint.rollback()
        raise
    progress(phase, report.rows, report.rows)
    report.errors.sort(key=lambda p: p.row)  # a chunk's rows refused while written come last
    if writer is None or savepoint is None:
        return report
    if report.errors and not skip_invalid:  # all or nothing: what was written goes back
        savepoint.rollback()
        report.created = report.registered = 0
        return report
    writer.finish()
    savepoint.commit()
    return report


class _Writer:
    """The import's rows written a chunk at a time: the import's record (its counts filled in
    at the end), each applying row's case through create_cases, the register's rows."""

    def __init__(
        self,
        conn: Connection,
        report: ImportReport,
        campaign_id: int,
        unit_id: int,
        filename: str,
        skip_invalid: bool,
        actor: Actor,
        clock: Clock,
    ) -> None:
        self.conn, self.report, self.actor, self.clock = conn, report, actor, clock
        self.campaign_id, self.unit_id, self.skip_invalid = campaign_id, unit_id, skip_invalid
        self.now = clock.now()
        self.import_id = int(
            conn.execute(
                insert(import_t)
                .values(
                    campaign_id=campaign_id,
                    unit_id=unit_id,
                    filename=filename[:200],
                    file_sha256=report.file_sha256,
                    rows=0,
                    registered=0,
                    created=0,
                    invalid=0,
                    imported_by=actor.username,
                    imported_at=self.now,
                )
                .returning(import_t.c.id)
            ).scalar_one()
        )

    def write(self, todo: list[SurveyRow]) -> None:
        case_of = self._create_cases([r for r in todo if r.applying and r.case is not None])
        entries: list[dict[str, Any]] = []
        for row in todo:
            assert row.case is not None
            if row.applying and row.number not in case_of:
                continue  # refused while written (skip_invalid): reported
            worker, student = row.case.worker, row.case.student
            entries.append(
                {
                    "campaign_id": self.campaign_id,
                    "unit_id": self.unit_id,
                    "import_id": self.import_id,
                    "row_number": row.number,
                    "row_hash": row.digest(),
                    "worker_name": worker.name,
                    "worker_id_number": worker.id_number,
                    "student_name": student.name,
                    "student_id_number": student.id_number,
                    "section": row.section,
                    "applying": row.applying,
                    "archive_status": worker.archive_status,
                    "archived_on": worker.archived_on,
                    "remark": row.register.get("remark"),
                    "form": row.form(),
                    "case_id": case_of.get(row.number),
                    "registered_by": self.actor.username,
                    "registered_at": self.now,
                }
            )
        try:
            insert_rows(self.conn, entry_t, entries)
        except IntegrityError as exc:  # another import wrote these students meanwhile
            if "uq_survey_entry_student" not in str(exc.orig) and "student_id_number" not in str(
                exc.orig
            ):
                raise
            raise ImportRaced(
                "另一次导入刚刚登记了本文件中的学生，本次导入未写入任何数据：请重新导入，"
                "已登记的行会计为“此前已导入”",
                {"field": "student.id_number"},
            ) from exc
        self.report.registered += len(entries)

    def _create_cases(self, applying: list[SurveyRow]) -> dict[int, int]:
        """The applying rows' cases through create_cases (create_case's rows, set-based); row
        number → case id. With skip_invalid, a chunk refused while written (a race: another
        clerk's case for the same student meanwhile) is done again row by row, each in its own
        savepoint, so only the refused rows are left out and reported."""
        conn, actor, clock = self.conn, self.actor, self.clock
        specs = [r.case for r in applying if r.case is not None]
        try:
            with conn.begin_nested():
                ids = create_cases(conn, specs, actor=actor, clock=clock)
            case_of = dict(zip((r.number for r in applying), ids, strict=True))
        except DomainError:
            if not self.skip_invalid:
                raise
            case_of = {}
            for row in applying:
                assert row.case is not None
                try:
                    with conn.begin_nested():
                        case_of[row.number] = create_case(conn, row.case, actor=actor, clock=clock)
                except DomainError as exc:
                    self.report.errors.append(
                        Problem(row.number, STUDENT_ID_HEADER, exc.code, exc.message)
                    )
                    self.report.valid -= 1
        self.report.created += len(case_of)
        return case_of

    def finish(self) -> None:
        report = self.report
        self.conn.execute(
            update(import_t)
            .where(import_t.c.id == self.import_id)
            .values(
                rows=report.rows,
                registered=report.registered,
                created=report.created,
                invalid=len({p.row for p in report.errors}),
            )
        )
        report.import_id = self.import_id
        report.written = True
