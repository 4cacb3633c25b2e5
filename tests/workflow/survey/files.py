"""Survey spreadsheets as clerks make them: openpyxl workbooks with a merged title row and the
form's section headers, and CSV files in each encoding Excel and WPS save."""

from __future__ import annotations

import csv
import io
import zipfile
from typing import Any

from openpyxl import Workbook

from tests.factories import student, worker

HEADERS = (
    "职工姓名",
    "职工身份证号码",
    "联系电话",
    "建档类型",
    "建档日期",
    "职工类别",
    "学生姓名",
    "与职工关系",
    "身份证号码",
    "户口类型",
    "当前学历",
    "入学年份",
    "年制",
    "学校",
    "中考/高考分数",
    "录取学校",
    "录取批次",
    "备注",
    "是否申请",
)


def survey_row(**changes: Any) -> dict[str, Any]:
    """One row of the 摸底表 for a new family (a fresh student each call)."""
    w, s = worker(), student()
    row: dict[str, Any] = {
        "职工姓名": w["name"],
        "职工身份证号码": w["id_number"],
        "联系电话": w["phone"],
        "建档类型": "深度困难",
        "建档日期": "2024-03-01",
        "职工类别": "",
        "学生姓名": s["name"],
        "与职工关系": "子",
        "身份证号码": s["id_number"],
        "户口类型": "城镇",
        "当前学历": "本科",
        "入学年份": 2024,
        "年制": 4,
        "学校": s["school"],
        "中考/高考分数": 612,
        "录取学校": s["admitted_school"],
        "录取批次": "一本",
        "备注": "",
        "是否申请": "是",
    }
    row.update(changes)
    return row


def xlsx(
    rows: list[dict[str, Any]],
    headers: tuple[str, ...] = HEADERS,
    *,
    title: bool = True,
) -> bytes:
    """A workbook as the template lays it out: a merged title, a merged unit line, then the
    header row; identity numbers as text (what the template's text format keeps)."""
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    if title:
        sheet.append(["困难职工子女金秋助学情况摸底表"])
        sheet.merge_cells(start_row=1, start_column=1, end_row=1, end_column=len(headers))
        sheet.append(["单位名称（盖章）：环翠区某工会", None, None, "填报日期：2024-07-20"])
        sheet.merge_cells(start_row=2, start_column=1, end_row=2, end_column=3)
    sheet.append(list(headers))
    keys = [h.replace(" ", "").replace("\u3000", "") for h in headers]
    for row in rows:
        sheet.append([row.get(k, row.get(h)) for k, h in zip(keys, headers, strict=True)])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def csv_bytes(
    rows: list[dict[str, Any]], encoding: str, headers: tuple[str, ...] = HEADERS
) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(headers)
    for row in rows:
        writer.writerow(["" if row.get(h) is None else row.get(h) for h in headers])
    return out.getvalue().encode(encoding)


def zip_bomb() -> bytes:
    """A workbook-shaped zip whose sheet inflates to 110 MB (compressed to a few hundred KB)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.xml", "<workbook/>")
        archive.writestr("xl/worksheets/sheet1.xml", b"\0" * (110 * 1024 * 1024))
    return out.getvalue()


def macro_workbook(rows: list[dict[str, Any]]) -> bytes:
    """The same workbook with a VBA project inside, as .xlsm files carry one."""
    source = zipfile.ZipFile(io.BytesIO(xlsx(rows)))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for info in source.infolist():
            archive.writestr(info, source.read(info.filename))
        archive.writestr("xl/vbaProject.bin", b"\xd0\xcf\x11\xe0" + b"\0" * 512)
    return out.getvalue()
