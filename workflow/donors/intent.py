"""A donor's intent as rules (Bozhou: "社会各界捐款资金可按照捐赠方意愿确定资金使用对象和标准"),
and the reasons a case does not match it — pure, read by the case guard `donor_intent_matches`.

Every rule is optional; an empty intent pays any case of the campaign. Rules combine with AND:
a level of education among `education_levels`, one of `categories`, a unit in the subtree of
`unit`, a student entering school this year (`freshman_only`: enrolled in the campaign's year),
and an amount no more than `max_per_student`."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from jinqiu.workflow.errors import Reason
from jinqiu.workflow.money import MAX_CASE_AMOUNT_FEN, format_yuan, yuan_to_fen

# A donor fund's row in `fund_source` is named `donor:<donor id>`: the approver chooses it by
# that name (`approve` with data.fund_source), and no approval without it takes from it.
DONOR_FUND_PREFIX = "donor:"

EducationLevel = Literal[
    "preschool",
    "primary",
    "junior",
    "senior",
    "vocational",
    "college",
    "undergraduate",
    "postgraduate",
]
EDUCATION_LABELS = {
    "preschool": "学前",
    "primary": "小学",
    "junior": "初中",
    "senior": "高中",
    "vocational": "中职",
    "college": "大专",
    "undergraduate": "本科",
    "postgraduate": "研究生",
}
CATEGORY_LABELS = {
    "migrant_worker": "困难农民工家庭子女",
    "gig_worker": "困难新就业形态劳动者家庭子女",
    "single_mother": "困难单亲女职工家庭子女",
    "model_worker": "困难劳模家庭子女",
}
Code = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[a-z0-9_]+$")]


def donor_fund_name(donor_id: int) -> str:
    return f"{DONOR_FUND_PREFIX}{donor_id}"


def is_donor_fund(source: str | None) -> bool:
    return source is not None and source.startswith(DONOR_FUND_PREFIX)


class DonorIntent(BaseModel):
    """The intent as the donor states it (input, and stored as JSON with the unit's path)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    education_levels: list[EducationLevel] = Field(default_factory=list, max_length=8)
    categories: list[Code] = Field(default_factory=list, max_length=10)
    unit: str | None = Field(default=None, min_length=1, max_length=64)  # a unit code: its subtree
    freshman_only: bool = False  # 当年考入: enrolled in the campaign's year
    max_per_student: Decimal | None = None  # yuan
    # The donor's words, as the agreement puts them ("资助X区考入大学的农民工子女").
    statement: str = Field(default="", max_length=500)

    @field_validator("max_per_student", mode="before")
    @classmethod
    def _exact(cls, v: object) -> object:
        if isinstance(v, float):
            raise ValueError("金额须写成整数或字符串，不能是浮点数")
        if v is not None and not isinstance(v, bool) and isinstance(v, (int, str, Decimal)):
            yuan_to_fen(v, max_fen=MAX_CASE_AMOUNT_FEN)  # raises a ValueError subclass
            if Decimal(str(v)) <= 0:
                raise ValueError("每人上限须大于 0")
        return v


@dataclass(frozen=True, slots=True)
class Intent:
    """A donor's intent compiled for the guard (the unit resolved to its path)."""

    donor_id: int
    donor_name: str
    education_levels: frozenset[str]
    categories: frozenset[str]
    unit_name: str | None
    unit_path: str | None
    freshman_only: bool
    max_per_student_fen: int | None

    @classmethod
    def from_stored(cls, donor_id: int, donor_name: str, stored: dict[str, Any]) -> Intent:
        cap = stored.get("max_per_student")
        return cls(
            donor_id=donor_id,
            donor_name=donor_name,
            education_levels=frozenset(stored.get("education_levels") or ()),
            categories=frozenset(stored.get("categories") or ()),
            unit_name=stored.get("unit_name"),
            unit_path=stored.get("unit_path"),
            freshman_only=bool(stored.get("freshman_only")),
            max_per_student_fen=None if cap is None else yuan_to_fen(str(cap)),
        )


def mismatches(
    intent: Intent,
    *,
    education_level: str,
    categories: tuple[str, ...],
    unit_path: str,
    enrollment_year: int | None,
    campaign_year: int,
    amount_fen: int | None,
) -> list[Reason]:
    """Every reason the case falls outside the donor's intent (empty: the donor pays it)."""
    who = f"捐赠方「{intent.donor_name}」"
    out: list[Reason] = []
    if intent.education_levels and education_level not in intent.education_levels:
        wanted = "、".join(EDUCATION_LABELS.get(e, e) for e in sorted(intent.education_levels))
        out.append(Reason("donor_education_level", f"{who}只资助{wanted}学生"))
    if intent.categories and not intent.categories & set(categories):
        wanted = "、".join(CATEGORY_LABELS.get(c, c) for c in sorted(intent.categories))
        out.append(Reason("donor_category", f"{who}只资助{wanted}"))
    if intent.unit_path is not None and not unit_path.startswith(intent.unit_path):
        out.append(
            Reason("donor_unit", f"{who}只资助{intent.unit_name or '指定单位'}所属的职工家庭")
        )
    if intent.freshman_only and enrollment_year != campaign_year:
        out.append(Reason("donor_freshman_only", f"{who}只资助{campaign_year}年当年考入的新生"))
    if (
        intent.max_per_student_fen is not None
        and amount_fen is not None
        and amount_fen > intent.max_per_student_fen
    ):
        out.append(
            Reason(
                "donor_max_per_student",
                f"助学金 {format_yuan(amount_fen)} 元超过{who}每人上限 "
                f"{format_yuan(intent.max_per_student_fen)} 元",
            )
        )
    return out
