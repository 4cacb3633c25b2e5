"""Request and response bodies of the HTTP API. Requests are strict: unknown fields are refused."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import Path, Query
from pydantic import BaseModel, ConfigDict, Field, field_validator

from jinqiu.api.errors import ErrorBody
from jinqiu.states import CaseEvent, CaseState
from jinqiu.workflow.campaigns.schema import Code
from jinqiu.workflow.cases.schema import (
    FormValue,
    StudentIn,
    StudentPatch,
    WorkerIn,
    WorkerPatch,
)
from jinqiu.workflow.validation import MAX_DB_INT as MAX_DB_INT  # one definition, re-exported
from jinqiu.workflow.validation import DbId as DbId

PathId = Annotated[int, Path(ge=1, le=MAX_DB_INT)]
QueryId = Annotated[int, Query(ge=1, le=MAX_DB_INT)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int


class UnitOut(BaseModel):
    code: str
    name: str
    level: str
    parent: str | None
    contact_name: str | None
    contact_email: str | None
    contact_phone: str | None
    webhook_url: str | None
    children: list[str]


class UnitPatch(Strict):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    contact_name: str | None = Field(default=None, max_length=100)
    contact_email: str | None = Field(
        default=None, max_length=200, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
    )
    contact_phone: str | None = Field(default=None, max_length=40)
    webhook_url: str | None = Field(default=None, max_length=500)

    @field_validator("name")
    @classmethod
    def _name_stays(cls, value: str | None) -> str:
        # Omit it to leave it; null would clear a unit's name (the contacts and webhook may be).
        if value is None:
            raise ValueError("不能为空")
        return value


class UserOut(BaseModel):
    username: str
    display_name: str
    unit: str
    roles: list[str]
    is_active: bool


class UserPatch(Strict):
    display_name: str | None = Field(default=None, max_length=100)
    roles: list[str] | None = Field(default=None, min_length=1)
    is_active: bool | None = None
    password: str | None = Field(default=None, min_length=8, max_length=200)


class FundOut(BaseModel):
    source: str
    budget: str
    reserved: str
    paid: str
    available: str


class CampaignOut(BaseModel):
    id: int
    name: str
    year: int
    organizer: str
    publicity_working_days: int
    approval_levels: list[str]
    phases: list[dict[str, Any]]
    deadlines: list[dict[str, Any]]
    reminders: dict[str, Any]
    eligibility: dict[str, Any]
    categories: list[dict[str, Any]] = Field(default_factory=list)
    application_types: list[dict[str, Any]] = Field(default_factory=list)
    aid_rules: list[dict[str, Any]]
    funds: list[FundOut]
    calendar: dict[str, Any]
    follow_up: dict[str, Any] | None = None
    warnings: list[dict[str, str]] = Field(
        default_factory=list,
        description="when created: what loads but will hurt, each {field, code, message} "
        "(publicity_after_payment_window)",
    )


class CampaignSummary(BaseModel):
    id: int
    name: str
    year: int
    organizer: str


class WorkerOut(BaseModel):
    name: str
    id_number: str
    gender: str
    birth_date: dt.date
    phone: str | None
    work_unit: str | None
    address: str | None
    household_size: int | None
    monthly_income_per_capita: str | None
    employment_status: str | None
    hardship_cause: str | None
    archive_status: str
    archived_on: dt.date | None
    archive_exited_on: dt.date | None = None  # 脱困退出, learnt on a follow-up visit
    categories: list[str]
    bank_card_number: str | None
    bank_card_holder: str | None = None
    bank_name: str | None = None


class StudentOut(BaseModel):
    name: str
    id_number: str
    gender: str
    birth_date: dt.date
    relation: str | None
    ethnicity: str | None
    political_status: str | None
    hukou_type: str | None
    health_status: str | None
    medical_insurance: str | None
    education_level: str
    school: str | None
    major: str | None
    enrollment_year: int | None
    program_years: int | None
    exam_score: int | None
    admitted_school: str | None
    tier: str | None
    tuition_invoice: str | None
    already_aided_by: str | None
    guardian_name: str | None = None


class CaseOut(BaseModel):
    id: int
    campaign: int
    unit: str
    unit_name: str
    state: CaseState
    version: int
    approval_step: int
    approval_level: str | None
    objection_open: bool
    return_reason: str | None
    publicity_started_on: dt.date | None
    publicity_ends_on: dt.date | None
    approved_amount: str | None
    fund_source: str | None
    paid_on: dt.date | None
    payment_failures: int
    payment_batch: int | None = None  # the batch whose bank file holds the case
    follow_up_visits: int = 0  # visits recorded in follow-up (回访)
    renewal_of: int | None = None  # 续助: the earlier case this one continues
    application_type: str | None = None  # the campaign's application type, and its form
    form: dict[str, Any] = Field(default_factory=dict)
    allowed_events: list[str]
    pii_unmasked: bool
    worker: WorkerOut
    student: StudentOut
    created_at: dt.datetime
    updated_at: dt.datetime


class CaseSummary(BaseModel):
    id: int
    campaign: int
    unit: str
    unit_name: str
    state: CaseState
    version: int
    approval_step: int
    objection_open: bool
    worker_name: str
    student_name: str
    education_level: str
    school: str | None
    approved_amount: str | None
    publicity_ends_on: dt.date | None
    return_reason: str | None
    updated_at: dt.datetime
    # 同等条件优先考虑: the campaign's priority criteria this case meets (新入学, 建档); a
    # list of one campaign that has them is in that order (the order funds are shared out in).
    priority: list[str] = []


class CaseList(BaseModel):
    items: list[CaseSummary]
    total: int
    page: int
    page_size: int


class CaseCreateIn(Strict):
    campaign: DbId
    unit: str = Field(min_length=1, max_length=64)
    worker: WorkerIn
    student: StudentIn
    # The campaign's application type and its form's answers (CONTRACT: the case fields);
    # required when the campaign declares types, checked by the service against them.
    application_type: Code | None = None
    form: dict[Code, FormValue] = Field(default_factory=dict, max_length=40)


class CasePatch(Strict):
    """Corrections while a case is in survey (补正). State, version, amounts and audit data are
    not fields a client sets: the version goes in If-Match."""

    worker: WorkerPatch | None = None
    student: StudentPatch | None = None


class EventIn(Strict):
    event: CaseEvent
    version: DbId
    opinion: str | None = Field(default=None, max_length=2000)
    data: dict[str, Any] | None = None


class EventOut(BaseModel):
    id: int
    state: CaseState
    version: int


class BulkCase(Strict):
    id: DbId
    version: DbId


class BulkEventIn(Strict):
    event: CaseEvent
    opinion: str | None = Field(default=None, max_length=2000)
    data: dict[str, Any] | None = None
    cases: list[BulkCase] = Field(min_length=1, max_length=500)


class BulkResult(BaseModel):
    id: int
    ok: bool
    state: CaseState | None = None
    version: int | None = None
    error: ErrorBody | None = None


class BulkOut(BaseModel):
    succeeded: int
    failed: int
    results: list[BulkResult]


class HistoryItem(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    event: str
    from_: str | None = Field(alias="from")
    to: str
    actor: str
    unit: str | None
    opinion: str | None
    data: dict[str, Any]
    at: dt.datetime


class Health(BaseModel):
    status: str
    sweep_errors: int = Field(
        default=0,
        description="campaigns the last scheduler sweep failed for (admins: GET /api/admin/sweep-errors)",
    )
