"""One row per document attached to a case; the bytes live in the file store by SHA-256."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from jinqiu.storage.sqltypes import UTCDateTime


class DocumentKind(StrEnum):
    """The documents the notices ask applicants for (Bozhou 附件1/2, Dalian 附件1/2)."""

    ADMISSION_NOTICE = "admission_notice"  # 录取通知书
    TRANSCRIPT = "transcript"  # 成绩单
    ENROLMENT_PROOF = "enrolment_proof"  # 在读证明 / 学籍证明
    HOUSEHOLD_REGISTER = "household_register"  # 户口簿
    IDENTITY_CARD = "identity_card"  # 身份证
    HARDSHIP_PROOF = "hardship_proof"  # 困难证明
    TUITION_INVOICE = "tuition_invoice"  # 学费发票
    COMMITMENT = "commitment"  # 授权承诺书
    OTHER = "other"  # 其他


DOCUMENT_LABELS: dict[DocumentKind, str] = {
    DocumentKind.ADMISSION_NOTICE: "录取通知书",
    DocumentKind.TRANSCRIPT: "成绩单",
    DocumentKind.ENROLMENT_PROOF: "在读证明",
    DocumentKind.HOUSEHOLD_REGISTER: "户口簿",
    DocumentKind.IDENTITY_CARD: "身份证",
    DocumentKind.HARDSHIP_PROOF: "困难证明",
    DocumentKind.TUITION_INVOICE: "学费发票",
    DocumentKind.COMMITMENT: "授权承诺书",
    DocumentKind.OTHER: "其他",
}


class Attachment(SQLModel, table=True):
    __tablename__ = "attachment"
    # The same content attached twice as the same kind is one attachment.
    __table_args__ = (UniqueConstraint("case_id", "kind", "sha256", name="uq_attachment_content"),)

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="aid_case.id", index=True)
    kind: str = Field(max_length=32)
    filename: str = Field(max_length=200)  # as uploaded, cleaned: shown, never used as a path
    media_type: str = Field(max_length=32)  # sniffed from the content
    size: int
    sha256: str = Field(max_length=64)
    uploaded_by: str = Field(max_length=64)
    uploaded_at: dt.datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
