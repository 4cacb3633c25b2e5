"""Case input (docs/CONTRACT.md's worker and student fields), strict: unknown fields are refused.

The field types here are the one validation of a case's input: the API's create and patch
bodies and the CLI/demo all use them. Numbers are bounded before they reach the database
(money by workflow/money.py's maxima, counts by the form's sane ranges, JSON integers strictly);
full-width digits (what a Chinese input method types) are normalised to ASCII in identity and
bank-card numbers, any other non-ASCII digit is refused."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from jinqiu.workflow.campaigns.schema import Code, EducationLevel
from jinqiu.workflow.errors import ValidationFailed
from jinqiu.workflow.identity import parse_id_number, problem_with
from jinqiu.workflow.money import MAX_CASE_AMOUNT_FEN, InvalidAmount, yuan_to_fen
from jinqiu.workflow.validation import DbId

ArchiveStatus = Literal["deep", "relative", "accident", "none"]
EARLIEST_ARCHIVE = dt.date(1990, 1, 1)  # hardship archives (困难职工档案) began in the 1990s
_FULL_WIDTH = str.maketrans({**{chr(0xFF10 + d): str(d) for d in range(10)}, "Ｘ": "X", "ｘ": "x"})


def ascii_digits(v: object) -> object:
    """'６２２２…' → '6222…'; other characters are left for the pattern to refuse."""
    return v.translate(_FULL_WIDTH) if isinstance(v, str) else v


def _valid_id_number(v: str) -> str:
    v = str(ascii_digits(v))
    problem = problem_with(v)
    if problem is not None:  # keeps the specific code (id_number_checksum, …) for programs
        raise PydanticCustomError(problem.code, problem.message)
    return v.strip().upper()


def case_money(v: object) -> object:
    """Yuan of one case (at most MAX_CASE_AMOUNT_YUAN), checked before any arithmetic."""
    if v is None:
        return v
    if isinstance(v, float):
        raise ValueError("金额须写成整数或字符串，不能是浮点数")
    try:
        yuan_to_fen(v, max_fen=MAX_CASE_AMOUNT_FEN)  # type: ignore[arg-type]
    except InvalidAmount as exc:
        raise ValueError(str(exc)) from exc
    return v


def _archived_in_range(v: dt.date | None) -> dt.date | None:
    if v is not None and v < EARLIEST_ARCHIVE:
        raise PydanticCustomError("date_too_early", "建档日期不能早于 1990-01-01")
    return v


BankCard = Annotated[str, BeforeValidator(ascii_digits), Field(pattern=r"^[0-9]{12,19}$")]
ArchivedOn = Annotated[dt.date, AfterValidator(_archived_in_range)]
CaseMoney = Annotated[Decimal, BeforeValidator(case_money)]
HouseholdSize = Annotated[int, Field(strict=True, ge=1, le=30)]
EnrollmentYear = Annotated[int, Field(strict=True, ge=1990, le=2100)]
ProgramYears = Annotated[int, Field(strict=True, ge=1, le=10)]
ExamScore = Annotated[int, Field(strict=True, ge=0, le=1000)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class WorkerIn(_Strict):
    name: str = Field(min_length=1, max_length=50)
    id_number: str
    phone: str | None = Field(default=None, max_length=30)
    work_unit: str | None = Field(default=None, max_length=200)
    address: str | None = Field(default=None, max_length=300)
    household_size: HouseholdSize | None = None
    monthly_income_per_capita: CaseMoney | None = None
    employment_status: str | None = Field(default=None, max_length=50)
    hardship_cause: str | None = Field(default=None, max_length=500)
    archive_status: ArchiveStatus = "none"
    archived_on: ArchivedOn | None = None
    # Codes of the campaign's categories (checked against its list when the case is created).
    categories: list[Code] = Field(default_factory=list, max_length=10)
    bank_card_number: BankCard | None = None
    bank_card_holder: str | None = Field(default=None, min_length=1, max_length=50)  # 户名

    _id = field_validator("id_number")(_valid_id_number)


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
    enrollment_year: EnrollmentYear | None = None
    program_years: ProgramYears | None = None
    exam_score: ExamScore | None = None
    admitted_school: str | None = Field(default=None, max_length=200)
    tier: str | None = Field(default=None, max_length=20)
    tuition_invoice: CaseMoney | None = None
    already_aided_by: str | None = Field(default=None, max_length=200)
    guardian_name: str | None = Field(default=None, min_length=1, max_length=50)  # 监护人

    _id = field_validator("id_number")(_valid_id_number)


# The worker's fields a correction may change (comments, not docstrings: these are the API's
# schemas too). Not the identity number, nor what follows from it (gender, birth date): a wrong
# one means withdrawing and applying again.
class WorkerPatch(_Strict):
    name: str | None = Field(default=None, min_length=1, max_length=50)
    phone: str | None = Field(default=None, max_length=30)
    work_unit: str | None = Field(default=None, max_length=200)
    address: str | None = Field(default=None, max_length=300)
    household_size: HouseholdSize | None = None
    employment_status: str | None = Field(default=None, max_length=50)
    hardship_cause: str | None = Field(default=None, max_length=500)
    archive_status: str | None = Field(default=None, pattern=r"^(deep|relative|accident|none)$")
    archived_on: ArchivedOn | None = None
    bank_card_number: BankCard | None = None
    bank_card_holder: str | None = Field(default=None, max_length=50)

    @field_validator("name", "archive_status")
    @classmethod
    def _required_on_the_form(cls, value: str | None) -> str:
        # Omit a field to leave it; null would clear what the survey form requires.
        if value is None:
            raise ValueError("不能为空")
        return value


# The student's fields a correction may change. Not the identity number: it is the key of the
# one-application-per-student rule (aid_case.student_id_number, which must stay equal to
# student.id_number), so it never changes under an existing case; nor the education level,
# which decides the amount.
class StudentPatch(_Strict):
    # Every field may be cleared with null: none of them is required on the survey form.
    school: str | None = Field(default=None, max_length=200)
    major: str | None = Field(default=None, max_length=200)
    enrollment_year: EnrollmentYear | None = None
    program_years: ProgramYears | None = None
    exam_score: ExamScore | None = None
    admitted_school: str | None = Field(default=None, max_length=200)
    tier: str | None = Field(default=None, max_length=20)
    already_aided_by: str | None = Field(default=None, max_length=200)
    guardian_name: str | None = Field(default=None, max_length=50)


class CaseAmendment(_Strict):
    """A correction (补正): what `amend_case` writes, whoever calls it."""

    worker: WorkerPatch = Field(default_factory=WorkerPatch)
    student: StudentPatch = Field(default_factory=StudentPatch)


# An answer on the application form: text, a yes/no, or a whole number (a year, a count).
FormValue = (
    Annotated[bool, Field(strict=True)]
    | Annotated[int, Field(strict=True, ge=0, le=1_000_000)]
    | Annotated[str, Field(max_length=500)]
)


class CaseCreate(_Strict):
    campaign: DbId
    unit: str = Field(min_length=1, max_length=64)
    worker: WorkerIn
    student: StudentIn
    # The campaign's application type (its form fields and required documents); required when
    # the campaign declares types.
    application_type: Code | None = None
    form: dict[Code, FormValue] = Field(default_factory=dict, max_length=40)


def not_after_today(today: dt.date, *, worker: dict[str, Any], student: dict[str, Any]) -> None:
    """What only the clock can refuse: a birth date (from the identity number) or an archive
    date after today. Raises ValidationFailed naming every such field."""
    details = []
    for prefix, values in (("worker", worker), ("student", student)):
        number = values.get("id_number")
        if isinstance(number, str) and parse_id_number(number).birth_date > today:
            details.append(
                {
                    "field": f"{prefix}.id_number",
                    "code": "id_number_birth_date",
                    "message": "身份证号码中的出生日期晚于今天",
                }
            )
        archived = values.get("archived_on")
        if isinstance(archived, dt.date) and archived > today:
            details.append(
                {
                    "field": f"{prefix}.archived_on",
                    "code": "date_in_future",
                    "message": "建档日期不能晚于今天",
                }
            )
    if details:
        raise ValidationFailed(f"输入有误：{details[0]['field']} {details[0]['message']}", details)
