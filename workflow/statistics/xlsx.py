"""The statistics tables as an .xlsx workbook laid out like the notices' tables: one sheet per
table, its title, 填报单位 / 填报人 / date, the three columns, item codes, units, the note; a
table of donors (Weihai 附件2) then lists one row per donor under its own header."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Alignment, Border, Font, Side

THIN = Side(style="thin")
DONOR_KEYS = ("name", "amount", "aided", "summary")
BOX = Border(left=THIN, right=THIN, top=THIN, bottom=THIN)


def workbook(stats: dict[str, Any], *, today: dt.date) -> bytes:
    book = Workbook()
    if book.active is not None:
        book.remove(book.active)
    for table in stats["tables"]:
        sheet = book.create_sheet(title=table["key"][:31])
        sheet.merge_cells("A1:D1")
        sheet["A1"] = table["title"]
        sheet["A1"].font = Font(size=14, bold=True)
        sheet["A1"].alignment = Alignment(horizontal="center")
        sheet["A2"] = f"填报单位：{stats['unit_name']}"
        sheet["C2"] = "填报人："
        sheet["D2"] = f"{today.year}年{today.month}月{today.day}日"
        header = [table["columns"][0], "代码", table["columns"][1], table["columns"][2]]
        for col, text in enumerate(header, start=1):
            cell = sheet.cell(row=3, column=col, value=text)
            cell.font = Font(bold=True)
            cell.border = BOX
            cell.alignment = Alignment(horizontal="center")
        for offset, item in enumerate(table["items"]):
            row = 4 + offset
            value: Any = item["value"]
            if isinstance(value, str):
                value = float(Decimal(value)) if item["unit"] in {"万元", "元"} else value
            cells = [item["group"], item["code"], item["label"], value]
            for col, content in enumerate(cells, start=1):
                cell = sheet.cell(row=row, column=col, value=content)
                cell.border = BOX
            if item["unit"] == "万元":
                sheet.cell(row=row, column=4).number_format = "0.0000"
            elif item["unit"] == "元":
                sheet.cell(row=row, column=4).number_format = "0.00"
        last = 4 + len(table["items"])
        if table["note"]:
            sheet.cell(row=last + 1, column=1, value=table["note"])
        if "rows" in table:  # one row per donor (Weihai 附件2), below the totals
            _donor_rows(sheet, last + 3, table["row_columns"], table["rows"])
        sheet.column_dimensions["A"].width = 8
        sheet.column_dimensions["B"].width = 7
        sheet.column_dimensions["C"].width = 60
        sheet.column_dimensions["D"].width = 14
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _donor_rows(sheet: Any, top: int, columns: list[str], rows: list[dict[str, Any]]) -> None:
    for col, text in enumerate(columns, start=1):
        cell = sheet.cell(row=top, column=col, value=text)
        cell.font = Font(bold=True)
        cell.border = BOX
    for offset, row in enumerate(rows, start=1):
        for col, key in enumerate(DONOR_KEYS, start=1):
            value: Any = row[key]
            if key == "amount":
                value = float(Decimal(value))
            cell = sheet.cell(row=top + offset, column=col, value=value)
            cell.border = BOX
            if key == "amount":
                cell.number_format = "0.00"
