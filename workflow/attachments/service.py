"""Attaching a document to a case, listing a case's documents, and reading one (a PII read).

An attachment is part of the case's record: adding one appends an `attach` entry to the case's
audit chain (kind, file name, size, SHA-256) and bumps its version, in the caller's transaction,
like a correction of the survey form. Reading the bytes of one needs `pii.read` or the right to
review cases, and writes a pii_access row: the documents are identity cards, household
registers and school records."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, insert, select

from jinqiu.states import MACHINE, Permission
from jinqiu.states.machine import Kind
from jinqiu.workflow.attachments.content import media_type_of
from jinqiu.workflow.attachments.models import DOCUMENT_LABELS, Attachment, DocumentKind
from jinqiu.workflow.attachments.store import AttachmentStore
from jinqiu.workflow.audit.models import AuditEntry, PiiAccess
from jinqiu.workflow.cases.models import Case
from jinqiu.workflow.cases.service import append_case_entry
from jinqiu.workflow.clock import Clock
from jinqiu.workflow.errors import (
    EventNotAllowed,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from jinqiu.workflow.masking import masked_text
from jinqiu.workflow.roles import Actor, Grant
from jinqiu.workflow.units.models import Unit

attachment_t = Attachment.__table__  # type: ignore[attr-defined]
audit_t = AuditEntry.__table__  # type: ignore[attr-defined]
case_t = Case.__table__  # type: ignore[attr-defined]
pii_t = PiiAccess.__table__  # type: ignore[attr-defined]
unit_t = Unit.__table__  # type: ignore[attr-defined]

ATTACH_EVENT = "attach"  # in the case's audit chain, beside create and amend
FILENAME_MAX = 200
_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\:*?\"<>|]")


@dataclass(frozen=True, slots=True)
class AttachmentOut:
    id: int
    case_id: int
    kind: str
    kind_label: str
    filename: str
    media_type: str
    size: int
    sha256: str
    uploaded_by: str
    uploaded_at: dt.datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "kind_label": self.kind_label,
            "filename": self.filename,
            "media_type": self.media_type,
            "size": self.size,
            "sha256": self.sha256,
            "uploaded_by": self.uploaded_by,
            "uploaded_at": self.uploaded_at,
        }


def attach(
    conn: Connection,
    store: AttachmentStore,
    *,
    case_id: int,
    kind: str,
    filename: str | None,
    content: bytes,
    actor: Actor,
    clock: Clock,
) -> tuple[AttachmentOut, bool]:
    """The attachment and whether it is new (the same bytes as the same kind: the existing one).
    Refusals: PermissionDenied, NotFound (outside the subtree), ValidationFailed (kind, empty),
    TooLarge, UnsupportedMediaType (by content), EventNotAllowed (the case has ended)."""
    if not (actor.may(Permission.SUBMIT_CASE) or actor.may(Permission.REVIEW_CASE)):
        raise PermissionDenied("当前角色无权上传材料")
    document = _kind(kind)
    case = _case(conn, case_id, actor)
    if not may_attach(actor, case.state):
        label = MACHINE.state_labels.get(case.state, case.state)
        raise EventNotAllowed(f"案件已{label}，不能再上传材料", {"state": case.state})
    media_type = media_type_of(content)  # before anything is written
    digest = store.put(content)
    existing = conn.execute(
        select(attachment_t).where(
            attachment_t.c.case_id == case_id,
            attachment_t.c.kind == document.value,
            attachment_t.c.sha256 == digest,
        )
    ).first()
    if existing is not None:
        return _out(existing, actor), False
    now = clock.now()
    name = clean_filename(filename, media_type)
    row = {
        "case_id": case_id,
        "kind": document.value,
        "filename": name,
        "media_type": media_type,
        "size": len(content),
        "sha256": digest,
        "uploaded_by": actor.username,
        "uploaded_at": now,
    }
    new_id = conn.execute(
        insert(attachment_t).values(**row).returning(attachment_t.c.id)
    ).scalar_one()
    data = {"attachment": new_id, "kind": document.value, "filename": name,
            "size": len(content), "sha256": digest}  # fmt: skip
    append_case_entry(conn, case, actor=actor, event=ATTACH_EVENT, opinion=None, data=data, at=now)
    saved = conn.execute(select(attachment_t).where(attachment_t.c.id == new_id)).one()
    return _out(saved, actor), True


def may_attach(actor: Actor, state: str) -> bool:
    """Who enters or checks applications, while the case is still open."""
    return (actor.may(Permission.SUBMIT_CASE) or actor.may(Permission.REVIEW_CASE)) and (
        MACHINE.state(state).kind is Kind.OPEN
    )


def may_read_documents(actor: Actor) -> bool:
    return actor.may(Grant.READ_PII) or actor.may(Permission.REVIEW_CASE)


def list_attachments(conn: Connection, case_id: int, actor: Actor) -> list[AttachmentOut]:
    """A case's documents (what they are, not what they say), oldest first."""
    _case(conn, case_id, actor)
    rows = conn.execute(
        select(attachment_t).where(attachment_t.c.case_id == case_id).order_by(attachment_t.c.id)
    )
    return [_out(r, actor) for r in rows]


