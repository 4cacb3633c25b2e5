"""`jinqiu import`: a survey spreadsheet into the register (docs/CONTRACT.md), with a Rich
progress bar on a terminal, and `jinqiu import --template`."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from sqlalchemy import select

from jinqiu.workflow.campaigns.models import Campaign
from jinqiu.workflow.clock import SystemClock
from jinqiu.workflow.db import transaction
from jinqiu.workflow.errors import DomainError, TooLarge
from jinqiu.workflow.roles import Actor
from jinqiu.workflow.runtime import open_existing_database
from jinqiu.workflow.survey.columns import CATEGORIES
from jinqiu.workflow.survey.service import ImportReport, import_survey
from jinqiu.workflow.survey.sheet import MAX_FILE_BYTES
from jinqiu.workflow.survey.workbook import annotated_workbook, template_workbook
from jinqiu.workflow.units.models import Unit
from jinqiu.workflow.users.models import Role

campaign_t = Campaign.__table__  # type: ignore[attr-defined]
unit_t = Unit.__table__  # type: ignore[attr-defined]
CLI_USER = "cli"  # who the audit trail names for cases the command line creates
_PHASES = {"read": "读取并校验", "import": "导入"}


class _Refused(DomainError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def write_template(path: Path, campaign_id: int | None) -> None:
    name, categories = "", list(CATEGORIES)
    if campaign_id is not None:
        with open_existing_database().connect() as conn:
            row = conn.execute(
                select(campaign_t.c.name, campaign_t.c.categories).where(
                    campaign_t.c.id == campaign_id
                )
            ).first()
        if row is None:
            raise _Refused("not_found", f"活动 {campaign_id} 不存在")
        name, categories = row.name, [c["label"] for c in row.categories or []]
    path.write_bytes(template_workbook(name or "金秋助学", categories))
    typer.echo(f"导入模板已写入 {path}")


def _operator(unit_code: str) -> Actor:
    """The command line acts as a clerk of the unit it imports for (the operator has the
    database itself; the audit trail names the command line)."""
    with open_existing_database().connect() as conn:
        row = conn.execute(select(unit_t).where(unit_t.c.code == unit_code)).first()
    if row is None:
        raise _Refused("unknown_unit", f"单位 {unit_code} 不存在")
    return Actor(
        username=CLI_USER,
        unit_code=row.code,
        unit_path=row.path,
        unit_level=row.level,
        roles=(Role.CLERK.value,),
    )


def _print(report: ImportReport) -> None:
    mode = "（试导入，未写入）" if report.dry_run else ("" if report.written else "（未写入）")
    typer.echo(
        f"行数 {report.rows}，无误 {report.valid}，新建案件 {report.created}，"
        f"登记 {report.registered}，此前已导入 {report.already_imported}{mode}"
    )
    if report.file_already_imported:
        typer.echo("注意：同一文件此前已导入过（按文件 SHA-256），已导入的行未重复创建")
    if report.ignored_columns:
        typer.echo("未识别、已忽略的列：" + "、".join(report.ignored_columns))
    for p in report.errors:
        typer.echo(f"第 {p.row} 行 [{p.column}] {p.code}：{p.message}", err=True)


def run_import(
    path: Path,
    campaign_id: int,
    unit_code: str,
    *,
    dry_run: bool,
    skip_invalid: bool,
    report: Path | None,
) -> bool:
    """False when rows are bad and nothing was written (the command exits 1)."""
    if path.stat().st_size > MAX_FILE_BYTES:
        raise TooLarge(f"文件过大：最多 {MAX_FILE_BYTES // (1024 * 1024)} MB")
    content = path.read_bytes()
    actor = _operator(unit_code)
    engine = open_existing_database()
    console = Console(stderr=True)
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,  # a log or a pipe gets the report only
    )
    tasks: dict[str, TaskID] = {}

    def progress(phase: str, done: int, total: int | None) -> None:
        if phase not in tasks:
            tasks[phase] = bar.add_task(_PHASES.get(phase, phase), total=total)
        bar.update(tasks[phase], completed=done, total=total)

    with bar, transaction(engine) as conn:
        result = import_survey(
            conn,
            campaign_id=campaign_id,
            unit_code=unit_code,
            content=content,
            filename=path.name,
            dry_run=dry_run,
            skip_invalid=skip_invalid,
            actor=actor,
            clock=SystemClock(),
            progress=progress,
        )
    _print(result)
    if report is not None:
        report.write_bytes(
            annotated_workbook(content, result.format, result.header_row, result.errors)
        )
        typer.echo(f"错误说明已写入 {report}")
    return not (result.errors and not result.written)
