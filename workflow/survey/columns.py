"""The columns of the survey spreadsheet: the 摸底表's fields (Weihai 附件3) and the worker's,
each with its Chinese header (and the spellings clerks use), where its value goes and how a
cell is read. The template is written from this table and files are matched against it."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Kind(StrEnum):
    TEXT = "text"
    ID_NUMBER = "id_number"
    INTEGER = "integer"
    YEAR = "year"
    MONEY = "money"
    DATE = "date"
    EDUCATION = "education"
    ARCHIVE = "archive"
    TIER = "tier"
    CATEGORIES = "categories"
    YES_NO = "yes_no"
    IGNORED = "ignored"  # on the form, derived here (年龄 from the identity number)


@dataclass(frozen=True, slots=True)
class Column:
    header: str  # as the template writes it
    target: str  # "worker.name", "student.school", "register.remark", "" for ignored
    kind: Kind = Kind.TEXT
    required: bool = False
    aliases: tuple[str, ...] = ()
    group: str = "职工"  # the template's merged group header above it
    note: str = ""


_STUDENT, _IN_SCHOOL, _EXAM = "学生", "下面由在校生填写", "下面仅今年参加中考或高考的学生需要填写"

COLUMNS: tuple[Column, ...] = (
    Column("职工姓名", "worker.name", required=True),
    Column(
        "职工身份证号码", "worker.id_number", Kind.ID_NUMBER, True, ("职工身份证号", "职工身份证")
    ),
    Column("联系电话", "worker.phone", aliases=("联系方式", "电话", "手机")),
    Column("工作单位", "worker.work_unit", aliases=("职工工作单位", "单位")),
    Column("家庭住址", "worker.address", aliases=("住址", "家庭地址")),
    Column("家庭人口", "worker.household_size", Kind.INTEGER, aliases=("家庭人口数", "家庭人数")),
    Column(
        "家庭月人均收入", "worker.monthly_income_per_capita", Kind.MONEY, aliases=("月人均收入",)
    ),
    Column("就业状况", "worker.employment_status"),
    Column("致困原因", "worker.hardship_cause", aliases=("家庭致困原因",)),
    Column("建档类型", "register.archive_status", Kind.ARCHIVE, aliases=("困难类型", "档案类型")),
    Column("建档日期", "register.archived_on", Kind.DATE, aliases=("建档时间",)),
    Column("职工类别", "worker.categories", Kind.CATEGORIES, aliases=("类别",)),
    Column("银行卡号", "worker.bank_card_number", aliases=("银行账号", "卡号")),
    Column("开户人", "worker.bank_card_holder", aliases=("户名", "持卡人")),
    Column("学生姓名", "student.name", required=True, group=_STUDENT),
    Column("与职工关系", "student.relation", group=_STUDENT),
    Column("年龄", "", Kind.IGNORED, group=_STUDENT, note="由身份证号码得出，可不填"),
    Column("民族", "student.ethnicity", group=_STUDENT),
    Column("政治面貌", "student.political_status", group=_STUDENT),
    Column(
        "身份证号码",
        "student.id_number",
        Kind.ID_NUMBER,
        True,
        ("学生身份证号码", "学生身份证号", "学生身份证"),
        _STUDENT,
    ),
    Column("户口类型", "student.hukou_type", group=_STUDENT),
    Column("健康状况", "student.health_status", group=_STUDENT),
    Column("医保状况", "student.medical_insurance", group=_STUDENT),
    Column("监护人", "student.guardian_name", group=_STUDENT),
    Column(
        "当前学历",
        "student.education_level",
        Kind.EDUCATION,
        True,
        ("学历",),
        _IN_SCHOOL,
        "今年中考或高考的学生填所录取的学历",
    ),
    Column("入学年份", "student.enrollment_year", Kind.YEAR, group=_IN_SCHOOL),
    Column("年制", "student.program_years", Kind.INTEGER, aliases=("学制",), group=_IN_SCHOOL),
    Column("学校", "student.school", aliases=("就读学校", "学校名称"), group=_IN_SCHOOL),
    Column("专业", "student.major", group=_IN_SCHOOL),
    Column(
        "中考/高考分数",
        "student.exam_score",
        Kind.INTEGER,
        aliases=("中考高考分数", "高考分数", "中考分数", "分数"),
        group=_EXAM,
    ),
    Column("录取学校", "student.admitted_school", group=_EXAM),
    Column("录取批次", "student.tier", Kind.TIER, aliases=("批次",), group=_EXAM),
    Column("备注", "register.remark", group="其他"),
    Column("是否申请", "register.applying", Kind.YES_NO, aliases=("是否申请助学",), group="其他"),
)

# The Chinese a clerk writes → the contract's codes (docs/CONTRACT.md's student and worker
# fields); the codes themselves are accepted too.
EDUCATION = {
    "学前": "preschool",
    "幼儿园": "preschool",
    "小学": "primary",
    "初中": "junior",
    "高中": "senior",
    "普通高中": "senior",
    "中职": "vocational",
    "中专": "vocational",
    "职高": "vocational",
    "技校": "vocational",
    "大专": "college",
    "专科": "college",
    "高职": "college",
    "本科": "undergraduate",
    "大学本科": "undergraduate",
    "研究生": "postgraduate",
    "硕士": "postgraduate",
    "博士": "postgraduate",
}
ARCHIVE = {
    "深度困难": "deep",
    "相对困难": "relative",
    "意外致困": "accident",
    "未建档": "none",
    "无": "none",
}
TIER = {"一本": "first", "二本": "second", "三本": "third"}
CATEGORIES = {
    "农民工": "migrant_worker",
    "新就业形态劳动者": "gig_worker",
    "单亲困难女职工": "single_mother",
    "单亲母亲": "single_mother",
    "困难劳模": "model_worker",
    "劳模": "model_worker",
}
YES_NO = {"是": True, "否": False, "y": True, "n": False, "yes": True, "no": False}
CATEGORY_SEPARATORS = re.compile(r"[、,，;；/／\s]+")

IN_SCHOOL, EXAM_THIS_YEAR = "in_school", "exam_this_year"  # the form's two sections
SECTION_LABELS = {IN_SCHOOL: "在校生", EXAM_THIS_YEAR: "今年中考/高考"}
ERROR_HEADER = "错误说明"


def normalized(text: str) -> str:
    """A header as compared: full-width folded (NFKC), no spaces, no required-marks (*)."""
    folded = unicodedata.normalize("NFKC", text)
    return "".join(ch for ch in folded if not ch.isspace() and ch not in "*").lower()


_TRAILING_NOTE = re.compile(r"\([^()]*\)$")  # 家庭月人均收入(元) → 家庭月人均收入


def _index() -> dict[str, Column]:
    index: dict[str, Column] = {}
    for column in COLUMNS:
        for name in (column.header, *column.aliases):
            index[normalized(name)] = column
    return index


_BY_NAME = _index()


def column_named(header: object) -> Column | None:
    if not isinstance(header, str):
        return None
    name = normalized(header)
    found = _BY_NAME.get(name)
    if found is None:
        found = _BY_NAME.get(_TRAILING_NOTE.sub("", name))
    return found


REQUIRED = tuple(c for c in COLUMNS if c.required)


def campaign_categories(declared: Sequence[Mapping[str, Any]] | None) -> dict[str, str]:
    """A campaign's categories (its file's `categories`) by code and by label, to their code."""
    named: dict[str, str] = {}
    for category in declared or ():
        code = str(category["code"])
        named[code] = code
        named[unicodedata.normalize("NFKC", str(category["label"])).strip()] = code
    return named