def read_attachment(
    conn: Connection,
    store: AttachmentStore,
    *,
    case_id: int,
    attachment_id: int,
    actor: Actor,
    clock: Clock,
    purpose: str,
) -> tuple[AttachmentOut, bytes]:
    """The document's bytes, for reviewers and holders of pii.read, recorded in pii_access."""
    _case(conn, case_id, actor)
    # Those who check applications read their documents; so do pii.read holders. Never clerks
    # of other units' cases (404 above), and every read is recorded.
    if not may_read_documents(actor):
        raise PermissionDenied(
            "查看申请材料须有审核或查看个人信息的权限", {"permission": Grant.READ_PII.value}
        )
    row = conn.execute(
        select(attachment_t).where(
            attachment_t.c.id == attachment_id, attachment_t.c.case_id == case_id
        )
    ).first()
    if row is None:
        raise NotFound(f"附件 {attachment_id} 不存在")
    content = store.get(row.sha256)
    conn.execute(
        insert(pii_t).values(
            case_id=case_id,
            actor=actor.username,
            actor_unit=actor.unit_code,
            fields=[f"attachment.{row.kind}"],
            purpose=purpose[:64],
            at=clock.now(),
        )
    )
    return _out(row, actor), content


def clean_filename(filename: str | None, media_type: str) -> str:
    """The uploaded name without directories, control or path characters, bounded; a name
    only for people (the store never uses it)."""
    base = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = _UNSAFE.sub("_", unicodedata.normalize("NFC", base)).strip(" .")
    if not base:
        base = "附件" + {"application/pdf": ".pdf", "image/jpeg": ".jpg"}.get(media_type, ".png")
    return base[-FILENAME_MAX:]


def _kind(kind: str) -> DocumentKind:
    try:
        return DocumentKind(kind)
    except ValueError:
        raise ValidationFailed(
            f"未知的材料类型：{kind[:40]}",
            [
                {
                    "field": "kind",
                    "code": "enum",
                    "message": "可选："
                    + "、".join(f"{k.value}（{label}）" for k, label in DOCUMENT_LABELS.items()),
                }
            ],
        ) from None


def _case(conn: Connection, case_id: int, actor: Actor) -> Any:
    row = conn.execute(
        select(
            case_t.c.id,
            case_t.c.state,
            case_t.c.version,
            case_t.c.audit_seq,
            case_t.c.audit_head,
            unit_t.c.path,
        )
        .join(unit_t, unit_t.c.id == case_t.c.unit_id)
        .where(case_t.c.id == case_id)
    ).first()
    if row is None or not actor.sees(row.path):
        raise NotFound(f"案件 {case_id} 不存在")
    return row


def _out(row: Any, actor: Actor) -> AttachmentOut:
    """A file name may carry an identity number ("身份证3710….jpg"): masked without pii.read."""
    return AttachmentOut(
        id=row.id,
        case_id=row.case_id,
        kind=row.kind,
        kind_label=DOCUMENT_LABELS[DocumentKind(row.kind)],
        filename=row.filename if actor.may(Grant.READ_PII) else masked_text(row.filename),
        media_type=row.media_type,
        size=row.size,
        sha256=row.sha256,
        uploaded_by=row.uploaded_by,
        uploaded_at=row.uploaded_at,
    )
