"""The case list as a workbook (GET /api/cases?…&format=xlsx): the filtered list's page, the same
filter and bounds as the JSON list (workflow.cases.reads.list_cases, page_size ≤ 500), with the
two identity numbers — masked unless the caller holds pii.read; a full export writes one
pii_access row per case shown, in the caller's transaction. Identity numbers are written as
text cells, so Excel never turns them into 3.71002E+17."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Font
from sqlalchemy import Connection, select

from jinqiu.states import MACHINE
from jinqiu.workflow.cases.models import Case, Student, Worker
from jinqiu.workflow.cases.pii import Disclosure
from jinqiu.workflow.cases.reads import CaseFilter, list_cases
from jinqiu.workflow.clock import CHINA, Clock
from jinqiu.workflow.forms.content import EDUCATION
from jinqiu.workflow.money import format_yuan
from jinqiu.workflow.roles import Actor

case_t = Case.__table__  # type: ignore[attr-defined]
worker_t = Worker.__table__  # type: ignore[attr-defined]
student_t = Student.__table__  # type: ignore[attr-defined]
PURPOSE = "GET /api/cases?format=xlsx"
COLUMNS = (
    ("案件编号", 10), ("单位", 24), ("职工姓名", 12), ("职工身份证号码", 22), ("学生姓名", 12),
    ("学生身份证号码", 22), ("学历", 8), ("学校", 28), ("状态", 10), ("核定金额（元）", 14),
    ("发放日期", 12), ("更新时间", 20),
)  # fmt: skip


def export_rows(
    conn: Connection, actor: Actor, flt: CaseFilter, *, clock: Clock
) -> tuple[list[list[Any]], int]:
    """The rows of the page (and the filter's total), numbers as the caller may see them."""
    now = clock.now()
    rows, total = list_cases(conn, actor, flt, today=now.date())
    numbers = {
        r.id: r
        for r in conn.execute(
            select(case_t.c.id, case_t.c.paid_on, worker_t.c.id_number.label("worker_id_number"),
                   student_t.c.id_number.label("student_id_number"))
            .join(worker_t, worker_t.c.id == case_t.c.worker_id)
            .join(student_t, student_t.c.id == case_t.c.student_id)
            .where(case_t.c.id.in_([r["id"] for r in rows]))
        )
    }  # fmt: skip
    out = []
    for r in rows:
        disclosure = Disclosure.for_actor(actor)
        n = numbers[r["id"]]
        shown = disclosure.data(
            {"worker": {"id_number": n.worker_id_number},
             "student": {"id_number": n.student_id_number}}
        )  # fmt: skip
        disclosure.record(conn, r["id"], actor, PURPOSE, now)
        amount = r["approved_amount_fen"]
        out.append(
            [
                r["id"],
                f"{r['unit_name']}（{r['unit_code']}）",
                r["worker_name"],
                shown["worker"]["id_number"],
                r["student_name"],
                shown["student"]["id_number"],
                EDUCATION.get(r["education_level"], r["education_level"]),
                r["school"] or "",
                MACHINE.state(r["state"]).label,
                None if amount is None else format_yuan(amount),
                n.paid_on.isoformat() if n.paid_on else "",
                _local(r["updated_at"]),
            ]
        )
    return out, total


def _local(at: dt.datetime | None) -> str:
    """China time, as every other time the service shows (the database keeps UTC)."""
    if at is None:
        return ""
    return (
        (at if at.tzinfo else at.replace(tzinfo=dt.UTC))
        .astimezone(CHINA)
        .strftime("%Y-%m-%d %H:%M")
    )


def workbook(rows: list[list[Any]], *, total: int, page: int, title: str) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "案件清单"
    sheet.append([name for name, _ in COLUMNS])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in rows:
        sheet.append(row)
    for col in (4, 6):  # identity numbers stay text
        for (cell,) in sheet.iter_rows(min_row=2, min_col=col, max_col=col):
            cell.number_format = "@"
    for i, (_, width) in enumerate(COLUMNS):
        sheet.column_dimensions[chr(ord("A") + i)].width = width
    sheet.freeze_panes = "A2"
    note = book.create_sheet("说明")
    note.append([title])
    note.append([f"本表为筛选结果的第 {page} 页，共 {len(rows)} 件（筛选结果合计 {total} 件）"])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
