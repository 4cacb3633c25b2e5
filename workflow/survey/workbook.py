"""The spreadsheets the import hands out: the template (the 摸底表's columns under a merged title
and the form's section headers, identity columns formatted as text so Excel keeps every digit,
drop-downs for the fixed values, a sheet of instructions), and the clerk's own file given back
with a 错误说明 column beside each bad row, to be fixed in Excel and imported again."""

from __future__ import annotations

import io
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator

from openpyxl import Workbook, load_workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.comments import Comment
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation

from jinqiu.workflow.survey.columns import (
    ARCHIVE,
    COLUMNS,
    EDUCATION,
    ERROR_HEADER,
    TIER,
    Column,
    Kind,
)
from jinqiu.workflow.survey.rows import Problem
from jinqiu.workflow.survey.sheet import MAX_ROWS, Cell, csv_rows

TITLE = "困难职工子女金秋助学情况摸底表"
TEMPLATE_ROWS = 1000  # rows prepared with text format and drop-downs
# Up to this many rows (the import's old limit) the clerk's own workbook comes back, formatting
# and all; a larger one (up to the import's 100,000) as its values, in bounded memory.
FULL_COPY_MAX_ROWS = 20_000
_BOLD = Font(bold=True)
_CENTER = Alignment(horizontal="center", vertical="center", wrap_text=True)
_BAD = PatternFill("solid", fgColor="FFF2CC")
_RED = Font(color="C00000")
_CHOICES = {
    Kind.EDUCATION: ["小学", "初中", "高中", "中职", "大专", "本科", "研究生", "学前"],
    Kind.ARCHIVE: list(ARCHIVE)[:4],
    Kind.TIER: list(TIER),
    Kind.YES_NO: ["是", "否"],
}


def _saved(book: Workbook) -> bytes:
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def template_workbook(campaign_name: str, category_labels: Iterable[str]) -> bytes:
    """`category_labels`: the campaign's categories as the clerk writes them."""
    admitted = list(dict.fromkeys(category_labels))
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "摸底表"
    last = len(COLUMNS)
    sheet.cell(1, 1, f"{TITLE}（{campaign_name}）")
    sheet.merge_cells(start_row=1, start_column=1, end_row=1, end_column=last)
    sheet.cell(1, 1).font = Font(bold=True, size=14)
    sheet.cell(1, 1).alignment = _CENTER
    start = 1
    for position in range(1, last + 2):  # the form's sections, merged above their columns
        if position > last or COLUMNS[position - 1].group != COLUMNS[start - 1].group:
            sheet.cell(2, start, COLUMNS[start - 1].group).alignment = _CENTER
            if position - 1 > start:
                sheet.merge_cells(
                    start_row=2, start_column=start, end_row=2, end_column=position - 1
                )
            start = position
    for position, column in enumerate(COLUMNS, start=1):
        cell = sheet.cell(3, position, column.header)
        cell.font = Font(bold=True, color="C00000" if column.required else None)
        cell.alignment = _CENTER
        if column.note:
            cell.comment = Comment(column.note, "金秋助学")
        letter = get_column_letter(position)
        sheet.column_dimensions[letter].width = max(10, len(column.header) * 2 + 4)
        if column.kind in (Kind.ID_NUMBER, Kind.TEXT):  # text: Excel keeps all 18 digits
            for row in range(4, 4 + TEMPLATE_ROWS):
                sheet.cell(row, position).number_format = "@"
        choices = _CHOICES.get(column.kind)
        if column.kind is Kind.CATEGORIES and admitted:
            choices = admitted
        if choices:
            rule = DataValidation(type="list", formula1='"' + ",".join(choices) + '"')
            rule.add(f"{letter}4:{letter}{3 + TEMPLATE_ROWS}")
            sheet.add_data_validation(rule)
    sheet.freeze_panes = "A4"
    notes = book.create_sheet("填写说明")
    notes.append(["列名", "必填", "填写要求"])
    for cell in notes[1]:
        cell.font = _BOLD
    for column in COLUMNS:
        notes.append([column.header, "是" if column.required else "", _how(column, admitted)])
    notes.append([])
    notes.append([f"从第 4 行起每名学生一行，最多 {MAX_ROWS} 行；表头（第 3 行）请勿改动。"])
    notes.append(["在校生填写“下面由在校生填写”各列；今年参加中考或高考的学生另填分数和录取学校。"])
    notes.column_dimensions["A"].width = 18
    notes.column_dimensions["C"].width = 80
    return _saved(book)


