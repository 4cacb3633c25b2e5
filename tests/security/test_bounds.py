"""Overflow at the door (issue 8, #12, #15, #17): every number that reaches the database is
bounded where it comes in — ids, versions and page numbers to the database's INTEGER, money to
the documented maxima of workflow/money.py, counts to sane maxima — on every face (API, pages,
CLI, campaign files), so a value too large is a 4xx in the contract's shape on SQLite and
PostgreSQL alike, never a 500. The pages validate with the API's own models."""

from __future__ import annotations

import datetime as dt
import json
import re
import select as io_select
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import func, select

from jinqiu.workflow.audit.models import AuditEntry
from jinqiu.workflow.cases.models import Case
from jinqiu.workflow.identity import make_id_number
from jinqiu.workflow.money import MAX_BUDGET_YUAN, MAX_CASE_AMOUNT_YUAN
from tests.api.conftest import PASSWORD, World, username
from tests.api.conftest import world as world  # the HTTP fixture, on both databases
from tests.api.test_cli import Cli
from tests.factories import WEIHAI, new_case, student, worker

audit_t = AuditEntry.__table__  # type: ignore[attr-defined]
case_t = Case.__table__  # type: ignore[attr-defined]
HUGE = "99999999999999999999"  # 10^20 - 1: past INTEGER and BIGINT
CLERK = username("clerk", "WH-HC-001")
REVIEWER = username("reviewer", "WH-HC")
MANAGER = username("manager", "WH")
ADMIN = username("admin", "WH")


def refused(response: httpx.Response, field: str | None = None) -> dict[str, Any]:
    """A 4xx in the contract's shape (naming the field when one is given)."""
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:500])
    assert response.headers["content-type"].startswith("application/json"), response.text[:300]
    body = response.json()
    assert set(body) == {"code", "message", "details"}, body
    assert any("\u4e00" <= ch <= "\u9fff" for ch in body["message"]), body
    if field is not None:
        fields = [d["field"] for d in body["details"]]
        assert any(f".{field}." in f".{f}." for f in fields), body
    return dict(body)


