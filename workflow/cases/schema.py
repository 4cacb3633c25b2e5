"""Case input (CONTRACT.md's worker and student fields), strict: unknown fields are refused."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from workflow.campaigns.schema import Category, EducationLevel
from workflow.identity import problem_with
from workflow.money import InvalidAmount, yuan_to_fen

ArchiveStatus = Literal["deep", "relative", "accident", "none"]


def _valid_id_number(v: str) -> str:
    problem = problem_with(v)
    if problem is not None:  # keeps the specific code (id_number_checksum, …) for programs
        raise PydanticCustomError(problem.code, problem.message)
    return v.strip().upper()


def _money(v: object) -> object:
    if v is None:
        return v
    if isinstance(v, float):
        raise ValueError("金额须写成整数或字符串，不能是浮点数")
    try:
        yuan_to_fen(v)  # type: ignore[arg-type]
    except InvalidAmount as exc:
        raise ValueError(str(exc)) from exc
    return v


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class WorkerIn(_Strict):
    name: str = Field(min_length=1, max_length=50)
    id_number: str
    phone: str | None = Field(default=None, max_length=30)
    work_unit: str | None = Field(default=None, max_length=200)
    address: str | None = Field(default=None, max_length=300)
    household_size: int | None = Field(default=None, ge=1, le=30)
    monthly_income_per_capita: Decimal | None = None
    employment_status: str | None = Field(default=None, max_length=50)
    hardship_cause: str | None = Field(default=None, max_length=500)
    archive_status: ArchiveStatus = "none"
    archived_on: dt.date | None = None
    categories: list[Category] = Field(default_factory=list)
    bank_card_number: str | None = Field(default=None, pattern=r"^\d{12,19}$")

    _id = field_validator("id_number")(_valid_id_number)
    _income = field_validator("monthly_income_per_capita", mode="before")(_money)


class StudentIn(_Strict):
    name: str = Field(min_length=1, max_length=50)
    id_number: str
    relation: str | None = Field(default=None, max_length=20)
    ethnicity: str | None = Field(default=None, max_length=20)
    political_status: str | None = Field(default=None, max_length=20)
    hukou_type: str | None = Field(default=None, max_length=20)
    health_status: str | None = Field(default=None, max_length=50)
    medical_insurance: str | None = Field(default=None, max_length=50)
    education_level: EducationLevel
    school: str | None = Field(default=None, max_length=200)
    major: str | None = Field(default=None, max_length=200)
    enrollment_year: int | None = Field(default=None, ge=1990, le=2100)
    program_years: int | None = Field(default=None, ge=1, le=10)
    exam_score: int | None = Field(default=None, ge=0, le=1000)
    admitted_school: str | None = Field(default=None, max_length=200)
    tier: str | None = Field(default=None, max_length=20)
    tuition_invoice: Decimal | None = None
    already_aided_by: str | None = Field(default=None, max_length=200)

    _id = field_validator("id_number")(_valid_id_number)
    _tuition = field_validator("tuition_invoice", mode="before")(_money)


class CaseCreate(_Strict):
    campaign: int
    unit: str
    worker: WorkerIn
    student: StudentIn
