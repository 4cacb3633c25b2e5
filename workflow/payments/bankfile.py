"""The bank's files: the 代发 file a batch exports (CSV in GB18030, or .xlsx) and the result file
the bank sends back, read and validated whole before anything is applied.

Export columns: 序号, 户名, 卡号, 开户行, 金额, 用途/附言, then a 合计 row (count and total). The
bytes depend on the batch alone (no clock inside the workbook or its zip), so downloading a
format again gives the same SHA-256 as the first time.

Result columns: 序号 or 卡号 (or both), 金额, 状态 (成功 / 失败), 失败原因; an optional 合计 row.
Refused as a whole, every bad row named: a row the batch does not have, an amount that differs,
a row given twice, a row of the batch missing, an unknown status, a total that does not match."""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from openpyxl import Workbook, load_workbook

from jinqiu.workflow.errors import DomainError
from jinqiu.workflow.masking import masked_text
from jinqiu.workflow.money import format_yuan

HEADER = ("序号", "户名", "卡号", "开户行", "金额", "用途/附言")
TOTAL = "合计"
PAID, FAILED = "成功", "失败"
MAX_RESULT_BYTES = 5 * 1024 * 1024  # a 20,000-row result file is well under 2 MB
MAX_RESULT_ROWS = 20_100
MAX_REASON = 200  # payment_batch_item.failure_reason
_ZIP_TIME = (2000, 1, 1, 0, 0, 0)


class ResultFileInvalid(DomainError):
    """The bank's result file cannot be applied; `details.rows` says why, row by row."""

    code = "result_file_invalid"
    status = 422

    def __init__(self, problems: list[dict[str, object]]) -> None:
        first = problems[0]
        super().__init__(
            f"回盘文件有误，未做任何处理：第 {first['row']} 行 {first['message']}",
            {"rows": problems},
        )


class FileTooLarge(DomainError):
    code = "too_large"
    status = 413


@dataclass(frozen=True, slots=True)
class FileRow:
    position: int
    holder: str
    card_number: str
    bank_name: str
    amount_fen: int


def _cells(rows: Sequence[FileRow], purpose: str) -> Iterable[tuple[str, ...]]:
    yield HEADER
    for r in rows:
        yield (
            str(r.position),
            r.holder,
            r.card_number,
            r.bank_name,
            format_yuan(r.amount_fen),
            purpose,
        )
    total = sum(r.amount_fen for r in rows)
    yield (TOTAL, "", "", "", format_yuan(total), f"共 {len(rows)} 笔")


def export_csv(rows: Sequence[FileRow], purpose: str) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerows(_cells(rows, purpose))
    return out.getvalue().encode("gb18030")


def export_xlsx(rows: Sequence[FileRow], purpose: str, title: str) -> bytes:
    workbook = Workbook(write_only=True)
    workbook.properties.creator = "jinqiu"
    sheet = workbook.create_sheet(title[:31])
    for cells in _cells(rows, purpose):
        sheet.append(list(cells))  # every cell text: a card number must not become a float
    raw = io.BytesIO()
    workbook.save(raw)
    return _fixed_zip(raw.getvalue())


def _fixed_zip(data: bytes) -> bytes:
    """The same workbook with the zip's entry times and the document's dates fixed, so the
    bytes (and their SHA-256) depend on the rows alone."""
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(data)) as source,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target,
    ):
        for info in source.infolist():
            content = source.read(info.filename)
            if info.filename == "docProps/core.xml":
                content = _without_dates(content)
            fixed = zipfile.ZipInfo(info.filename, date_time=_ZIP_TIME)
            fixed.compress_type = zipfile.ZIP_DEFLATED
            target.writestr(fixed, content)
    return out.getvalue()


def _without_dates(core: bytes) -> bytes:
    text = core.decode("utf-8")
    for tag in ("dcterms:created", "dcterms:modified"):
        start = text.find(f"<{tag}")
        end = text.find(f"</{tag}>", start)
        if start != -1 and end != -1:
            text = text[:start] + text[end + len(tag) + 3 :]
    return text.encode("utf-8")


# -- the result file --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ResultRow:
    row: int  # the file's row number (the header is row 1)
    position: int  # the batch row it answers
    paid: bool
    reason: str | None


def read_table(content: bytes, filename: str) -> list[list[str]]:
    """The file's rows as text cells: .xlsx by its first sheet, anything else as CSV (UTF-8,
    UTF-8 with BOM, or GB18030)."""
    if len(content) > MAX_RESULT_BYTES:
        raise FileTooLarge("回盘文件过大（上限 5 MB）", {"limit_bytes": MAX_RESULT_BYTES})
    if content[:2] == b"PK" or filename.lower().endswith(".xlsx"):
        return _read_xlsx(content)
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = content.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise ResultFileInvalid([{"row": 0, "message": "无法识别文件编码（UTF-8 或 GB18030）"}])
    try:
        rows = list(csv.reader(io.StringIO(text)))
    except csv.Error as exc:
        raise ResultFileInvalid([{"row": 0, "message": f"不是有效的 CSV 文件：{exc}"}]) from exc
    return _bounded([[c.strip() for c in r] for r in rows])


