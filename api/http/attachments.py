"""Documents of a case: upload (multipart), list, download (a recorded PII read)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Form, Request, Response, UploadFile
from pydantic import BaseModel

from jinqiu.api.deps import (
    AttachmentInScope,
    CaseInScope,
    Conn,
    CurrentActor,
    ServicesDep,
    api_router,
    declare_writes,
)
from jinqiu.api.errors import ERROR_RESPONSES
from jinqiu.workflow.attachments.content import MAX_BYTES
from jinqiu.workflow.attachments.service import (
    AttachmentOut,
    attach,
    list_attachments,
    read_attachment,
)
from jinqiu.workflow.attachments.store import store_of

router = api_router(prefix="/api/cases", tags=["attachments"], responses=ERROR_RESPONSES)


class AttachmentInfo(BaseModel):
    id: int
    kind: str
    kind_label: str
    filename: str
    media_type: str
    size: int
    sha256: str
    uploaded_by: str
    uploaded_at: dt.datetime


def _info(out: AttachmentOut) -> AttachmentInfo:
    return AttachmentInfo(**out.as_dict())


@router.post("/{case_id}/attachments", status_code=201, response_model=AttachmentInfo)
def upload(
    case_id: CaseInScope,
    file: UploadFile,
    kind: Annotated[str, Form(min_length=1, max_length=32)],
    actor: CurrentActor,
    svc: ServicesDep,
    conn: Conn,
    response: Response,
) -> AttachmentInfo:
    """Attach a PDF, JPEG or PNG (judged by its content) of at most 10 MB to the case. The same
    bytes as the same kind again: 200 with the existing attachment."""
    content = file.file.read(MAX_BYTES + 1)  # one byte over is enough to refuse it
    out, new = attach(
        conn,
        store_of(svc.settings, svc.engine.url),
        case_id=case_id,
        kind=kind,
        filename=file.filename,
        content=content,
        actor=actor,
        clock=svc.clock,
    )
    if not new:
        response.status_code = 200
    return _info(out)


@router.get("/{case_id}/attachments", response_model=list[AttachmentInfo])
def attachments(case_id: CaseInScope, actor: CurrentActor, conn: Conn) -> list[AttachmentInfo]:
    return [_info(a) for a in list_attachments(conn, case_id, actor)]


async def _records_the_read(request: Request) -> None:
    declare_writes(request, True)  # every download writes its pii_access row


@router.get(
    "/{case_id}/attachments/{attachment_id}",
    response_class=Response,
    dependencies=[Depends(_records_the_read)],
    responses={200: {"content": {"application/pdf": {}, "image/jpeg": {}, "image/png": {}}}},
)
def download(
    case_id: CaseInScope,
    attachment_id: AttachmentInScope,
    actor: CurrentActor,
    svc: ServicesDep,
    conn: Conn,
) -> Response:
    """The document itself, for reviewers and holders of pii.read; each download is recorded
    (pii_access), so this read is a write transaction."""
    out, content = read_attachment(
        conn,
        store_of(svc.settings, svc.engine.url),
        case_id=case_id,
        attachment_id=attachment_id,
        actor=actor,
        clock=svc.clock,
        purpose="GET /api/cases/{id}/attachments/{aid}",
    )
    return Response(
        content,
        media_type=out.media_type,
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(out.filename)}",
            "Cache-Control": "no-store",
        },
    )
