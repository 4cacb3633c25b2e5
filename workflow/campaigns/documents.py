"""The kinds of document an applicant attaches (录取通知书, 成绩单 …): the vocabulary a campaign
file's application types name their required documents in, and the attachments' kind."""

from __future__ import annotations

from enum import StrEnum


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