def _read_xlsx(content: bytes) -> list[list[str]]:
    try:
        workbook = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
        sheet = workbook.worksheets[0]
        rows: list[list[str]] = []
        for values in sheet.iter_rows(values_only=True):
            rows.append(["" if v is None else _cell_text(v) for v in values])
            if len(rows) > MAX_RESULT_ROWS + 1:
                break
        workbook.close()
    except Exception as exc:  # any damage to the file is the same answer to the user
        raise ResultFileInvalid([{"row": 0, "message": "不是可读取的 .xlsx 文件"}]) from exc
    return _bounded(rows)


def _cell_text(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _bounded(rows: list[list[str]]) -> list[list[str]]:
    if len(rows) > MAX_RESULT_ROWS + 1:
        raise ResultFileInvalid([{"row": 0, "message": f"行数过多（上限 {MAX_RESULT_ROWS} 行）"}])
    return rows


def _fen(text: str) -> int | None:
    try:
        value = Decimal(text.replace(",", ""))
    except InvalidOperation:
        return None
    if (
        not value.is_finite()
        or value < 0
        or value > 10**9
        or value != value.quantize(Decimal("0.01"))
    ):
        return None
    return int(value * 100)


def validate_result(
    table: list[list[str]], batch: Sequence[FileRow], total_fen: int
) -> list[ResultRow]:
    """Every row of the result matched to the batch, or ResultFileInvalid naming every problem."""
    problems: list[dict[str, object]] = []

    def bad(row: int, message: str) -> None:
        problems.append({"row": row, "message": masked_text(message)})

    rows = [(n, r) for n, r in enumerate(table, start=1) if any(c for c in r)]
    if not rows:
        raise ResultFileInvalid([{"row": 1, "message": "文件为空"}])
    header_row, header = rows[0]
    column = {name.strip(): i for i, name in enumerate(header)}
    pos_col, card_col = column.get("序号"), column.get("卡号")
    amount_col, status_col = column.get("金额"), column.get("状态")
    reason_col = column.get("失败原因")
    if amount_col is None or status_col is None or (pos_col is None and card_col is None):
        raise ResultFileInvalid(
            [{"row": header_row, "message": "表头须有“序号”或“卡号”、“金额”、“状态”列"}]
        )
    by_position = {r.position: r for r in batch}
    by_card: dict[str, FileRow | None] = {}
    for b in batch:  # a card paid twice in one batch (siblings) is found by 序号 only
        by_card[b.card_number] = None if b.card_number in by_card else b

    def cell(r: list[str], col: int | None) -> str:
        return r[col].strip() if col is not None and col < len(r) else ""

    seen: dict[int, int] = {}
    found: list[ResultRow] = []
    file_total, stated_total = 0, None
    for n, r in rows[1:]:
        key = cell(r, pos_col)
        amount = _fen(cell(r, amount_col))
        if TOTAL in (key, cell(r, card_col)):
            if stated_total is not None:
                bad(n, "合计行重复")
            stated_total = amount
            if amount is None:
                bad(n, "合计金额无法识别")
            total_row = n
            continue
        item: FileRow | None = None
        if pos_col is not None:
            if not key.isdigit() or int(key) not in by_position:
                bad(n, f"批次中没有序号为“{key}”的一笔")
                continue
            item = by_position[int(key)]
            card = cell(r, card_col)
            if card_col is not None and card != item.card_number:
                bad(n, f"卡号与批次序号 {item.position} 的卡号不符")
                continue
        else:
            card = cell(r, card_col)
            item = by_card.get(card)
            if item is None:
                message = (
                    "批次中有多笔使用此卡号，须按序号对应"
                    if card in by_card
                    else "批次中没有此卡号"
                )
                bad(n, message)
                continue
        if item.position in seen:
            bad(n, f"与第 {seen[item.position]} 行重复（序号 {item.position}）")
            continue
        seen[item.position] = n
        if amount is None:
            bad(n, "金额无法识别")
            continue
        if amount != item.amount_fen:
            bad(
                n,
                f"金额与批次不符（批次 {format_yuan(item.amount_fen)} 元，回盘 {format_yuan(amount)} 元）",
            )
            continue
        file_total += amount
        status = cell(r, status_col)
        if status not in (PAID, FAILED):
            bad(n, f"状态须为“成功”或“失败”，而不是“{status[:20]}”")
            continue
        reason = cell(r, reason_col)[:MAX_REASON] or None
        found.append(
            ResultRow(n, item.position, status == PAID, None if status == PAID else reason)
        )
    missing = [p for p in by_position if p not in seen]
    if missing:
        shown = "、".join(str(p) for p in missing[:20]) + ("等" if len(missing) > 20 else "")
        bad(header_row, f"批次中的 {len(missing)} 笔未出现在回盘中（序号 {shown}）")
    if stated_total is not None and stated_total != total_fen:
        bad(
            total_row,
            f"合计金额与批次不符（批次 {format_yuan(total_fen)} 元，回盘 {format_yuan(stated_total)} 元）",
        )
    if problems:
        raise ResultFileInvalid(problems)
    assert file_total == total_fen  # every row matched, none missing: the amounts add up
    return found
