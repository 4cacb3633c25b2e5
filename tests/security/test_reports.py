"""Report figures (issue 8, finding 9): each report kind declares its items with type and range;
unknown kinds and items, wrong types, negatives and absurd values are refused naming the item; a
resubmission is the next revision and only the latest counts, once, in the statistics; figures
are never summed across kinds. SQLite and PostgreSQL.

The items typed in are those no record holds (Qingpu's 托管班 06A/06A+, job fairs and posts
offered); 勤工俭学 and 阳光就业 are counted from their registers (tests/workflow/employment)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import text

from jinqiu.workflow.db import transaction
from tests.api.conftest import World


def file_report(
    w: World, figures: Any, *, unit: str = "WH-HC", kind: str = "statistics", who: str | None = None
) -> Any:
    return w.client.post(
        f"/api/campaigns/{w.campaign}/reports",
        json={"unit": unit, "kind": kind, "note": "统计表", "figures": figures},
        headers=w.as_(who or f"manager.{unit.lower()}"),
    )


@pytest.fixture(autouse=True)
def qingpu_table_shown(world: World) -> None:
    """These tests file 托管班 figures (Qingpu's 06A, typed in: no record holds them), so the
    campaign shows Qingpu's table beside its own (a campaign serves only the tables it names)."""
    shown = {
        "tables": ["weihai_2024_a1", "weihai_2024_a2", "qingpu_2017_aid"],
        "local_decision": True,
    }
    with transaction(world.engine) as conn:
        conn.execute(
            text("UPDATE campaign SET statistics = :s WHERE id = :c"),
            {"s": json.dumps(shown), "c": world.campaign},
        )


def statistics_item(w: World, unit: str, code: str, table: str = "qingpu_2017_aid") -> Any:
    response = w.client.get(
        f"/api/campaigns/{w.campaign}/statistics",
        params={"unit": unit, "table": table},
        headers=w.as_("manager.wh"),
    )
    assert response.status_code == 200, response.text
    (only,) = response.json()["tables"]
    return next(i["value"] for i in only["items"] if i["code"] == code)


def stored_rows(w: World, unit: str = "WH-HC") -> list[Any]:
    with w.engine.connect() as conn:
        return list(
            conn.execute(
                text(
                    "SELECT r.kind, r.figures FROM report_submission r JOIN unit u ON u.id = r.unit_id"
                    " WHERE u.code = :u ORDER BY r.id"
                ),
                {"u": unit},
            )
        )


class TestFiguresAreDeclared:
    @pytest.mark.parametrize(
        ("figures", "item"),
        [
            ({"06A": -1}, "06A"),
            ({"06A": 10**30}, "06A"),
            ({"06A+": "abc"}, "06A+"),
            ({"06A+": 2.5}, "06A+"),
            ({"06A": True}, "06A"),
            ({"06A": 3, "donors": -2}, "donors"),
            ({"employment": {"09A": "1e999999"}}, "employment.09A"),
            ({"employment": {"09A": "-0.5"}}, "employment.09A"),
            ({"employment.10A": "NaN"}, "employment.10A"),
            ({"employment.10A": "12.345"}, "employment.10A"),
            ({"06A": 1, "Z9": 1}, "Z9"),
        ],
    )
    def test_a_bad_figure_is_refused_naming_its_item(
        self, world: World, figures: dict[str, Any], item: str
    ) -> None:
        response = file_report(world, figures)
        assert response.status_code == 422, response.text
        error = response.json()
        assert error["code"] == "validation_error"
        assert error["details"][0]["field"] == f"figures.{item}"
        assert f"figures.{item}" in error["message"]
        assert stored_rows(world) == []

    def test_twenty_thousand_keys_are_refused_naming_the_first_unknown_one(
        self, world: World
    ) -> None:
        response = file_report(world, {f"k{i}": 1 for i in range(20_000)})
        assert response.status_code == 422
        error = response.json()
        assert error["details"][0]["field"] == "figures.k0"
        assert len(error["details"]) <= 20  # the refusal stays small as well
        assert stored_rows(world) == []

    def test_an_unknown_kind_is_refused_naming_the_kind(self, world: World) -> None:
        response = file_report(world, {}, kind="anything_goes")
        assert response.status_code == 422
        assert response.json()["details"][0]["field"] == "kind"
        assert stored_rows(world) == []

    def test_a_kind_without_figures_takes_none(self, world: World) -> None:
        response = file_report(world, {"06A": 5}, kind="interim")
        assert response.status_code == 422
        assert response.json()["details"][0]["field"] == "figures.06A"
        assert file_report(world, {}, kind="interim").status_code == 201

    def test_good_figures_are_stored_by_their_code(self, world: World) -> None:
        response = file_report(
            world, {"06A": 12, "06A+": "30", "employment": {"09A": "3"}, "employment.10A": 2000}
        )
        assert response.status_code == 201, response.text
        ((kind, raw),) = stored_rows(world)
        figures = json.loads(raw) if isinstance(raw, str) else raw
        assert (kind, figures) == (
            "statistics",
            {"06A": 12, "06A+": 30, "employment.09A": 3, "employment.10A": 2000},
        )
        assert statistics_item(world, "WH-HC", "06A+") == 30


class TestRevisions:
    def test_a_resubmission_is_the_next_revision_and_only_the_latest_counts_once(
        self, world: World
    ) -> None:
        first = file_report(world, {"06A": 4, "06A+": 9})
        assert first.status_code == 201, first.text
        assert first.json()["revision"] == 1
        other = file_report(world, {"06A": 6}, unit="WH-WD")
        assert other.status_code == 201
        second = file_report(world, {"06A": 7, "06A+": 2})
        assert second.status_code == 201, second.text
        assert second.json()["revision"] == 2 and second.json()["id"] != first.json()["id"]
        assert statistics_item(world, "WH-HC", "06A") == 7
        assert statistics_item(world, "WH-HC", "06A+") == 2
        assert statistics_item(world, "WH", "06A") == 7 + 6  # each district once, its latest
        assert len(stored_rows(world)) == 2  # the first revision is kept, not overwritten
        listed = world.client.get(
            f"/api/campaigns/{world.campaign}/reports",
            params={"unit": "WH-HC"},
            headers=world.as_("manager.wh"),
        )
        assert listed.status_code == 200, listed.text
        assert [(r["revision"], r["latest"], r["figures"]) for r in listed.json()] == [
            (2, True, {"06A": 7, "06A+": 2}),
            (1, False, {"06A": 4, "06A+": 9}),
        ]

    def test_the_deadline_still_sees_a_resubmitted_report(self, world: World) -> None:
        def owing() -> int:
            response = world.client.get(
                "/api/dashboard",
                params={"campaign": world.campaign},
                headers=world.as_("manager.wh"),
            )
            assert response.status_code == 200, response.text
            return next(
                d["units_owing"]
                for d in response.json()["deadlines"]
                if d["key"] == "statistics_report"
            )

        before = owing()
        assert file_report(world, {"06A": 1}).status_code == 201
        assert file_report(world, {"06A": 2}).status_code == 201
        assert owing() == before - 1

    def test_figures_of_another_kind_are_never_added_in(self, world: World) -> None:
        """A row of another kind carrying figures (as the old code accepted) counts for nothing."""
        assert file_report(world, {"06A": 4}).status_code == 201
        with transaction(world.engine) as conn:
            conn.execute(
                text(
                    "INSERT INTO report_submission (campaign_id, unit_id, kind, note, figures,"
                    " submitted_by, submitted_at) SELECT :c, id, 'work_study', NULL, :f,"
                    " 'manager.wh-hc', :at FROM unit WHERE code = 'WH-HC'"
                ),
                {"c": world.campaign, "f": json.dumps({"06A": 100}), "at": world.clock.now()},
            )
        assert statistics_item(world, "WH-HC", "06A") == 4
        assert statistics_item(world, "WH", "06A") == 4
