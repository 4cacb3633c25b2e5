"""The survey spreadsheet: its template, and importing a filled one (dry run first)."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Response, UploadFile
from pydantic import BaseModel

from jinqiu.api.deps import CampaignInScope, Conn, QueriedUnit, ServicesDep, require
from jinqiu.api.errors import ERROR_RESPONSES, ErrorBody
from jinqiu.workflow.roles import Actor, Grant
from jinqiu.workflow.survey.service import ImportReport, import_survey
from jinqiu.workflow.survey.sheet import MAX_FILE_BYTES
from jinqiu.workflow.survey.workbook import annotated_workbook, template_workbook

router = APIRouter(prefix="/api/campaigns", tags=["imports"], responses=ERROR_RESPONSES)
Importers = Annotated[Actor, Depends(require(Grant.CREATE_CASE, "当前角色无权导入摸底表"))]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class ImportProblem(BaseModel):
    row: int
    column: str
    code: str
    message: str


class ImportOut(BaseModel):
    rows: int
    valid: int
    created: int
    registered: int
    already_imported: int
    errors: list[ImportProblem]
    dry_run: bool
    written: bool
    file_sha256: str
    file_already_imported: bool
    import_id: int | None
    format: str
    header_row: int
    ignored_columns: list[str]


def xlsx_download(content: bytes, filename: str) -> Response:
    return Response(
        content,
        media_type=XLSX,
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename)}",
            "Cache-Control": "no-store",
        },
    )


@router.get(
    "/{campaign_id}/import-template",
    response_class=Response,
    responses={200: {"content": {XLSX: {}}}},
)
def import_template(actor: Importers, campaign: CampaignInScope) -> Response:
    """The survey spreadsheet (摸底表) to fill in: the Chinese headers the import matches,
    identity columns as text, drop-downs for fixed values, and a sheet of instructions."""
    categories = [c["label"] for c in campaign.categories or []]
    return xlsx_download(template_workbook(campaign.name, categories), "摸底表导入模板.xlsx")


@router.post(
    "/{campaign_id}/imports",
    response_model=ImportOut,
    responses={
        200: {"content": {XLSX: {}}},
        413: {"model": ErrorBody, "description": "文件超过 19 MB 或 100000 行"},
    },
)
def import_file(
    actor: Importers,
    campaign: CampaignInScope,
    unit: QueriedUnit,
    file: UploadFile,
    svc: ServicesDep,
    conn: Conn,
    dry_run: bool = True,
    skip_invalid: bool = False,
    format: Annotated[str, Query(pattern=r"^(json|xlsx)$")] = "json",
) -> ImportOut | Response:
    """Reads a filled 摸底表 (.xlsx, or CSV in UTF-8, UTF-8 with BOM or GB18030) for `unit`.
    A dry run (the default) checks every row and writes nothing; otherwise the register rows
    and their cases are written, all or nothing unless `skip_invalid`. `format=xlsx` answers
    with the uploaded file and a 错误说明 column instead of JSON."""
    content = file.file.read(MAX_FILE_BYTES + 1)  # one byte over is enough to refuse it
    report: ImportReport = import_survey(
        conn,
        campaign_id=campaign.id,
        unit_code=unit.code,
        content=content,
        filename=file.filename or "upload",
        dry_run=dry_run,
        skip_invalid=skip_invalid,
        actor=actor,
        clock=svc.clock,
    )
    if format == "xlsx":
        marked = annotated_workbook(content, report.format, report.header_row, report.errors)
        return xlsx_download(marked, "错误说明.xlsx")
    return ImportOut.model_validate(report.as_dict())
