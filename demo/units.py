"""The Weihai union tree the demo runs on: the city union, its districts and industry unions
(the notice's addressees) and their grassroots unions."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, insert

from jinqiu.workflow.units.counts import rebuild as rebuild_unit_counts
from jinqiu.workflow.units.models import Unit, UnitLevel
from jinqiu.workflow.units.service import child_path

unit_table = Unit.__table__  # type: ignore[attr-defined]

CITY = ("WH", "威海市总工会")
DISTRICTS = (
    ("WH-HC", "环翠区总工会", UnitLevel.DISTRICT),
    ("WH-WD", "文登区总工会", UnitLevel.DISTRICT),
    ("WH-RC", "荣成市总工会", UnitLevel.DISTRICT),
    ("WH-RS", "乳山市总工会", UnitLevel.DISTRICT),
    ("WH-GQ", "国家级开发区总工会", UnitLevel.DISTRICT),
    ("WH-SZ", "市直机关工会工委", UnitLevel.INDUSTRY),
)
# 市直机关工会工委: the city-direct (市直) unions the Weihai notice's 7/31 duty falls on.
CITY_DIRECT = "WH-SZ"
GRASSROOTS_KINDS = (
    "纺织公司工会",
    "机械厂工会",
    "水产公司工会",
    "街道总工会",
    "物业公司工会",
    "汽车配件公司工会",
    "食品公司工会",
    "建筑公司工会",
)


@dataclass(frozen=True)
class Tree:
    city: str
    districts: list[str]
    grassroots: list[str]  # codes, in district order


def seed_weihai_tree(conn: Connection, *, grassroots_per_district: int = 7) -> Tree:
    city_code, city_name = CITY
    rows = [
        {
            "code": city_code,
            "name": city_name,
            "level": UnitLevel.CITY.value,
            "parent_id": None,
            "path": child_path("/", city_code),
            "contact_name": "郭凤华",
            "contact_email": "whzhfwzx@example.org",
        }
    ]
    conn.execute(insert(unit_table), rows)
    city_id = conn.execute(unit_table.select().where(unit_table.c.code == city_code)).first()
    assert city_id is not None
    districts: list[str] = []
    grassroots: list[str] = []
    for d_code, d_name, level in DISTRICTS:
        d_path = child_path(child_path("/", city_code), d_code)
        d_id = conn.execute(
            insert(unit_table)
            .values(
                code=d_code,
                name=d_name,
                level=level.value,
                parent_id=city_id.id,
                path=d_path,
                contact_name=f"{d_name}帮扶中心",
                contact_email=f"{d_code.lower()}@example.org",
            )
            .returning(unit_table.c.id)
        ).scalar_one()
        districts.append(d_code)
        rows = []
        for i in range(grassroots_per_district):
            g_code = f"{d_code}-{i + 1:03d}"
            kind = GRASSROOTS_KINDS[i % len(GRASSROOTS_KINDS)]
            rows.append(
                {
                    "code": g_code,
                    "name": f"{d_name[:-3]}{kind}" if i % 3 else f"{d_name[:-3]}第{i + 1}{kind}",
                    "level": (UnitLevel.STREET if "街道" in kind else UnitLevel.GRASSROOTS).value,
                    "parent_id": d_id,
                    "path": child_path(d_path, g_code),
                    "contact_name": "经办人",
                    "contact_email": f"{g_code.lower()}@example.org",
                }
            )
            grassroots.append(g_code)
        conn.execute(insert(unit_table), rows)
    rebuild_unit_counts(conn)  # the tree was inserted around create_unit
    return Tree(city=city_code, districts=districts, grassroots=grassroots)
