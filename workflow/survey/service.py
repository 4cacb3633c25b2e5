"""Importing a survey spreadsheet into the register, creating a case for each row that applies.

Every row is read and checked first (the same input model as POST /api/cases; duplicates in the
file, against the register and against the campaign's open cases); a dry run stops there and
writes nothing. A real import is all-or-nothing unless `skip_invalid`: with bad rows and
without it, nothing is written either. Cases are created by `cases.batch.create_cases` — the
rows, first audit entry and counters of `create_case`, the service behind POST /api/cases,
set-based — in the caller's one transaction.

Re-importing is harmless: a row whose student is already on the register with the same
values is counted as already imported; the file's SHA-256 is kept with each import."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, insert, select, update

from jinqiu.states import ENDED_WITHOUT_AID
from jinqiu.workflow.campaigns.models import Campaign
from jinqiu.workflow.cases.batch import create_cases
from jinqiu.workflow.cases.models import Case
from jinqiu.workflow.cases.service import create_case
from jinqiu.workflow.clock import Clock
from jinqiu.workflow.errors import DomainError, PermissionDenied, ValidationFailed
from jinqiu.workflow.roles import Actor, Grant
from jinqiu.workflow.survey.columns import COLUMNS, campaign_categories
from jinqiu.workflow.survey.models import SurveyEntry, SurveyImport
from jinqiu.workflow.survey.rows import Problem, SurveyRow, blank, read_row
from jinqiu.workflow.survey.sheet import MAX_ROWS, Sheet, open_sheet, too_many_rows
from jinqiu.workflow.units.models import Unit

entry_t = SurveyEntry.__table__  # type: ignore[attr-defined]
import_t = SurveyImport.__table__  # type: ignore[attr-defined]
case_t = Case.__table__  # type: ignore[attr-defined]
unit_t = Unit.__table__  # type: ignore[attr-defined]
campaign_t = Campaign.__table__  # type: ignore[attr-defined]

CHUNK = 500  # keys per IN (…) lookup
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


def read_file(
    content: bytes,
    *,
    campaign_id: int,
    unit_code: str,
    admitted_categories: Mapping[str, str],
    today: dt.date,
    progress: Progress = _no_progress,
) -> tuple[Sheet, list[SurveyRow]]:
    """Every data row read and checked on its own (no database)."""
    sheet = open_sheet(content)
    rows: list[SurveyRow] = []
    for number, cells in sheet.rows:
        if blank(cells):
            continue
        if len(rows) >= MAX_ROWS:
            raise too_many_rows()
        rows.append(
            read_row(
                sheet,
                number,
                cells,
                campaign_id=campaign_id,
                unit_code=unit_code,
                admitted_categories=admitted_categories,
                today=today,
            )
        )
        if len(rows) % 500 == 0:
            progress("read", len(rows), None)
    progress("read", len(rows), len(rows))
    return sheet, rows


def _chunks(keys: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(keys), CHUNK):
        yield keys[start : start + CHUNK]


def _against_file(rows: list[SurveyRow], header: str) -> None:
    first: dict[str, int] = {}
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
    """Problems for rows the register or an open case already has; returns the numbers of the
    rows already on the register unchanged (skipped, not errors)."""
    keys = [k for r in rows if (k := r.key()) is not None]
    registered: dict[str, str] = {}
    open_cases: set[str] = set()
    for chunk in _chunks(keys):
        for number, digest in conn.execute(
            select(entry_t.c.student_id_number, entry_t.c.row_hash).where(
                entry_t.c.campaign_id == campaign_id,
                entry_t.c.student_id_number.in_(chunk),
            )
        ):
            registered[number] = digest
        open_cases.update(
            conn.execute(
                select(case_t.c.student_id_number).where(
                    case_t.c.campaign_id == campaign_id,
                    case_t.c.student_id_number.in_(chunk),
                    case_t.c.state.not_in([s.value for s in ENDED_WITHOUT_AID]),
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
    the file in the caller's transaction. The report lists every bad row."""
    if not actor.may(Grant.CREATE_CASE):
        raise PermissionDenied("当前角色无权导入摸底表")
    unit, campaign = _target(conn, campaign_id, unit_code, actor)
    admitted = campaign_categories(campaign.categories)
    sheet, rows = read_file(
        content,
        campaign_id=campaign_id,
        unit_code=unit_code,
        admitted_categories=admitted,
        today=clock.now().date(),
        progress=progress,
    )
    header = next(
        (h for i, h in sheet.headers.items() if sheet.columns[i].target == "student.id_number"),
        STUDENT_ID_HEADER,
    )
    _against_file(rows, header)
    unchanged = _against_database(conn, campaign_id, rows, header)
    sha = hashlib.sha256(content).hexdigest()
    report = ImportReport(
        rows=len(rows),
        valid=sum(1 for r in rows if not r.problems),
        already_imported=len(unchanged),
        errors=[p for r in rows for p in r.problems],
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
    if dry_run or (report.errors and not skip_invalid):
        return report
    todo = [r for r in rows if r.case is not None and r.number not in unchanged]
    _write(conn, report, todo, campaign_id, unit.id, filename, skip_invalid, actor, clock, progress)
    return report


def _create_cases(
    conn: Connection,
    report: ImportReport,
    todo: list[SurveyRow],
    skip_invalid: bool,
    actor: Actor,
    clock: Clock,
    progress: Progress,
) -> dict[int, int]:
    """The applying rows' cases, a chunk at a time through create_cases (create_case's rows,
    set-based); row number → case id. With skip_invalid, a chunk refused while written (a
    race: another clerk's case for the same student meanwhile) is done again row by row, each
    in its own savepoint, so only the refused rows are left out and reported."""
    applying = [r for r in todo if r.applying and r.case is not None]
    case_of: dict[int, int] = {}
    for start in range(0, len(applying), CHUNK):
        chunk = applying[start : start + CHUNK]
        specs = [r.case for r in chunk if r.case is not None]
        try:
            with conn.begin_nested():
                ids = create_cases(conn, specs, actor=actor, clock=clock)
            case_of.update(zip((r.number for r in chunk), ids, strict=True))
        except DomainError:
            if not skip_invalid:
                raise
            for row in chunk:
                assert row.case is not None
                try:
                    with conn.begin_nested():
                        case_of[row.number] = create_case(conn, row.case, actor=actor, clock=clock)
                except DomainError as exc:
                    report.errors.append(
                        Problem(row.number, STUDENT_ID_HEADER, exc.code, exc.message)
                    )
                    report.valid -= 1
        progress("import", start + len(chunk), len(applying))
    report.created = len(case_of)
    return case_of


def _write(
    conn: Connection,
    report: ImportReport,
    todo: list[SurveyRow],
    campaign_id: int,
    unit_id: int,
    filename: str,
    skip_invalid: bool,
    actor: Actor,
    clock: Clock,
    progress: Progress,
) -> None:
    now = clock.now()
    import_id = conn.execute(
        insert(import_t)
        .values(
            campaign_id=campaign_id,
            unit_id=unit_id,
            filename=filename[:200],
            file_sha256=report.file_sha256,
            rows=report.rows,
            registered=0,
            created=0,
            invalid=len({p.row for p in report.errors}),
            imported_by=actor.username,
            imported_at=now,
        )
        .returning(import_t.c.id)
    ).scalar_one()
    case_of = _create_cases(conn, report, todo, skip_invalid, actor, clock, progress)
    entries: list[dict[str, Any]] = []
    for row in todo:
        assert row.case is not None
        if row.applying and row.number not in case_of:
            continue  # refused while written (skip_invalid): reported
        worker, student = row.case.worker, row.case.student
        entries.append(
            {
                "campaign_id": campaign_id,
                "unit_id": unit_id,
                "import_id": import_id,
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
                "registered_by": actor.username,
                "registered_at": now,
            }
        )
    for start in range(0, len(entries), CHUNK):
        conn.execute(insert(entry_t), entries[start : start + CHUNK])
    report.registered = len(entries)
    report.errors.sort(key=lambda p: p.row)
    conn.execute(
        update(import_t)
        .where(import_t.c.id == import_id)
        .values(registered=report.registered, created=report.created)
    )
    report.import_id = int(import_id)
    report.written = True
    progress("import", len(todo), len(todo))
