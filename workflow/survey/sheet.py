"""Reading an uploaded survey spreadsheet: .xlsx (its first sheet, streamed by openpyxl's
read-only reader) or CSV (UTF-8, UTF-8 with BOM or GB18030, as Excel and WPS save it).

Hostile by default: the file's size, its rows and columns, and an xlsx's uncompressed size
(from the zip's directory, which bounds what zipfile will inflate) are checked before anything
is parsed; a macro-enabled or damaged workbook is refused. The header row is found among the
first rows (a merged title row and group headers may stand above it)."""

from __future__ import annotations

import codecs
import csv
import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field

from openpyxl import load_workbook

from jinqiu.workflow.errors import FileUnreadable, TooLarge
from jinqiu.workflow.survey.columns import REQUIRED, Column, column_named

# A district's or a city's register in one file: 100,000 rows are ~16 MB of CSV with the
# common columns (bench import), a few MB as .xlsx. Under the HTTP upload limit (20 MB,
# api/middleware.py) with room for the form, so an upload too large gets this cap's message.
MAX_FILE_BYTES = 19 * 1024 * 1024
MAX_ROWS = 100_000  # data rows; a grassroots union's register is hundreds
MAX_CELL_CHARS = 500  # the longest field (致困原因) is 500
MAX_COLUMNS = 60  # the template has 34; columns further right are not read
HEADER_SEARCH_ROWS = 10  # title, unit line, group headers: the header is among the first rows
MAX_UNCOMPRESSED_BYTES = 400 * 1024 * 1024  # a full 19 MB workbook inflates to ~200 MB
# A part inflating more than this many times its stored size is a bomb: real sheets compress
# ~5-20 times (repeated tags, shared strings), a run of zeros ~1,000 times.
MAX_INFLATION = 100
INFLATION_CHECKED_FROM = 1024 * 1024  # small parts (styles, an empty sheet) may compress more
MAX_ZIP_ENTRIES = 500
CSV_BLOCK = 1024 * 1024  # a CSV's encoding is checked a block at a time, never decoded whole
# Rows read at most (blank ones included): a sheet claiming a cell a million rows down stops here.
MAX_PHYSICAL_ROWS = MAX_ROWS + HEADER_SEARCH_ROWS + 1000

XLSX_MAGIC = b"PK\x03\x04"
OLE_MAGIC = b"\xd0\xcf\x11\xe0"  # .xls, or an encrypted .xlsx


class Formula:
    """A cell holding a formula: refused (its value is whatever the last program computed)."""

    def __init__(self, text: str) -> None:
        self.text = text


Cell = object  # str | int | float | datetime | bool | None | Formula


@dataclass
class Sheet:
    format: str  # "xlsx" or the CSV's encoding
    header_row: int  # 1-based, as Excel numbers rows
    columns: dict[int, Column]  # position in the row → the column it is
    headers: dict[int, str]  # position → the header as the file writes it
    unknown: list[str] = field(default_factory=list)  # headers not matched, ignored
    rows: Iterator[tuple[int, tuple[Cell, ...]]] = field(default_factory=lambda: iter(()))
    # The columns read, worked out once for every row: (position, column, "worker", "name").
    targets: list[tuple[int, Column, str, str]] = field(init=False)

    def __post_init__(self) -> None:
        self.targets = [
            (position, column, *_split(column.target))
            for position, column in self.columns.items()
            if column.target
        ]


def _split(target: str) -> tuple[str, str]:
    part, _, name = target.partition(".")
    return part, name


def unreadable(reason: str, message: str) -> FileUnreadable:
    return FileUnreadable(message, {"reason": reason})


def open_sheet(content: bytes) -> Sheet:
    """The file's header and an iterator over its data rows (row number, cells)."""
    if len(content) > MAX_FILE_BYTES:
        raise TooLarge(
            f"文件过大：最多 {MAX_FILE_BYTES // (1024 * 1024)} MB", {"max_bytes": MAX_FILE_BYTES}
        )
    if not content:
        raise unreadable("empty", "文件是空的")
    if content.startswith(OLE_MAGIC):
        raise unreadable(
            "old_format", "不支持旧版 .xls 或加密的工作簿：请在 Excel 中另存为 .xlsx（不加密）"
        )
    if content.startswith(XLSX_MAGIC):
        return _locate_header("xlsx", _xlsx_rows(content))
    return _locate_header(*csv_rows(content))


def _checked_zip(content: bytes) -> None:
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, EOFError, ValueError) as exc:
        raise unreadable("damaged", "文件已损坏或不完整，不是可读取的 .xlsx 工作簿") from exc
    names = {e.filename for e in entries}
    inflated = any(
        e.file_size > INFLATION_CHECKED_FROM and e.file_size > MAX_INFLATION * e.compress_size
        for e in entries
    )
    if (
        len(entries) > MAX_ZIP_ENTRIES
        or sum(e.file_size for e in entries) > MAX_UNCOMPRESSED_BYTES
        or inflated
    ):
        raise unreadable("zip_bomb", "工作簿解压后过大，疑似压缩炸弹，已拒绝")
    if "xl/workbook.xml" not in names:
        raise unreadable("not_xlsx", "不是 Excel 工作簿（.xlsx）")
    if any(n.lower().endswith("vbaproject.bin") for n in names):
        raise unreadable("macro", "不接受含宏的工作簿（.xlsm）：请另存为不含宏的 .xlsx")