def sign_in_page(world: World, who: str) -> str:
    """Signs in through the login form (the pages' cookie); returns the CSRF token its forms carry."""
    response = world.client.post(
        "/login",
        data={"username": who, "password": PASSWORD, "next": "/queue"},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text[:300]
    page = world.client.get("/queue")
    assert page.status_code == 200, page.text[:300]
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found is not None
    return found.group(1)


def case_body(
    world: World,
    *,
    worker_changes: dict[str, Any] | None = None,
    student_changes: dict[str, Any] | None = None,
    **top: Any,
) -> dict[str, Any]:
    return {
        "campaign": world.campaign,
        "unit": "WH-HC-001",
        "worker": worker(**(worker_changes or {})),
        "student": student(**(student_changes or {})),
        **top,
    }


def campaign_file(**changes: Any) -> dict[str, Any]:
    raw: dict[str, Any] = json.loads(WEIHAI.read_text(encoding="utf-8"))
    raw["name"] = "越界测试活动"
    raw.update(changes)
    return raw


def a_case(world: World) -> int:
    return new_case(world.engine, world.clock, world.campaign, "WH-HC-001")


# -- the eleven 500s of the issue ------------------------------------------------------------------
class TestTheReportedOverflows:
    def test_a_case_page_with_an_id_past_the_database_integer(self, world: World) -> None:
        sign_in_page(world, REVIEWER)
        refused(world.client.get(f"/cases/{HUGE}"), "case_id")
        html = world.client.get(f"/cases/{HUGE}", headers={"Accept": "text/html"})
        assert html.status_code == 422 and html.headers["content-type"].startswith("text/html")
        assert "case_id" in html.text  # a browser gets a page naming what was wrong

    def test_a_page_event_on_an_id_past_the_database_integer(self, world: World) -> None:
        csrf = sign_in_page(world, REVIEWER)
        response = world.client.post(
            f"/cases/{HUGE}/events",
            follow_redirects=False,
            data={"csrf_token": csrf, "event": "verify", "version": "1"},
        )
        refused(response, "case_id")

    def test_a_bulk_item_past_the_database_integer(self, world: World) -> None:
        case_id = a_case(world)
        csrf = sign_in_page(world, username("clerk", "WH-HC-001"))
        response = world.client.post(
            "/queue/bulk",
            follow_redirects=False,
            data={"csrf_token": csrf, "event": "submit", "cases": [f"{HUGE}:1", f"{case_id}:1"]},
        )
        refused(response, "cases")
        with world.engine.connect() as conn:  # refused whole, before any case was touched
            assert (
                conn.execute(select(case_t.c.version).where(case_t.c.id == case_id)).scalar() == 1
            )

    @pytest.mark.parametrize(
        ("where", "field", "value"),
        [
            ("worker", "monthly_income_per_capita", "1e30"),
            ("student", "tuition_invoice", "9" * 400),
            ("student", "tuition_invoice", "1e999999"),
        ],
    )
    def test_a_case_amount_past_what_the_database_holds(
        self, world: World, where: str, field: str, value: str
    ) -> None:
        body = case_body(world, **{f"{where}_changes": {field: value}})  # type: ignore[arg-type]
        refused(
            world.client.post("/api/cases", json=body, headers=world.as_(CLERK)), f"{where}.{field}"
        )

    def test_a_campaign_budget_past_the_documented_maximum(self, world: World) -> None:
        raw = campaign_file()
        raw["funds"][0]["budget"] = "99999999999999999"
        refused(
            world.client.post("/api/campaigns", json=raw, headers=world.as_(ADMIN)),
            "funds.0.budget",
        )


# -- the class: every number at every door ------------------------------------------------------------
class TestMoney:
    @pytest.mark.parametrize(
        "value",
        [
            "NaN",
            "Infinity",
            "-Infinity",
            "sNaN",
            "1e3",
            "1E+2",
            "0x10",
            "1_000",
            "١٢٣",
            "1.0000000000000000000000000001",
            "1e-999999999",
            "9" * 5000,
        ],
    )
    def test_a_case_amount_that_is_not_plain_bounded_yuan_is_refused(
        self, world: World, value: str
    ) -> None:
        body = case_body(world, student_changes={"tuition_invoice": value})
        refused(
            world.client.post("/api/cases", json=body, headers=world.as_(CLERK)),
            "student.tuition_invoice",
        )

    def test_a_huge_json_integer_amount_is_refused(self, world: World) -> None:
        raw = json.dumps(case_body(world)).replace('"850"', "1" + "0" * 40)
        response = world.client.post(
            "/api/cases",
            content=raw.encode(),
            headers={**world.as_(CLERK), "Content-Type": "application/json"},
        )
        refused(response, "worker.monthly_income_per_capita")

    def test_the_case_maximum_is_accepted_and_a_fen_more_is_not(self, world: World) -> None:
        at_max = case_body(world, student_changes={"tuition_invoice": f"{MAX_CASE_AMOUNT_YUAN}.00"})
        ok = world.client.post("/api/cases", json=at_max, headers=world.as_(CLERK))
        assert ok.status_code == 201, ok.text
        assert ok.json()["student"]["tuition_invoice"] == f"{MAX_CASE_AMOUNT_YUAN}.00"
        over = case_body(world, student_changes={"tuition_invoice": f"{MAX_CASE_AMOUNT_YUAN}.01"})
        body = refused(
            world.client.post("/api/cases", json=over, headers=world.as_(CLERK)),
            "student.tuition_invoice",
        )
        assert str(MAX_CASE_AMOUNT_YUAN) in json.dumps(body, ensure_ascii=False)

    def test_the_budget_maximum_is_accepted_and_a_fen_more_is_not(self, world: World) -> None:
        raw = campaign_file()
        raw["funds"][0]["budget"] = str(MAX_BUDGET_YUAN)
        ok = world.client.post("/api/campaigns", json=raw, headers=world.as_(ADMIN))
        assert ok.status_code == 201, ok.text
        assert ok.json()["funds"][0]["budget"] == f"{MAX_BUDGET_YUAN}.00"
        raw = campaign_file(name="越界测试活动二")
        raw["funds"][0]["budget"] = f"{MAX_BUDGET_YUAN}.01"
        refused(
            world.client.post("/api/campaigns", json=raw, headers=world.as_(ADMIN)),
            "funds.0.budget",
        )

    @pytest.mark.parametrize("field", ["amount", "cap"])
    def test_an_aid_rule_amount_past_the_case_maximum_is_refused(
        self, world: World, field: str
    ) -> None:
        raw = campaign_file()
        raw["aid_rules"][0].update(amount="3000", cap="3000")
        raw["aid_rules"][0][field] = str(MAX_CASE_AMOUNT_YUAN * 10)
        if field == "amount":
            raw["aid_rules"][0]["cap"] = raw["aid_rules"][0]["amount"]
        refused(
            world.client.post("/api/campaigns", json=raw, headers=world.as_(ADMIN)),
            f"aid_rules.0.{field}",
        )


class TestIdsAndCounts:
    @pytest.mark.parametrize(
        "path",
        [
            f"/api/cases/{HUGE}",
            f"/api/cases/{HUGE}/history",
            f"/api/campaigns/{HUGE}",
            f"/api/dashboard?campaign={HUGE}",
            f"/api/cases?campaign={HUGE}",
            f"/api/campaigns/{HUGE}/statistics",
        ],
    )
    def test_api_ids_past_the_database_integer(self, world: World, path: str) -> None:
        refused(world.client.get(path, headers=world.as_(MANAGER)))

    @pytest.mark.parametrize(
        "path",
        [
            f"/dashboard?campaign={HUGE}",
            f"/queue?campaign={HUGE}",
            f"/queue?page={HUGE}",
            f"/statistics.xlsx?campaign={HUGE}",
            f"/dashboard?refresh={HUGE}",
        ],
    )
    def test_page_numbers_past_their_maximum(self, world: World, path: str) -> None:
        sign_in_page(world, MANAGER)
        refused(world.client.get(path))

    def test_a_page_event_with_a_version_past_the_database_integer(self, world: World) -> None:
        case_id = a_case(world)
        csrf = sign_in_page(world, CLERK)
        response = world.client.post(
            f"/cases/{case_id}/events",
            follow_redirects=False,
            data={"csrf_token": csrf, "event": "submit", "version": HUGE},
        )
        refused(response, "version")

    @pytest.mark.parametrize("item", ["abc:1", "1:", ":1", "1:2:3", "１:1", "-1:1", "0:1"])
    def test_a_malformed_bulk_item_is_refused(self, world: World, item: str) -> None:
        csrf = sign_in_page(world, CLERK)
        response = world.client.post(
            "/queue/bulk",
            follow_redirects=False,
            data={"csrf_token": csrf, "event": "submit", "cases": [item]},
        )
        refused(response, "cases")

    def test_a_bulk_of_more_cases_than_the_api_allows_is_refused(self, world: World) -> None:
        csrf = sign_in_page(world, CLERK)
        response = world.client.post(
            "/queue/bulk",
            follow_redirects=False,
            data={
                "csrf_token": csrf,
                "event": "submit",
                "cases": [f"{n}:1" for n in range(1, 502)],
            },
        )
        refused(response, "cases")

    @pytest.mark.parametrize("kind", ["true", "float", "string"])
    def test_a_campaign_id_in_a_json_body_is_a_json_integer(self, world: World, kind: str) -> None:
        assert world.campaign == 1  # so that true would be read as this very campaign
        body = case_body(world)
        body["campaign"] = {"true": True, "float": 1.0, "string": "1"}[kind]
        refused(world.client.post("/api/cases", json=body, headers=world.as_(CLERK)), "campaign")

    @pytest.mark.parametrize("value", [True, "1", 1.0])
    def test_a_version_in_a_json_body_is_a_json_integer(self, world: World, value: Any) -> None:
        case_id = a_case(world)
        response = world.client.post(
            f"/api/cases/{case_id}/events",
            json={"event": "submit", "version": value},
            headers=world.as_(CLERK),
        )
        refused(response, "version")

    @pytest.mark.parametrize(
        ("where", "field", "value"),
        [
            ("worker", "household_size", True),
            ("student", "exam_score", True),
            ("student", "enrollment_year", 2024.0),
        ],
    )
    def test_a_count_in_a_json_body_is_a_json_integer(
        self, world: World, where: str, field: str, value: Any
    ) -> None:
        body = case_body(world, **{f"{where}_changes": {field: value}})  # type: ignore[arg-type]
        refused(
            world.client.post("/api/cases", json=body, headers=world.as_(CLERK)), f"{where}.{field}"
        )

    @pytest.mark.parametrize(
        ("path", "value"),
        [
            (("publicity_working_days",), True),
            (("reminders", "overdue_every_working_days"), 10**20),
            (("reminders", "escalate_after_working_days"), 10**20),
            (("eligibility", "archive_max_age_months"), 10**20),
            (("calendar", "years"), [10**20]),
            (("year",), True),
        ],
    )
    def test_campaign_counts_are_bounded(
        self, world: World, path: tuple[str, ...], value: Any
    ) -> None:
        raw = campaign_file()
        target = raw
        for key in path[:-1]:
            target = target.setdefault(key, {})
        target[path[-1]] = value
        refused(world.client.post("/api/campaigns", json=raw, headers=world.as_(ADMIN)), path[-1])


class TestTheCli:
    def test_a_campaign_file_with_a_budget_past_the_maximum_is_one_line_and_exit_2(
        self, tmp_path: Path
    ) -> None:
        raw = campaign_file()
        raw["funds"][0]["budget"] = "99999999999999999"
        bad = tmp_path / "budget.json"
        bad.write_text(json.dumps(raw, ensure_ascii=False), encoding="utf-8")
        run = Cli(f"sqlite:///{tmp_path / 'cli.db'}", tmp_path)("campaign load", str(bad))
        assert (run.code, run.out) == (2, "")
        assert "funds.0.budget" in run.err and "Traceback" not in run.err


# -- #15: the pages and the API share one validation -------------------------------------------------
class TestPageFormsShareTheApiValidation:
    def test_an_opinion_of_50000_characters_is_refused_on_the_page_as_by_the_api(
        self, world: World
    ) -> None:
        case_id = a_case(world)
        opinion = "异" * 50_000
        api = world.client.post(
            f"/api/cases/{case_id}/events",
            headers=world.as_(CLERK),
            json={"event": "withdraw", "version": 1, "opinion": opinion},
        )
        refused(api, "opinion")
        csrf = sign_in_page(world, CLERK)
        page = world.client.post(
            f"/cases/{case_id}/events",
            follow_redirects=False,
            data={"csrf_token": csrf, "event": "withdraw", "version": "1", "opinion": opinion},
        )
        refused(page, "opinion")
        with world.engine.connect() as conn:
            row = conn.execute(
                select(case_t.c.state, case_t.c.version).where(case_t.c.id == case_id)
            ).one()
            longest = conn.execute(select(func.max(func.length(audit_t.c.opinion)))).scalar()
        assert (row.state, row.version) == ("survey", 1)
        assert longest is None

    def test_the_page_opinion_at_the_api_limit_is_accepted(self, world: World) -> None:
        case_id = a_case(world)
        csrf = sign_in_page(world, CLERK)
        page = world.client.post(
            f"/cases/{case_id}/events",
            follow_redirects=False,
            data={"csrf_token": csrf, "event": "withdraw", "version": "1", "opinion": "撤" * 2000},
        )
        assert page.status_code == 303, page.text[:300]
        with world.engine.connect() as conn:
            assert (
                conn.execute(select(case_t.c.state).where(case_t.c.id == case_id)).scalar()
                == "withdrawn"
            )

    def test_the_bulk_opinion_is_bounded_as_by_the_api(self, world: World) -> None:
        case_id = a_case(world)
        csrf = sign_in_page(world, CLERK)
        response = world.client.post(
            "/queue/bulk",
            follow_redirects=False,
            data={
                "csrf_token": csrf,
                "event": "submit",
                "cases": [f"{case_id}:1"],
                "opinion": "异" * 2001,
            },
        )
        refused(response, "opinion")

    def test_the_case_page_form_says_the_limit(self, world: World) -> None:
        case_id = a_case(world)
        sign_in_page(world, CLERK)
        page = world.client.get(f"/cases/{case_id}")
        assert re.search(r'<textarea name="opinion"[^>]*maxlength="2000"', page.text), page.text


# -- #17: the case-side validation gaps ------------------------------------------------------------------
FULL_WIDTH = str.maketrans("0123456789X", "０１２３４５６７８９Ｘ")


class TestCaseValidationGaps:
    def test_full_width_digits_in_a_bank_card_are_stored_as_ascii(self, world: World) -> None:
        body = case_body(
            world, worker_changes={"bank_card_number": "6222021234567890123".translate(FULL_WIDTH)}
        )
        response = world.client.post("/api/cases", json=body, headers=world.as_(CLERK))
        assert response.status_code == 201, response.text
        assert response.json()["worker"]["bank_card_number"].endswith("0123")
        full = world.client.get(
            f"/api/cases/{response.json()['id']}",
            headers=world.as_(username("finance", "WH-HC-001")),
        )
        assert full.json()["worker"]["bank_card_number"] == "6222021234567890123"

    @pytest.mark.parametrize(
        "card", ["622202123456789٠١٢", "6222 0212 3456 7890", "6222021234567890123４５"]
    )
    def test_other_digits_in_a_bank_card_are_refused(self, world: World, card: str) -> None:
        body = case_body(world, worker_changes={"bank_card_number": card})
        refused(
            world.client.post("/api/cases", json=body, headers=world.as_(CLERK)),
            "worker.bank_card_number",
        )

    def test_a_full_width_identity_number_is_the_same_student(self, world: World) -> None:
        number = make_id_number("371002", dt.date(2006, 5, 5), 123)
        first = world.client.post(
            "/api/cases",
            json=case_body(world, student_changes={"id_number": number}),
            headers=world.as_(CLERK),
        )
        assert first.status_code == 201, first.text
        again = case_body(world, student_changes={"id_number": number.translate(FULL_WIDTH)})
        response = world.client.post("/api/cases", json=again, headers=world.as_(CLERK))
        assert (response.status_code, response.json()["code"]) == (409, "duplicate_student")

    def test_a_bank_card_patch_with_full_width_digits_is_stored_as_ascii(
        self, world: World
    ) -> None:
        case_id = a_case(world)
        response = world.client.patch(
            f"/api/cases/{case_id}",
            headers={**world.as_(CLERK), "If-Match": 'W/"1"'},
            json={"worker": {"bank_card_number": "6222021234567890".translate(FULL_WIDTH)}},
        )
        assert response.status_code == 200, response.text
        full = world.client.get(
            f"/api/cases/{case_id}", headers=world.as_(username("finance", "WH-HC-001"))
        )
        assert full.json()["worker"]["bank_card_number"] == "6222021234567890"

    @pytest.mark.parametrize("born", [dt.date(2099, 1, 1), dt.date(2024, 7, 21)])
    def test_a_student_born_after_today_is_refused(self, world: World, born: dt.date) -> None:
        body = case_body(world, student_changes={"id_number": make_id_number("371002", born, 11)})
        refused(
            world.client.post("/api/cases", json=body, headers=world.as_(CLERK)),
            "student.id_number",
        )

    def test_a_worker_born_after_today_is_refused(self, world: World) -> None:
        body = case_body(
            world, worker_changes={"id_number": make_id_number("371002", dt.date(2030, 1, 1), 31)}
        )
        refused(
            world.client.post("/api/cases", json=body, headers=world.as_(CLERK)), "worker.id_number"
        )

    def test_a_student_born_before_1900_is_refused(self, world: World) -> None:
        body = case_body(
            world,
            student_changes={"id_number": make_id_number("371002", dt.date(1899, 12, 31), 11)},
        )
        refused(
            world.client.post("/api/cases", json=body, headers=world.as_(CLERK)),
            "student.id_number",
        )

    @pytest.mark.parametrize(
        "archived_on", ["2024-07-21", "2099-01-01", "1989-12-31", "0001-01-01"]
    )
    def test_archived_on_in_the_future_or_before_1990_is_refused(
        self, world: World, archived_on: str
    ) -> None:
        body = case_body(world, worker_changes={"archived_on": archived_on})
        refused(
            world.client.post("/api/cases", json=body, headers=world.as_(CLERK)),
            "worker.archived_on",
        )
        case_id = a_case(world)
        response = world.client.patch(
            f"/api/cases/{case_id}",
            headers={**world.as_(CLERK), "If-Match": 'W/"1"'},
            json={"worker": {"archived_on": archived_on}},
        )
        refused(response, "worker.archived_on")

    def test_archived_today_is_accepted(self, world: World) -> None:
        body = case_body(world, worker_changes={"archived_on": "2024-07-20"})
        assert (
            world.client.post("/api/cases", json=body, headers=world.as_(CLERK)).status_code == 201
        )


# -- #13: request bodies are limited before anything parses them ----------------------------------------
MB = 1024 * 1024


def chunks_of(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    block = b" " * size
    for _ in range(total // size):
        yield block


class TestBodySize:
    def test_a_json_body_over_1_mb_is_413_unauthenticated(self, world: World) -> None:
        body = b'{"campaign": 1, "pad": "' + b"x" * (2 * MB) + b'"}'
        response = world.client.post(
            "/api/cases", content=body, headers={"Content-Type": "application/json"}
        )
        assert refused(response)["code"] == "too_large" and response.status_code == 413

    def test_a_sign_in_form_over_1_mb_is_413(self, world: World) -> None:
        response = world.client.post(
            "/api/auth/token", data={"username": "x" * (2 * MB), "password": "y"}
        )
        assert (response.status_code, response.json()["code"]) == (413, "too_large")

    @pytest.mark.parametrize(
        ("body", "status", "says"),
        [
            ({"opinion": "x" * (2 * MB)}, 413, "请求内容过大"),
            ({"opinion": "a\x00b"}, 422, "不能包含空字符"),
        ],
    )
    def test_a_page_form_refused_before_the_route_is_answered_with_a_page(
        self, world: World, body: dict[str, str], status: int, says: str
    ) -> None:
        """Refused by the middleware (size, NUL) before any route: a browser still gets the
        error page, not the API's JSON; the API's caller still gets JSON."""
        page = world.client.post(
            "/cases/1/events", data=body, headers={"Accept": "text/html,application/xhtml+xml"}
        )
        assert page.status_code == status
        assert page.headers["content-type"].startswith("text/html")
        assert says in page.text and "<html" in page.text
        api = world.client.post("/cases/1/events", data=body)
        assert api.status_code == status and says in api.json()["message"]

    def test_a_chunked_body_without_content_length_is_counted(self, world: World) -> None:
        response = world.client.post(
            "/api/cases",
            content=chunks_of(3 * MB),
            headers={"Content-Type": "application/json", **world.as_(CLERK)},
        )
        assert "content-length" not in {k.lower() for k in response.request.headers}
        assert (response.status_code, response.json()["code"]) == (413, "too_large")

    def test_a_body_just_under_the_limit_reaches_the_route(self, world: World) -> None:
        body = json.dumps(case_body(world)).encode()
        padded = body[:-1] + b"," + b'"pad": "' + b"x" * (MB - len(body) - 20) + b'"}'
        assert len(padded) <= MB
        response = world.client.post(
            "/api/cases",
            content=padded,
            headers={"Content-Type": "application/json", **world.as_(CLERK)},
        )
        assert refused(response, "pad")["code"] == "validation_error"  # parsed: the unknown field

    def test_an_upload_has_the_larger_documented_limit(self, world: World) -> None:
        files = {"file": ("scan.pdf", b"%PDF" + b"0" * (5 * MB), "application/pdf")}
        response = world.client.post("/api/cases", files=files, headers=world.as_(CLERK))
        assert response.status_code != 413  # read whole (and refused by the route: not JSON)
        files = {"file": ("scan.pdf", b"%PDF" + b"0" * (21 * MB), "application/pdf")}
        response = world.client.post("/api/cases", files=files, headers=world.as_(CLERK))
        assert (response.status_code, response.json()["code"]) == (413, "too_large")


@pytest.fixture
def served(world: World) -> Iterator[int]:
    """The world's application behind a real uvicorn on loopback (its port)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    server = uvicorn.Server(
        uvicorn.Config(
            world.client.app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(500):
        if server.started:
            break
        time.sleep(0.01)
    assert server.started
    yield port
    server.should_exit = True
    thread.join(timeout=10)


def post_50_mb(port: int, *, chunked: bool) -> tuple[bytes, int]:
    """Sends the head, then 50 MB in 64 KB pieces until the server answers (or drops the
    connection); returns the answer and how many body bytes went out."""
    total = 50 * MB
    framing = (
        b"Transfer-Encoding: chunked\r\n" if chunked else f"Content-Length: {total}\r\n".encode()
    )
    head = (
        b"POST /api/cases HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        + framing
        + b"\r\n"
    )
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head)
        for piece in chunks_of(total):
            if io_select.select([sock], [], [], 0)[0]:
                break  # the answer is there: stop sending
            data = b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece
            try:
                sock.sendall(data)
            except OSError:  # closed by the server after its answer
                break
            sent += len(piece)
        answer = b""
        try:
            while b"\r\n\r\n" not in answer:
                got = sock.recv(65536)
                if not got:
                    break
                answer += got
        except OSError:
            pass
    return answer, sent


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_50_mb_is_answered_413_without_being_read_whole(served: int, chunked: bool) -> None:
    answer, sent = post_50_mb(served, chunked=chunked)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert sent < 25 * MB, sent  # the server stopped reading long before the end


def test_the_demo_refuses_a_case_count_past_its_maximum(tmp_path: Path) -> None:
    run = Cli(f"sqlite:///{tmp_path / 'demo.db'}", tmp_path)("demo --cases 10000000000")
    assert run.code == 2 and "--cases" in run.err and "Traceback" not in run.err, run
    assert not (tmp_path / "demo.db").exists()  # refused before anything was written


@pytest.mark.parametrize(
    "value", ['W/"²"', 'W/"１"', '"' + "9" * 5000 + '"', f'W/"{HUGE}"', 'W/"0"']
)
def test_an_if_match_that_is_no_version_is_refused(world: World, value: str) -> None:
    case_id = a_case(world)
    raw = value.encode("latin-1") if value.isascii() or "²" in value else value.encode("utf-8")
    response = world.client.patch(
        f"/api/cases/{case_id}",
        headers={**world.as_(CLERK), "If-Match": raw},  # type: ignore[dict-item]
        json={"worker": {"phone": "13800000000"}},
    )
    refused(response, "If-Match")