def _how(column: Column, admitted: list[str]) -> str:
    kind = column.kind
    if kind is Kind.ID_NUMBER:
        return "18 位，单元格须为文本格式（否则 Excel 会丢失后几位）"
    if kind is Kind.EDUCATION:
        return "、".join(EDUCATION) + "。" + column.note
    if kind is Kind.ARCHIVE:
        return "、".join(list(ARCHIVE)[:4]) + "；档案状态以本表为准"
    if kind is Kind.CATEGORIES:
        allowed = admitted
        return ("可多项，用顿号分隔：" + "、".join(allowed)) if allowed else "本次活动不设类别"
    if kind is Kind.DATE:
        return "日期，如 2024-03-01"
    if kind is Kind.YEAR:
        return "四位年份，如 2023"
    if kind is Kind.MONEY:
        return "元，如 1200 或 1200.50"
    if kind is Kind.YES_NO:
        return "是 或 否；不填为“是”。填“否”的只登记摸底，不生成申请"
    if kind is Kind.TIER:
        return "一本、二本、三本"
    return column.note


def _streamed_copy(
    rows: Callable[[], Iterator[tuple[int, tuple[Cell, ...]]]],
    header_row: int,
    messages: dict[int, str],
) -> bytes:
    """The rows `rows()` yields copied into a new workbook as they are read (openpyxl's
    write-only mode: a row in memory at a time), texts formatted as text so an identity number
    typed again in Excel keeps its digits, 错误说明 after the widest row (or in place of the
    one a file given back before has). Values only: a CSV has no more; a large workbook's
    formatting is not kept (a full copy holds every cell: a CSV built so took ~70 MB per
    10,000 rows)."""
    width, column = 0, 0
    for number, cells in rows():  # first pass: where the 错误说明 column goes
        width = max(width, len(cells))
        if number == header_row and ERROR_HEADER in cells:
            column = cells.index(ERROR_HEADER) + 1
    column = column or width + 1
    book = Workbook(write_only=True)
    sheet = book.create_sheet()
    sheet.column_dimensions[get_column_letter(column)].width = 60

    def copied(value: Cell) -> object:
        if not isinstance(value, str):
            return value
        cell = WriteOnlyCell(sheet, value=value)
        cell.number_format = "@"
        return cell

    for number, cells in rows():
        row: list[object] = [copied(v) for v in cells[: column - 1]]
        note = ERROR_HEADER if number == header_row else messages.get(number)
        if note is not None:
            cell = WriteOnlyCell(sheet, value=note)
            if number == header_row:
                cell.font = Font(bold=True, color="C00000")
            else:
                cell.font, cell.fill = _RED, _BAD
                cell.alignment = Alignment(wrap_text=True, vertical="top")
            row += [None] * (column - 1 - len(row)) + [cell]
        sheet.append(row)
    return _saved(book)


def _xlsx_values(content: bytes) -> Iterator[tuple[int, tuple[Cell, ...]]]:
    """The first sheet's rows as values, numbered as the import numbers them."""
    book = load_workbook(io.BytesIO(content), read_only=True, data_only=False)
    try:
        for number, cells in enumerate(book.worksheets[0].iter_rows(values_only=True), start=1):
            yield number, tuple(cells)
    finally:
        book.close()


def _xlsx_rows_over(content: bytes, limit: int) -> bool:
    book = load_workbook(io.BytesIO(content), read_only=True)
    try:
        declared = book.worksheets[0].max_row  # the sheet's dimension, when it states one
    finally:
        book.close()
    if declared is not None:
        return int(declared) > limit
    return any(number > limit for number, _cells in _xlsx_values(content))


def _messages(problems: Iterable[Problem]) -> dict[int, str]:
    by_row: dict[int, list[str]] = defaultdict(list)
    for p in problems:
        by_row[p.row].append(f"{p.column}：{p.message}")
    return {row: "；".join(lines) for row, lines in by_row.items()}


def annotated_workbook(
    content: bytes, file_format: str, header_row: int, problems: Iterable[Problem]
) -> bytes:
    """The uploaded file with a 错误说明 column (a .xlsx; a CSV comes back as one, its cells as
    text so identity numbers stay whole; a workbook of more than FULL_COPY_MAX_ROWS rows comes
    back as its values, copied as they are read). Only call with a file open_sheet has read."""
    messages = _messages(problems)
    if file_format != "xlsx":
        return _streamed_copy(lambda: csv_rows(content)[1], header_row, messages)
    if _xlsx_rows_over(content, FULL_COPY_MAX_ROWS):
        return _streamed_copy(lambda: _xlsx_values(content), header_row, messages)
    book = load_workbook(io.BytesIO(content))
    sheet = book.worksheets[0]
    column = sheet.max_column + 1
    if sheet.cell(header_row, column - 1).value == ERROR_HEADER:  # a file given back before
        column -= 1
        for row in range(header_row + 1, sheet.max_row + 1):
            sheet.cell(row, column).value = None
    header = sheet.cell(header_row, column, ERROR_HEADER)
    header.font = Font(bold=True, color="C00000")
    sheet.column_dimensions[get_column_letter(column)].width = 60
    for row, text in messages.items():
        cell = sheet.cell(row, column, text)
        cell.font = _RED
        cell.fill = _BAD
        cell.alignment = Alignment(wrap_text=True, vertical="top")
    return _saved(book)