def _xlsx_rows(content: bytes) -> Iterator[tuple[int, tuple[Cell, ...]]]:
    _checked_zip(content)
    try:
        # data_only=False: a formula is seen as one and refused, not read as a stale cache
        book = load_workbook(io.BytesIO(content), read_only=True, data_only=False)
        sheet = book.worksheets[0]
    except Exception as exc:  # any damage is the same answer to the clerk
        raise unreadable("damaged", "文件已损坏或不完整，不是可读取的 .xlsx 工作簿") from exc

    def rows() -> Iterator[tuple[int, tuple[Cell, ...]]]:
        try:
            for number, cells in enumerate(sheet.iter_rows(max_col=MAX_COLUMNS), start=1):
                if number > MAX_PHYSICAL_ROWS:
                    raise too_many_rows()
                yield number, tuple(_cell(c) for c in cells)
        except (TooLarge, FileUnreadable):
            raise
        except Exception as exc:  # a truncated sheet fails while it streams
            raise unreadable("damaged", "文件已损坏或不完整，不是可读取的 .xlsx 工作簿") from exc
        finally:
            book.close()

    return rows()


def _cell(cell: object) -> Cell:
    value = getattr(cell, "value", None)
    if getattr(cell, "data_type", None) == "f" or (isinstance(value, str) and value[:1] == "="):
        return Formula(str(value))
    return value


def too_many_rows() -> TooLarge:
    return TooLarge(f"行数过多：最多 {MAX_ROWS} 行", {"max_rows": MAX_ROWS})


def csv_rows(content: bytes) -> tuple[str, Iterator[tuple[int, tuple[Cell, ...]]]]:
    if b"\x00" in content:  # UTF-16 or a binary file: neither is a CSV Excel saves for China
        raise unreadable(
            "not_spreadsheet", "不是 .xlsx 或 CSV 文件（CSV 须为 UTF-8 或 GB18030 编码）"
        )
    encoding = next((e for e in ("utf-8-sig", "gb18030") if _decodes(content, e)), None)
    if encoding is None:
        raise unreadable("encoding", "无法识别文件编码：CSV 须为 UTF-8 或 GB18030")
    name = "utf-8-sig" if content.startswith(b"\xef\xbb\xbf") else encoding

    def rows() -> Iterator[tuple[int, tuple[Cell, ...]]]:
        # Decoded as it is read: the file's text is never held whole beside its bytes.
        text = io.TextIOWrapper(io.BytesIO(content), encoding=encoding, newline="")
        try:
            for number, cells in enumerate(csv.reader(text), start=1):
                if number > MAX_PHYSICAL_ROWS:
                    raise too_many_rows()
                yield number, tuple(cells[:MAX_COLUMNS])
        except csv.Error as exc:
            raise unreadable("not_spreadsheet", f"不是有效的 CSV 文件：{exc}") from exc

    return name, rows()


def _decodes(content: bytes, encoding: str) -> bool:
    decoder = codecs.getincrementaldecoder(encoding)()
    try:
        for start in range(0, len(content), CSV_BLOCK):
            decoder.decode(content[start : start + CSV_BLOCK])
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _locate_header(fmt: str, rows: Iterator[tuple[int, tuple[Cell, ...]]]) -> Sheet:
    for number, cells in rows:
        matched = {i: c for i, v in enumerate(cells) if (c := column_named(v)) is not None}
        if len({c.header for c in matched.values()}) >= 3:
            missing = [c.header for c in REQUIRED if c not in matched.values()]
            if missing:
                raise FileUnreadable(
                    f"表头缺少必填列：{'、'.join(missing)}",
                    {"reason": "missing_columns", "columns": missing},
                )
            seen: dict[str, int] = {}
            for i, column in sorted(matched.items()):
                if column.header in seen:
                    raise FileUnreadable(
                        f"表头中“{column.header}”出现了两次",
                        {"reason": "duplicate_column", "columns": [column.header]},
                    )
                seen[column.header] = i
            headers = {i: str(cells[i]).strip() for i in matched}
            unknown = [
                str(v).strip()
                for i, v in enumerate(cells)
                if i not in matched and v is not None and str(v).strip()
            ]
            return Sheet(fmt, number, matched, headers, unknown, rows)
        if number >= HEADER_SEARCH_ROWS:
            break
    raise FileUnreadable(
        "找不到表头：前 10 行中没有“学生姓名”“身份证号码”等摸底表的列名（可下载导入模板对照）",
        {"reason": "no_header"},
    )
