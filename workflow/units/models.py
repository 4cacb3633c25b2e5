"""Union units: a tree (province / city / district / industry / street / grassroots)."""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import ColumnElement, and_
from sqlmodel import Field, SQLModel


class UnitLevel(StrEnum):
    PROVINCE = "province"  # 省总工会
    CITY = "city"  # 市总工会
    DISTRICT = "district"  # 区市县总工会
    INDUSTRY = "industry"  # 产业工会 (answers as a district does)
    STREET = "street"  # 街道 / 乡镇工会 (answers as a grassroots union does)
    GRASSROOTS = "grassroots"  # 企事业单位 / 基层工会


# The one order of the levels: a unit sits strictly below its parent (rank greater than the
# parent's). District and industry unions are peers, as are none of the others.
LEVEL_RANK: dict[UnitLevel, int] = {
    UnitLevel.PROVINCE: 0,
    UnitLevel.CITY: 1,
    UnitLevel.DISTRICT: 2,
    UnitLevel.INDUSTRY: 2,
    UnitLevel.STREET: 3,
    UnitLevel.GRASSROOTS: 4,
}


def level_may_sit_under(child: UnitLevel | str, parent: UnitLevel | str) -> bool:
    """True when a unit of level `child` may have a parent of level `parent`."""
    return LEVEL_RANK[UnitLevel(child)] > LEVEL_RANK[UnitLevel(parent)]


# Which approval level a unit may act at: Dalian's forms pair district with industry unions
# and enterprise with street unions.
ACTS_AS: dict[UnitLevel, str] = {
    UnitLevel.PROVINCE: "province",
    UnitLevel.CITY: "city",
    UnitLevel.DISTRICT: "district",
    UnitLevel.INDUSTRY: "district",
    UnitLevel.STREET: "grassroots",
    UnitLevel.GRASSROOTS: "grassroots",
}


def in_subtree(path_column: ColumnElement[str], prefix: str) -> ColumnElement[bool]:
    """Units whose materialised path starts with `prefix` ("/WH/WH-HC/"), as a range the path
    index can serve on both databases (LIKE 'prefix%' cannot: SQLite's LIKE ignores case and
    PostgreSQL's C.UTF-8 collation rules it out). Paths end in "/", and the next character,
    "0", bounds exactly the strings that continue the prefix."""
    lower, upper = subtree_bounds(prefix)
    return and_(path_column >= lower, path_column < upper)


def subtree_bounds(prefix: str) -> tuple[str, str]:
    """[lower, upper) of the paths in the subtree at `prefix` (for SQL written by hand)."""
    return prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1)


class Unit(SQLModel, table=True):
    __tablename__ = "unit"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=64, unique=True)
    name: str = Field(max_length=200)
    level: str = Field(max_length=20)
    parent_id: int | None = Field(default=None, foreign_key="unit.id", index=True)
    # Materialised path of codes, "/WH/WH-HC/WH-HC-001/": a subtree is one indexed range
    # (in_subtree), and the counters and scopes read a unit's ancestors from it without a join.
    path: str = Field(max_length=400, index=True)
    contact_name: str | None = Field(default=None, max_length=100)
    contact_email: str | None = Field(default=None, max_length=200)
    contact_phone: str | None = Field(default=None, max_length=40)
    webhook_url: str | None = Field(default=None, max_length=500)
