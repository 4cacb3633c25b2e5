"""One row per follow-up visit (回访) of a case; the visit is also an entry on the case's chain."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import Column
from sqlmodel import Field, SQLModel

from jinqiu.storage.sqltypes import UTCDateTime


class VisitKind(StrEnum):
    """How the union got in touch (Weihai: 走访、座谈、谈心; Qingpu: 上门走访、定时联系)."""

    HOME = "home"  # 家访
    PHONE = "phone"  # 电话
    SCHOOL = "school"  # 到校


VISIT_KIND_LABELS: dict[VisitKind, str] = {
    VisitKind.HOME: "家访",
    VisitKind.PHONE: "电话",
    VisitKind.SCHOOL: "到校",
}


class Situation(StrEnum):
    """The student's situation as the visitor found it (Dalian: 了解掌握受助学生的学习、生活情况).
    `graduated` ends continuing aid: no renewal follows it."""

    STUDYING = "studying"  # 在读正常
    STRUGGLING = "struggling"  # 学业困难
    SUSPENDED = "suspended"  # 休学
    GRADUATED = "graduated"  # 毕业
    OTHER = "other"  # 其他


SITUATION_LABELS: dict[Situation, str] = {
    Situation.STUDYING: "在读正常",
    Situation.STRUGGLING: "学业困难",
    Situation.SUSPENDED: "休学",
    Situation.GRADUATED: "毕业",
    Situation.OTHER: "其他",
}

VISITOR_MAX = 50
NOTES_MAX = 2000


class FollowUpVisit(SQLModel, table=True):
    __tablename__ = "follow_up_visit"

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="aid_case.id", index=True)
    visited_on: dt.date
    kind: str = Field(max_length=10)
    visitor: str = Field(max_length=VISITOR_MAX)
    situation: str = Field(max_length=20)
    notes: str = Field(default="", max_length=NOTES_MAX)
    recorded_by: str = Field(max_length=64)
    recorded_at: dt.datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
