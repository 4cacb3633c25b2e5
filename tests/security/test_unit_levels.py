"""Finding 4: a unit's level is strictly below its parent's (province > city > district/industry
> street > grassroots), on every face that creates units: the service, the API and the CLI. A
district administrator cannot make a "city" under itself and give the final approval there."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from jinqiu.workflow.clock import ManualClock
from jinqiu.workflow.db import transaction
from jinqiu.workflow.errors import ValidationFailed
from jinqiu.workflow.units.models import Unit, UnitLevel
from jinqiu.workflow.units.service import UnitCreate, create_unit
from tests.api.conftest import World
from tests.api.test_cli import Cli
from tests.api.test_cli import rows as sqlite_rows
from tests.factories import weihai

unit_t = Unit.__table__  # type: ignore[attr-defined]
L = UnitLevel

# (parent, child) pairs that break the order: the same level, or a level above the parent's.
REFUSED = [
    ("WH-HC", L.CITY),  # the finding: a district makes a city under itself
    ("WH-HC", L.PROVINCE),
    ("WH-HC", L.DISTRICT),
    ("WH-HC", L.INDUSTRY),  # industry unions answer as districts do: a peer, not a child
    ("WH", L.CITY),
    ("WH", L.PROVINCE),
    ("WH-HC-001", L.GRASSROOTS),
    ("WH-HC-001", L.STREET),
    ("WH-SZ", L.DISTRICT),  # under an industry union
]
ACCEPTED = [
    ("WH", L.DISTRICT),
    ("WH", L.INDUSTRY),
    ("WH", L.STREET),
    ("WH", L.GRASSROOTS),  # 市直各基层工会: grassroots unions directly under the city
    ("WH-HC", L.STREET),
    ("WH-HC", L.GRASSROOTS),
    ("WH-SZ", L.GRASSROOTS),
]


def unit_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(unit_t)).scalar_one())


class TestTheService:
    @pytest.mark.parametrize(("parent", "level"), REFUSED)
    def test_a_level_not_below_the_parents_is_refused_naming_the_level(
        self, db: Engine, clock: ManualClock, parent: str, level: UnitLevel
    ) -> None:
        weihai(db, clock)
        before = unit_count(db)
        spec = UnitCreate(code="NEW-UNIT", name="新单位", level=level, parent=parent)
        with pytest.raises(ValidationFailed) as caught, transaction(db) as conn:
            create_unit(conn, spec)
        [problem] = caught.value.details
        assert (problem["field"], problem["code"]) == ("level", "level_not_below_parent")
        assert unit_count(db) == before

    @pytest.mark.parametrize(("parent", "level"), ACCEPTED)
    def test_a_level_below_the_parents_is_accepted(
        self, db: Engine, clock: ManualClock, parent: str, level: UnitLevel
    ) -> None:
        weihai(db, clock)
        with transaction(db) as conn:
            create_unit(
                conn, UnitCreate(code="NEW-UNIT", name="新单位", level=level, parent=parent)
            )
        with db.connect() as conn:
            path = conn.execute(
                select(unit_t.c.path).where(unit_t.c.code == "NEW-UNIT")
            ).scalar_one()
        assert path.endswith(f"/{parent}/NEW-UNIT/")

    def test_the_order_is_strict_and_total_over_the_levels(self) -> None:
        from jinqiu.workflow.units.models import level_may_sit_under

        # Every level sits under exactly the levels above it; none under itself.
        order = [L.PROVINCE, L.CITY, L.DISTRICT, L.STREET, L.GRASSROOTS]
        for i, parent in enumerate(order):
            for j, child in enumerate(order):
                assert level_may_sit_under(child, parent) == (j > i), (child, parent)
        assert not level_may_sit_under(L.INDUSTRY, L.DISTRICT)
        assert not level_may_sit_under(L.DISTRICT, L.INDUSTRY)
        assert level_may_sit_under(L.STREET, L.INDUSTRY)


class TestTheApi:
    def test_a_district_admin_cannot_create_a_city_under_itself(self, world: World) -> None:
        response = world.client.post(
            "/api/units",
            json={"code": "WH-HC-FAKE", "name": "假市总工会", "level": "city", "parent": "WH-HC"},
            headers=world.as_("admin.wh-hc"),
        )
        assert response.status_code == 422, response.text
        body = response.json()
        assert body["code"] == "validation_error"
        assert [(d["field"], d["code"]) for d in body["details"]] == [
            ("level", "level_not_below_parent")
        ]
        assert (
            world.client.get("/api/units/WH-HC-FAKE", headers=world.as_("admin.wh")).status_code
            == 404
        )

    def test_a_district_admin_may_create_a_grassroots_union_under_itself(
        self, world: World
    ) -> None:
        response = world.client.post(
            "/api/units",
            json={
                "code": "WH-HC-NEW",
                "name": "环翠区新基层工会",
                "level": "grassroots",
                "parent": "WH-HC",
            },
            headers=world.as_("admin.wh-hc"),
        )
        assert response.status_code == 201, response.text

    @pytest.mark.parametrize("change", [{"level": "city"}, {"parent": "WH"}, {"parent": None}])
    def test_patch_neither_relevels_nor_moves_a_unit(
        self, world: World, change: dict[str, object]
    ) -> None:
        response = world.client.patch(
            "/api/units/WH-HC-001", json=change, headers=world.as_("admin.wh-hc")
        )
        assert response.status_code == 422, response.text
        [field] = change
        assert [d["field"] for d in response.json()["details"]] == [field]
        unit = world.client.get("/api/units/WH-HC-001", headers=world.as_("admin.wh")).json()
        assert (unit["level"], unit["parent"]) == ("grassroots", "WH-HC")


def test_the_cli_refuses_a_city_under_a_district(cli: Cli, seeded: int, sqlite_file: Path) -> None:
    run = cli("unit create --code WH-HC-FAKE --name 假市总工会 --level city --parent WH-HC")
    assert run.code == 2, run
    assert "Traceback" not in run.err
    assert "level" in run.err and "须低于上级单位" in run.err
    assert sqlite_rows(sqlite_file, "SELECT count(*) FROM unit WHERE code = 'WH-HC-FAKE'") == [(0,)]
