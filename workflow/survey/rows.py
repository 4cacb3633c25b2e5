"""One spreadsheet row → the case input the API takes (workflow/cases/schema.py's CaseCreate,
validated by the same model: identity checksums, enums, bounds) and the register's own fields,
or the row's problems, each naming its column, a stable code and a Chinese reason.

Cells come as Excel and WPS leave them: dates as datetimes, serial numbers or text; years and
counts as floats; identity numbers typed into a number cell (Excel keeps 15 significant digits,
so an 18-digit number has lost its last digits: refused, never guessed)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from pydantic import ValidationError

from jinqiu.workflow.cases.schema import CaseCreate, not_after_today
from jinqiu.workflow.errors import ValidationFailed
from jinqiu.workflow.survey.columns import (
    ARCHIVE,
    CATEGORIES,
    CATEGORY_SEPARATORS,
    COLUMNS,
    EDUCATION,
    EXAM_THIS_YEAR,
    IN_SCHOOL,
    TIER,
    YES_NO,
    Column,
    Kind,
)
from jinqiu.workflow.survey.sheet import MAX_CELL_CHARS, Cell, Formula, Sheet
from jinqiu.workflow.validation import problems

EXCEL_EPOCH = dt.date(1899, 12, 30)  # serial 1 = 1900-01-01 (Excel's 1900 date system)
MAX_SERIAL = 2958465  # 9999-12-31
_SCIENTIFIC = re.compile(r"^[0-9]+(\.[0-9]+)?[eE]\+?[0-9]+$")
_DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d", "%Y年%m月%d日", "%Y%m%d")
_TARGET_COLUMN = {c.target: c for c in COLUMNS if c.target}
# The worker's archive fields are the register's columns.
_FIELD_COLUMN = {
    **{t: c for t, c in _TARGET_COLUMN.items()},
    "worker.archive_status": _TARGET_COLUMN["register.archive_status"],
    "worker.archived_on": _TARGET_COLUMN["register.archived_on"],
}


@dataclass(frozen=True, slots=True)
class Problem:
    row: int
    column: str
    code: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "column": self.column, "code": self.code, "message": self.message}


# json.dumps(…, sort_keys=True, ensure_ascii=False, default=str), one encoder for every row:
# the register's row_hash, so its bytes must not change (a re-import compares them).
_digest_json = json.JSONEncoder(sort_keys=True, ensure_ascii=False, default=str).encode


@dataclass
class SurveyRow:
    """A data row read and checked: `case` is the validated input when the row has no problem."""

    number: int
    worker: dict[str, Any] = field(default_factory=dict)
    student: dict[str, Any] = field(default_factory=dict)
    register: dict[str, Any] = field(default_factory=dict)
    case: CaseCreate | None = None
    problems: list[Problem] = field(default_factory=list)

    @property
    def applying(self) -> bool:
        return bool(self.register.get("applying", True))

    @property
    def section(self) -> str:
        exam = self.student.get("exam_score") is not None or self.student.get("admitted_school")
        return EXAM_THIS_YEAR if exam else IN_SCHOOL

    def key(self) -> str | None:
        """The register's key: the student's identity number (valid rows only)."""
        return None if self.case is None else self.case.student.id_number

    _form: dict[str, Any] | None = field(default=None, init=False, repr=False)
    _digest: str | None = field(default=None, init=False, repr=False)

    def form(self) -> dict[str, Any]:
        """The parsed form as the register keeps it (JSON: dates and amounts as text)."""
        assert self.case is not None
        if self._form is None:  # made once: the register's row and the digest share it
            self._form = {
                "worker": self.case.worker.model_dump(mode="json", exclude_defaults=True),
                "student": self.case.student.model_dump(mode="json", exclude_defaults=True),
            }
        return self._form

    def digest(self) -> str:
        if self._digest is None:
            payload = {**self.form(), "register": self.register}
            self._digest = hashlib.sha256(_digest_json(payload).encode()).hexdigest()
        return self._digest


class _Refused(Exception):
    def __init__(self, code: str, message: str) -> None:
        self.code, self.message = code, message


def _text(value: Cell) -> str | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # a phone number or a code typed into a number cell
    if isinstance(value, (dt.datetime, dt.date)):
        value = value.strftime("%Y-%m-%d")
    text = str(value).strip()
    return text or None


@lru_cache(maxsize=4096)  # choices, years and counts: the same few texts on every row
def _folded(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text).split())


def _integer(value: Cell) -> int:
    if isinstance(value, bool):
        raise _Refused("int_type", "须为整数")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    text = _folded(str(value))
    if text.isascii() and text.isdigit() and len(text) <= 9:
        return int(text)
    raise _Refused("int_type", "须为整数")


def _year(value: Cell) -> int:
    if isinstance(value, (dt.datetime, dt.date)):
        return value.year
    if isinstance(value, str):
        value = _folded(value).removesuffix("年")
    return _integer(value)


def _date(value: Cell) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _serial(value)
    return _date_text(str(value))


@lru_cache(maxsize=1024)  # a register repeats its few archive dates thousands of times
def _date_text(value: str) -> dt.date:
    text = _folded(value)
    if text.isascii() and text.isdigit() and len(text) <= 5:  # a serial written out as text
        return _serial(int(text))
    for fmt in _DATE_FORMATS:
        try:
            return dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise _Refused("date_format", "日期格式不正确（如 2024-03-01，或 Excel 日期）")


def _serial(number: float) -> dt.date:
    if not float(number).is_integer() or not 1 <= number <= MAX_SERIAL:
        raise _Refused("date_format", "日期格式不正确（如 2024-03-01，或 Excel 日期）")
    return EXCEL_EPOCH + dt.timedelta(days=int(number))


def _id_number(value: Cell) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        raise _Refused(
            "id_number_as_number",
            "身份证号码被存成了数字，Excel 只保留 15 位有效数字，后几位已丢失：请把该列设为文本后重新填写",
        )
    text = str(value).strip()
    if _SCIENTIFIC.match(_folded(text)):
        raise _Refused(
            "id_number_as_number",
            "身份证号码被写成了科学计数法（如 3.70102E+17），后几位已丢失：请把该列设为文本后重新填写",
        )
    return text


def _choice(value: Cell, table: dict[str, str]) -> str:
    text = _folded(str(value))
    if text in table:
        return table[text]
    if text.lower() in table.values():
        return text.lower()
    raise _Refused("not_allowed", "取值须为：" + "、".join(table))


def _categories(value: Cell, admitted: Mapping[str, str]) -> list[str]:
    """Codes of the campaign's categories, named by their label or code in the campaign, or by
    a common label of the form (农民工, 困难劳模 …)."""
    codes = []
    for part in CATEGORY_SEPARATORS.split(unicodedata.normalize("NFKC", str(value))):
        if not part:
            continue
        text = _folded(part)
        code = admitted.get(text) or admitted.get(text.lower()) or CATEGORIES.get(text)
        if code is None:
            raise _Refused("not_allowed", "取值须为：" + "、".join(sorted(set(admitted))))
        if code not in admitted.values():
            raise _Refused("category_not_in_campaign", f"本次活动不接受“{part}”这一类别")
        codes.append(code)
    return codes


def _money(value: Cell, admitted: Mapping[str, str]) -> str:
    if isinstance(value, float):  # the shortest text that is the cell's number
        return repr(value)
    return _folded(str(value)).replace(",", "").removesuffix("元")


def _yes_no(value: Cell, admitted: Mapping[str, str]) -> bool:
    text = _folded(str(value)).lower()
    if text not in YES_NO:
        raise _Refused("not_allowed", "取值须为：是、否")
    return YES_NO[text]


# How a cell of each kind is read (the campaign's categories passed to every reader).
_READERS: dict[Kind, Callable[[Cell, Mapping[str, str]], Any]] = {
    Kind.ID_NUMBER: lambda value, _: _id_number(value),
    Kind.INTEGER: lambda value, _: _integer(value),
    Kind.YEAR: lambda value, _: _year(value),
    Kind.DATE: lambda value, _: _date(value),
    Kind.MONEY: _money,
    Kind.EDUCATION: lambda value, _: _choice(value, EDUCATION),
    Kind.ARCHIVE: lambda value, _: _choice(value, ARCHIVE),
    Kind.TIER: lambda value, _: _choice(value, TIER),
    Kind.CATEGORIES: _categories,
    Kind.YES_NO: _yes_no,
}


def _convert(column: Column, value: Cell, admitted: Mapping[str, str]) -> Any:
    reader = _READERS.get(column.kind)
    return _text(value) if reader is None else reader(value, admitted)


def blank(cells: tuple[Cell, ...]) -> bool:
    return all(c is None or (isinstance(c, str) and not c.strip()) for c in cells)


def read_row(
    sheet: Sheet,
    number: int,
    cells: tuple[Cell, ...],
    *,
    campaign_id: int,
    unit_code: str,
    admitted_categories: Mapping[str, str],
    today: dt.date,
) -> SurveyRow:
    row = SurveyRow(number)
    refused: set[str] = set()
    parts = {"worker": row.worker, "student": row.student, "register": row.register}
    present = len(cells)
    for position, column, part, name in sheet.targets:
        if position >= present:
            continue
        value = cells[position]
        if value is None:
            continue
        try:
            if isinstance(value, str):
                if not value or value.isspace():
                    continue
                if len(value) > MAX_CELL_CHARS:
                    raise _Refused("cell_too_long", f"内容过长（最多 {MAX_CELL_CHARS} 字）")
                if column.kind is Kind.TEXT:  # most cells: _text's answer for a text
                    parts[part][name] = value.strip()
                    continue
            elif isinstance(value, Formula):
                raise _Refused("formula", "单元格是公式：请复制后“选择性粘贴为数值”")
            converted = _convert(column, value, admitted_categories)
        except _Refused as why:
            row.problems.append(Problem(number, sheet.headers[position], why.code, why.message))
            refused.add(column.target)
            continue
        if converted is not None:
            parts[part][name] = converted

    def column_of(path: str) -> str:
        known = _FIELD_COLUMN.get(path)
        if known is None:
            return path
        for position, column in sheet.columns.items():  # the header as this file writes it
            if column.target == known.target:
                return sheet.headers[position]
        return known.header

    worker = dict(row.worker)
    for name in ("archive_status", "archived_on"):  # from the register, not typed per case
        if name in row.register:
            worker[name] = row.register[name]
    try:
        spec = CaseCreate.model_validate(
            {"campaign": campaign_id, "unit": unit_code, "worker": worker, "student": row.student}
        )
    except ValidationError as exc:
        for p in problems(exc):
            target = p["field"]
            known = _FIELD_COLUMN.get(target)
            if known is not None and known.target in refused:
                continue  # already said why this cell is wrong
            row.problems.append(Problem(number, column_of(target), p["code"], p["message"]))
        return row
    if row.problems:
        return row
    try:
        not_after_today(
            today,
            worker={"id_number": spec.worker.id_number, "archived_on": spec.worker.archived_on},
            student={"id_number": spec.student.id_number},
        )
    except ValidationFailed as exc:
        for d in exc.details:
            row.problems.append(Problem(number, column_of(d["field"]), d["code"], d["message"]))
        return row
    row.case = spec
    return row
