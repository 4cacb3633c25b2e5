"""The survey register (摸底登记) as a list and as a workbook (GET /api/campaigns/{id}/survey-
register): every family surveyed in a unit's subtree, applying or not, with the two identity
numbers masked unless the caller holds pii.read. A full read writes one pii_access row per row
shown, in the caller's transaction — by the case when the row has one, otherwise by the register
row (pii_access.survey_entry_id). Identity numbers are text cells, so Excel never turns them into
3.71002E+17. A workbook holds at most MAX_ROWS rows: a larger subtree is exported per sub-unit."""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Font
from sqlalchemy import Connection, func, insert, select

from jinqiu.workflow.audit.models import PiiAccess
from jinqiu.workflow.cases.pii import PURPOSE_MAX, Disclosure
from jinqiu.workflow.clock import as_china
from jinqiu.workflow.errors import ValidationFailed
from jinqiu.workflow.roles import Actor, Grant
from jinqiu.workflow.survey.columns import ARCHIVE, EXAM_THIS_YEAR, IN_SCHOOL
from jinqiu.workflow.survey.models import SurveyEntry
from jinqiu.workflow.units.models import Unit, in_subtree

entry_t = SurveyEntry.__table__  # type: ignore[attr-defined]
unit_t = Unit.__table__  # type: ignore[attr-defined]
pii_t = PiiAccess.__table__  # type: ignore[attr-defined]

MAX_ROWS = 20_000  # per workbook: a city's register is exported per district
SECTIONS = {IN_SCHOOL: "在校生", EXAM_THIS_YEAR: "今年参加中考或高考"}
# The form's own words for the archive status ("无" is an alias of 未建档).
ARCHIVE_LABELS = {code: label for label, code in reversed(ARCHIVE.items())}
COLUMNS = (
    ("单位", 24), ("职工姓名", 12), ("职工身份证号码", 22), ("学生姓名", 12),
    ("学生身份证号码", 22), ("类别", 18), ("是否申请", 10), ("建档类型", 10), ("建档日期", 12),
    ("备注", 30), ("案件编号", 10), ("登记人", 14), ("登记时间", 18),
)  # fmt: skip
ID_COLUMNS = (3, 5)  # 职工身份证号码, 学生身份证号码: text cells


def may_read(actor: Actor) -> bool:
    """Those who import the register (case.create) and, as for the case list, auditors."""
    return actor.may(Grant.CREATE_CASE) or actor.may(Grant.READ_AUDIT)


@dataclass(frozen=True)
class RegisterRow:
    """A register row as the caller may see it."""

    id: int
    unit_code: str
    unit_name: str
    worker_name: str
    worker_id_number: str
    student_name: str
    student_id_number: str
    section: str
    applying: bool
    archive_status: str
    archived_on: dt.date | None
    remark: str | None
    case_id: int | None
    registered_by: str
    registered_at: dt.datetime

    def cells(self) -> list[Any]:
        return [
            f"{self.unit_name}（{self.unit_code}）",
            self.worker_name,
            self.worker_id_number,
            self.student_name,
            self.student_id_number,
            SECTIONS.get(self.section, self.section),
            "是" if self.applying else "否",
            ARCHIVE_LABELS.get(self.archive_status, self.archive_status),
            self.archived_on.isoformat() if self.archived_on else "",
            self.remark or "",
            self.case_id,
            self.registered_by,
            as_china(self.registered_at).strftime("%Y-%m-%d %H:%M"),
        ]


def register_rows(
    conn: Connection,
    actor: Actor,
    campaign_id: int,
    unit_path: str,
    *,
    purpose: str,
    at: dt.datetime,
    page: int = 1,
    page_size: int | None = None,
) -> tuple[list[RegisterRow], int, bool]:
    """The campaign's register rows of the subtree under `unit_path` (the caller's scope is
    checked by whoever resolved the unit), in unit and row order; a page of them, or all when
    `page_size` is None — then at most MAX_ROWS, refused otherwise before anything is read.
    Returns the rows, the subtree's total and whether the numbers are shown in full; a full
    read is recorded on `conn` (which must then be a writing transaction)."""
    where = (entry_t.c.campaign_id == campaign_id, in_subtree(unit_t.c.path, unit_path))
    total = conn.execute(
        select(func.count())
        .select_from(entry_t.join(unit_t, unit_t.c.id == entry_t.c.unit_id))
        .where(*where)
    ).scalar_one()
    if page_size is None and total > MAX_ROWS:
        raise ValidationFailed(
            f"摸底登记共 {total} 行，超过每个工作簿 {MAX_ROWS} 行的上限，请按下级单位分别导出",
            [{"field": "unit", "code": "too_many_rows",
              "message": f"超过 {MAX_ROWS} 行，请按下级单位分别导出"}],
        )  # fmt: skip
    query = (
        select(entry_t, unit_t.c.code.label("unit_code"), unit_t.c.name.label("unit_name"))
        .join(unit_t, unit_t.c.id == entry_t.c.unit_id)
        .where(*where)
        .order_by(unit_t.c.path, entry_t.c.id)
    )
    if page_size is not None:
        query = query.limit(page_size).offset((page - 1) * page_size)
    disclosure = Disclosure.for_actor(actor)
    out, reads = [], []
    for r in conn.execute(query):
        row_disclosure = Disclosure(in_full=disclosure.in_full)
        shown = row_disclosure.data(
            {"worker": {"id_number": r.worker_id_number},
             "student": {"id_number": r.student_id_number}, "remark": r.remark}
        )  # fmt: skip
        out.append(
            RegisterRow(
                id=r.id,
                unit_code=r.unit_code,
                unit_name=r.unit_name,
                worker_name=r.worker_name,
                worker_id_number=shown["worker"]["id_number"],
                student_name=r.student_name,
                student_id_number=shown["student"]["id_number"],
                section=r.section,
                applying=r.applying,
                archive_status=r.archive_status,
                archived_on=r.archived_on,
                remark=shown["remark"],
                case_id=r.case_id,
                registered_by=r.registered_by,
                registered_at=r.registered_at,
            )
        )
        if row_disclosure.revealed:
            # By the case when there is one (its log is where the case's reads are looked up).
            reads.append(
                {
                    "case_id": r.case_id,
                    "survey_entry_id": None if r.case_id is not None else r.id,
                    "actor": actor.username,
                    "actor_unit": actor.unit_code,
                    "fields": list(row_disclosure.revealed),
                    "purpose": purpose[:PURPOSE_MAX],
                    "at": at,
                }
            )
    if reads:
        conn.execute(insert(pii_t), reads)
    return out, total, disclosure.in_full


def workbook(rows: list[RegisterRow], *, campaign_name: str, unit_name: str) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "摸底登记"
    sheet.append([name for name, _ in COLUMNS])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in rows:
        sheet.append(row.cells())
    for col in ID_COLUMNS:
        for (cell,) in sheet.iter_rows(min_row=2, min_col=col, max_col=col):
            cell.number_format = "@"
    for i, (_, width) in enumerate(COLUMNS):
        sheet.column_dimensions[chr(ord("A") + i)].width = width
    sheet.freeze_panes = "A2"
    note = book.create_sheet("说明")
    note.append([f"{campaign_name} 摸底登记（{unit_name}及下级单位）"])
    note.append([f"共 {len(rows)} 行；登记时间为北京时间"])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
