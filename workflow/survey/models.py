"""The survey register (摸底登记): the rows of the 摸底表 (Weihai 附件3: "新增和已建档困难职工都需填写
此表"), one per student surveyed, applying or not, and the files they came from.

A case is created from a register row that applies; the row keeps the case's id. The archive
status and date of the worker are the register's (the case copies them when created)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from jinqiu.storage.sqltypes import JSONType, UTCDateTime


class SurveyImport(SQLModel, table=True):
    """One spreadsheet imported for real (a dry run leaves no row)."""

    __tablename__ = "survey_import"
    __table_args__ = (Index("ix_survey_import_file", "campaign_id", "file_sha256"),)

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id")
    unit_id: int = Field(foreign_key="unit.id")
    filename: str = Field(max_length=200)
    file_sha256: str = Field(max_length=64)
    rows: int  # data rows in the file
    registered: int  # register rows written
    created: int  # cases created
    invalid: int  # rows refused (only with skip_invalid; otherwise nothing is written)
    imported_by: str = Field(max_length=64)
    imported_at: dt.datetime = Field(sa_column=Column(UTCDateTime, nullable=False))


class SurveyEntry(SQLModel, table=True):
    """A row of the 摸底表. Keyed by the student's identity number within the campaign, so the
    same row imported twice is one entry."""

    __tablename__ = "survey_entry"
    __table_args__ = (
        UniqueConstraint("campaign_id", "student_id_number", name="uq_survey_entry_student"),
        Index("ix_survey_entry_campaign_unit", "campaign_id", "unit_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id")
    unit_id: int = Field(foreign_key="unit.id")
    import_id: int | None = Field(default=None, foreign_key="survey_import.id")
    row_number: int  # in the file it came from
    row_hash: str = Field(
        max_length=64
    )  # of the row's parsed values: the same row again is no change
    worker_name: str = Field(max_length=50)
    worker_id_number: str = Field(max_length=18)
    student_name: str = Field(max_length=50)
    student_id_number: str = Field(max_length=18)
    # 在校生 ("in_school") or 今年参加中考或高考 ("exam_this_year"): the form's two sections
    section: str = Field(max_length=20)
    applying: bool  # 是否申请: a family surveyed but not applying stays on the register only
    archive_status: str = Field(max_length=10)  # deep / relative / accident / none (建档类型)
    archived_on: dt.date | None = None  # 建档日期
    remark: str | None = Field(default=None, max_length=500)  # 备注
    # The form's fields as parsed ({"worker": {...}, "student": {...}}), the case's input.
    form: dict[str, Any] = Field(sa_column=Column(JSONType, nullable=False))
    case_id: int | None = Field(default=None, foreign_key="aid_case.id")
    registered_by: str = Field(max_length=64)
    registered_at: dt.datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
