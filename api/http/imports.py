"""The survey spreadsheet: its template, importing a filled one (dry run first), and the register
it fills (摸底登记) as a list or a workbook."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal
from urllib.parse import quote

from fastapi import Depends, Query, Response, UploadFile
from pydantic import BaseModel

from jinqiu.api.deps import (
    CampaignInScope,
    Conn,
    CurrentActor,
    QueriedUnit,
    RecordsFullReads,
    ServicesDep,
    api_router,
    require,
)
from jinqiu.api.errors import ERROR_RESPONSES, ErrorBody
from jinqiu.workflow.errors import PermissionDenied
from jinqiu.workflow.roles import Actor, Grant
from jinqiu.workflow.survey.register import MAX_ROWS, may_read, register_rows, workbook
from jinqiu.workflow.survey.service import ImportReport, import_survey
from jinqiu.workflow.survey.sheet import MAX_FILE_BYTES
from jinqiu.workflow.survey.workbook import annotated_workbook, template_workbook

router = api_router(prefix="/api/campaigns", tags=["imports"], responses=ERROR_RESPONSES)
Importers = Annotated[Actor, Depends(require(Grant.CREATE_CASE, "当前角色无权导入摸底表"))]


async def register_reader(actor: CurrentActor) -> Actor:
    """The register (workflow.survey.register.may_read), checked before the campaign or unit
    is looked up."""
    if not may_read(actor):
        raise PermissionDenied("当前角色无权查看摸底登记", {"permission": Grant.CREATE_CASE.value})
    return actor


RegisterReaders = Annotated[Actor, Depends(register_reader)]
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


class RegisterEntryOut(BaseModel):
    id: int
    unit: str
    unit_name: str
    worker_name: str
    worker_id_number: str  # masked unless pii.read
    student_name: str
    student_id_number: str  # masked unless pii.read
    section: str  # in_school / exam_this_year
    applying: bool
    archive_status: str  # deep / relative / accident / none
    archived_on: dt.date | None
    remark: str | None
    case: int | None
    registered_by: str
    registered_at: dt.datetime


class RegisterPage(BaseModel):
    items: list[RegisterEntryOut]
    total: int
    page: int
    page_size: int
    pii_unmasked: bool


@router.get(
    "/{campaign_id}/survey-register",
    response_model=RegisterPage,
    responses={
        200: {"content": {XLSX: {}}},
        422: {"model": ErrorBody, "description": f"工作簿超过 {MAX_ROWS} 行：请按下级单位导出"},
    },
    dependencies=[RecordsFullReads],
)
def survey_register(
    actor: RegisterReaders,
    campaign: CampaignInScope,
    unit: QueriedUnit,
    svc: ServicesDep,
    conn: Conn,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=500)] = 50,
    format: Annotated[Literal["json", "xlsx"], Query()] = "json",
) -> RegisterPage | Response:
    """The survey register (摸底登记) of `unit`'s subtree (default: the caller's unit): every
    family surveyed, applying or not. Identity numbers masked unless the caller holds pii.read;
    each row read in full is recorded (pii_access, by case or by register row). `format=xlsx`:
    the whole subtree in one workbook, at most 20,000 rows (page and page_size ignored)."""
    whole = format == "xlsx"
    rows, total, in_full = register_rows(
        conn,
        actor,
        campaign.id,
        unit.path,
        purpose=f"GET /api/campaigns/{{id}}/survey-register?format={format}",
        at=svc.clock.now(),
        page=page,
        page_size=None if whole else page_size,
    )
    if whole:
        content = workbook(rows, campaign_name=campaign.name, unit_name=unit.name)
        return xlsx_download(content, f"摸底登记_{unit.code}.xlsx")
    items = [
        RegisterEntryOut(
            id=r.id,
            unit=r.unit_code,
            unit_name=r.unit_name,
            worker_name=r.worker_name,
            worker_id_number=r.worker_id_number,
            student_name=r.student_name,
            student_id_number=r.student_id_number,
            section=r.section,
            applying=r.applying,
            archive_status=r.archive_status,
            archived_on=r.archived_on,
            remark=r.remark,
            case=r.case_id,
            registered_by=r.registered_by,
            registered_at=r.registered_at,
        )
        for r in rows
    ]
    return RegisterPage(
        items=items, total=total, page=page, page_size=page_size, pii_unmasked=in_full
    )
