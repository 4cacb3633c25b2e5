"""The permission matrix: every route of the app, every role, a sibling unit and the parent.

The target objects all belong to the grassroots union WH-HC-001: a case there, the unit itself,
a user there, a notification addressed to it. Campaigns concern the whole subtree of their
organiser (and its superiors), so the campaign routes use a campaign organised by the district
WH-HC, and the sibling there is the neighbouring district WH-WD.

For every route and every role at the sibling unit the request is refused (or answers without
the target) and *nothing in the database changes*: every row of every table is compared before
and after each call. Then a user of the parent unit WH-HC (a role allowed to) succeeds.

What "refused" means, decided per route (the `Route` rows below say which applies):

* an object named in the **path or query** (a case id, a unit code, a username, a campaign id,
  a notification id, `?unit=`, `?parent=`) outside the caller's subtree → **404 `not_found`**,
  exactly as for an id that does not exist, so nothing about its existence leaks;
* a unit or campaign organiser named in the **request body** of a create (POST /api/units
  `parent`, POST /api/users `unit`, POST /api/cases `unit`, POST /api/campaigns `organizer`,
  a report's `unit`) → **422 `validation_error` naming that field**, as docs/CONTRACT.md specifies for
  "422 unknown parent" — the same answer as for a code that does not exist;
* routes that check a *role* before looking anything up (`gate` below: managing units or users,
  managing campaigns, creating/correcting cases, submitting reports, reading the audit record)
  answer **403 `forbidden`**
  to roles without that grant — for any id, existing or not, so again nothing leaks;
* lists answer 200 for the sibling and the target is simply not in them;
* bulk events answer 200 with that case's result an error with code `not_found`.

Two routes have no "parent can see" by design: the in-app inbox is addressed to one unit and
read by that unit's users only, so the in-scope reader there is a user at WH-HC-001 itself.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from openpyxl import load_workbook
from sqlalchemy import Engine, create_engine, insert, select, text

from jinqiu.api.app import create_app
from jinqiu.api.security import issue_token
from jinqiu.notifications.models import InboxMessage, OutboxMessage
from jinqiu.states import CaseEvent, CaseState, Permission
from jinqiu.workflow.attachments.service import attach
from jinqiu.workflow.attachments.store import FileStore
from jinqiu.workflow.audit.models import PiiAccess
from jinqiu.workflow.campaigns.models import FundSource
from jinqiu.workflow.campaigns.service import load_campaign
from jinqiu.workflow.config import Settings
from jinqiu.workflow.db import transaction
from jinqiu.workflow.employment import service as employment_service
from jinqiu.workflow.failures import SweepError
from jinqiu.workflow.metadata import metadata
from jinqiu.workflow.payments.cards import with_check_digit
from jinqiu.workflow.payments.models import PaymentBatch
from jinqiu.workflow.publicity_lists.service import build_list, publish_list, record_objection
from jinqiu.workflow.roles import ROLE_PERMISSIONS, Grant, PermissionName
from jinqiu.workflow.units.models import Unit
from jinqiu.workflow.users.models import Role
from tests.api.conftest import PASSWORD, World, username
from tests.factories import (
    BY_LEVEL,
    actor,
    case_in,
    new_case,
    student,
    weihai_file,
    weihai_file_in,
    worker,
)

ROLES = tuple(r.value for r in Role if r is not Role.SCHEDULER)
PUBLIC = {("GET", "/api/health"), ("POST", "/api/auth/token")}
# Acts on the caller's own sessions only, whoever they are (tests/security/test_sessions.py).
SELF_ONLY = {("POST", "/api/auth/logout")}
inbox_t = InboxMessage.__table__  # type: ignore[attr-defined]
unit_t = Unit.__table__  # type: ignore[attr-defined]
fund_t = FundSource.__table__  # type: ignore[attr-defined]
outbox_t = OutboxMessage.__table__  # type: ignore[attr-defined]
sweep_error_t = SweepError.__table__  # type: ignore[attr-defined]
pii_t = PiiAccess.__table__  # type: ignore[attr-defined]
batch_t = PaymentBatch.__table__  # type: ignore[attr-defined]
PDF = b"%PDF-1.7\n%%EOF\n"
RESULT = "序号,金额,状态,失败原因\r\n".encode()  # the bank's answer to a batch of no rows
SURVEY = "职工姓名,职工身份证号码,学生姓名,身份证号码,当前学历\r\n".encode()  # a 摸底表 of no rows


@dataclass(frozen=True)
class Target:
    """What belongs to WH-HC-001 (and the campaign organised by WH-HC)."""

    case: int
    campaign_wh: int  # organised by the city: concerns every unit
    campaign_hc: int  # organised by the district WH-HC
    inbox: int  # a notification addressed to WH-HC-001
    outbox: int  # a failed e-mail to WH-HC-001's contact
    draft_list: int  # publicity lists of WH-HC-001 in the WH-HC campaign: a draft,
    published_list: int  # and a published one with a case free of objections (`listed`)
    listed: int
    objection: int  # and an open objection against its other case
    batch: int  # an (empty) payment batch of WH-HC-001, its bank file out
    record: int  # 阳光就业: a record of a paid case of WH-HC-001 (WH-HC campaign), registered,
    graduate: int  # and a paid case of WH-HC-001 not registered yet;
    post: int  # 勤工俭学: an open post of WH-HC-001 (WH-HC campaign)
    participant: int  # with this paid case of WH-HC-001 on it
    documented: int  # another case of WH-HC-001, with a document (its version moved on)
    attachment: int
    followed: int  # a paid case of WH-HC-001 in the WH-HC campaign, in follow-up
    campaign_later: int  # the WH-HC campaign's next year, which `followed` may be renewed into
    user: str = username(Role.CLERK.value, "WH-HC-001")


@dataclass(frozen=True)
class Req:
    url: str
    params: dict[str, Any] = field(default_factory=dict)
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    files: dict[str, Any] | None = None  # a multipart upload


Check = Callable[[httpx.Response, Target], None]


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # as in the OpenAPI document
    scenario: str
    request: Callable[[Target], Req]
    sibling: Check  # what a sibling whose role passes `gate` gets
    in_scope: tuple[str, ...]  # usernames (parent unit) who succeed, each checked by `ok`
    ok: Check
    sibling_unit: str = "WH-HC-002"
    # Checked before any lookup: roles without it (without any of a set) get 403.
    gate: PermissionName | frozenset[PermissionName] | None = None
    xfail: str | None = None
    in_scope_request: Callable[[Target], Req] | None = None  # when it differs from `request`

    @property
    def id(self) -> str:
        return f"{self.method} {self.path} [{self.scenario}]"


# -- what the answers must be ---------------------------------------------------------------------


def error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, f"{response.status_code} {response.text}"
    body = response.json()
    assert set(body) == {"code", "message", "details"}, body
    assert body["code"] == code, body
    assert body["message"], body
    return dict(body)


def not_found(response: httpx.Response, _t: Target) -> None:
    error(response, 404, "not_found")


def unknown_field(name: str) -> Check:
    def check(response: httpx.Response, _t: Target) -> None:
        body = error(response, 422, "validation_error")
        assert body["details"][0]["field"] == name, body

    return check


def status(expected: int) -> Check:
    def check(response: httpx.Response, _t: Target) -> None:
        assert response.status_code == expected, f"{response.status_code} {response.text}"

    return check


def listing(contains: bool, key: Callable[[Any, Target], bool]) -> Check:
    """200 with a list in which an item for the target is present (or absent)."""

    def check(response: httpx.Response, t: Target) -> None:
        assert response.status_code == 200, f"{response.status_code} {response.text}"
        body = response.json()
        items = body["items"] if isinstance(body, dict) else body
        found = [item for item in items if key(item, t)]
        assert bool(found) is contains, body

    return check


def case_total(total: int) -> Check:
    def check(response: httpx.Response, t: Target) -> None:
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["total"] == total, body
        assert (t.case in {i["id"] for i in body["items"]}) is (total > 0), body

    return check


def bulk_not_found(response: httpx.Response, t: Target) -> None:
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["succeeded"], body["failed"]) == (0, 1), body
    result = body["results"][0]
    assert (result["id"], result["ok"]) == (t.case, False), body
    assert result["error"]["code"] == "not_found" and result["error"]["message"], body


def printed(media_type: str) -> Check:
    def check(response: httpx.Response, _t: Target) -> None:
        assert response.status_code == 200, f"{response.status_code} {response.text[:300]}"
        assert response.headers["content-type"].startswith(media_type), response.headers

    return check


def workbook_rows(count: int) -> Check:
    """200 with an .xlsx whose first sheet lists `count` cases (the target's, when 1)."""

    def check(response: httpx.Response, t: Target) -> None:
        assert response.status_code == 200, response.text[:300]
        sheet = load_workbook(io.BytesIO(response.content)).worksheets[0]
        ids = [row[0] for row in sheet.iter_rows(min_row=2, values_only=True)]
        assert ids == [t.case] * count, ids

    return check


def withdrawn(response: httpx.Response, t: Target) -> None:
    assert response.status_code == 200, response.text
    assert response.json() == {"id": t.case, "state": "withdrawn", "version": 2}


def bulk_ok(response: httpx.Response, t: Target) -> None:
    assert response.status_code == 200, response.text
    assert response.json()["results"] == [
        {"id": t.case, "ok": True, "state": "withdrawn", "version": 2, "error": None}
    ]


def surveyed(n: int) -> Check:
    """The dashboard counts `n` cases in survey (the target case, or none of it)."""

    def check(response: httpx.Response, _t: Target) -> None:
        assert response.status_code == 200, response.text
        states = response.json()["states"]
        assert states.get("survey", 0) == n and sum(states.values()) == n, states

    return check


def no_unit(code: str) -> Check:
    def check(response: httpx.Response, _t: Target) -> None:
        assert response.status_code == 200, response.text
        assert code not in response.text, response.text

    return check


def me(response: httpx.Response, _t: Target) -> None:
    # /me names only the caller: the sibling's answer is about the sibling.
    assert response.status_code == 200, response.text
    assert response.json()["unit"] in {"WH-HC-002", "WH-HC"}, response.text
    assert "WH-HC-001" not in response.text


def parent(*roles: str) -> tuple[str, ...]:
    return tuple(username(r, "WH-HC") for r in roles)


def readers() -> tuple[str, ...]:
    """Every role at WH-HC: reading needs no particular grant."""
    return parent(*ROLES)


def campaign_body(organizer: str) -> dict[str, Any]:
    # A district's campaign: deadlines by level (the Weihai file's name the city's units).
    return weihai_file(
        organizer=organizer, name="环翠区2024年度金秋助学", deadlines=BY_LEVEL
    ).model_dump(mode="json", exclude_none=True)


def case_body(campaign: int, unit: str) -> dict[str, Any]:
    return {"campaign": campaign, "unit": unit, "worker": worker(), "student": student()}


MATRIX: tuple[Route, ...] = (
    # -- units --
    Route(
        "POST",
        "/api/units",
        "child of WH-HC-001 in the body",
        lambda t: Req(
            "/api/units",
            json={
                "code": "WH-HC-001-A",
                "name": "一车间工会",
                "level": "grassroots",
                "parent": "WH-HC-001",
            },
        ),
        sibling=unknown_field("parent"),
        gate=Grant.MANAGE_UNITS,
        in_scope=parent("admin"),
        ok=status(201),
        # Nothing sits below a grassroots union (a level strictly below its parent's): the
        # parent shows it may create a grassroots union beside WH-HC-001, under itself.
        in_scope_request=lambda t: Req(
            "/api/units",
            json={
                "code": "WH-HC-009",
                "name": "环翠区新基层工会",
                "level": "grassroots",
                "parent": "WH-HC",
            },
        ),
    ),
    Route(
        "GET",
        "/api/units",
        "?parent=WH-HC-001",
        lambda t: Req("/api/units", params={"parent": "WH-HC-001"}),
        sibling=not_found,
        in_scope=readers(),
        ok=status(200),
    ),
    Route(
        "GET",
        "/api/units",
        "default list",
        lambda t: Req("/api/units"),
        sibling=no_unit("WH-HC-001"),
        in_scope=readers(),
        ok=listing(True, lambda u, t: u["code"] == "WH-HC-001"),
    ),
    Route(
        "GET",
        "/api/units/{code}",
        "WH-HC-001",
        lambda t: Req("/api/units/WH-HC-001"),
        sibling=not_found,
        in_scope=readers(),
        ok=status(200),
    ),
    Route(
        "PATCH",
        "/api/units/{code}",
        "WH-HC-001",
        lambda t: Req("/api/units/WH-HC-001", json={"contact_name": "改过的联系人"}),
        sibling=not_found,
        gate=Grant.MANAGE_UNITS,
        in_scope=parent("admin"),
        ok=status(200),
    ),
    # -- users --
    Route(
        "GET",
        "/api/users",
        "list",
        lambda t: Req("/api/users"),
        sibling=listing(False, lambda u, t: u["unit"] == "WH-HC-001"),
        gate=Grant.MANAGE_USERS,
        in_scope=parent("admin"),
        ok=listing(True, lambda u, t: u["username"] == t.user),
    ),
    Route(
        "POST",
        "/api/users",
        "user of WH-HC-001 in the body",
        lambda t: Req(
            "/api/users",
            json={
                "username": "new.wh-hc-001",
                "password": "long-enough-1",
                "display_name": "新用户",
                "unit": "WH-HC-001",
                "roles": ["clerk"],
            },
        ),
        sibling=unknown_field("unit"),
        gate=Grant.MANAGE_USERS,
        in_scope=parent("admin"),
        ok=status(201),
    ),
    Route(
        "GET",
        "/api/users/me",
        "own profile only",
        lambda t: Req("/api/users/me"),
        sibling=me,
        in_scope=readers(),
        ok=me,
    ),
    Route(
        "GET",
        "/api/users/{username}",
        "clerk.wh-hc-001",
        lambda t: Req(f"/api/users/{t.user}"),
        sibling=not_found,
        gate=Grant.MANAGE_USERS,
        in_scope=parent("admin"),
        ok=status(200),
    ),
    Route(
        "PATCH",
        "/api/users/{username}",
        "clerk.wh-hc-001",
        lambda t: Req(f"/api/users/{t.user}", json={"display_name": "改名"}),
        sibling=not_found,
        gate=Grant.MANAGE_USERS,
        in_scope=parent("admin"),
        ok=status(200),
    ),
    Route(
        "POST",
        "/api/users/{username}/unlock",
        "clerk.wh-hc-001",
        lambda t: Req(f"/api/users/{t.user}/unlock"),
        sibling=not_found,
        gate=Grant.MANAGE_USERS,
        in_scope=parent("admin"),
        ok=status(204),
    ),
    # -- campaigns (organised by WH-HC; the sibling is the district WH-WD) --
    Route(
        "GET",
        "/api/campaigns",
        "list",
        lambda t: Req("/api/campaigns"),
        sibling_unit="WH-WD",
        sibling=listing(False, lambda c, t: c["id"] == t.campaign_hc),
        in_scope=readers(),
        ok=listing(True, lambda c, t: c["id"] == t.campaign_hc),
    ),
    Route(
        "POST",
        "/api/campaigns",
        "organizer WH-HC in the body",
        lambda t: Req("/api/campaigns", json=campaign_body("WH-HC")),
        sibling_unit="WH-WD",
        sibling=unknown_field("organizer"),
        gate=Grant.MANAGE_CAMPAIGN,
        in_scope=parent("admin"),
        ok=status(201),
    ),
    Route(
        "GET",
        "/api/campaigns/{campaign_id}",
        "organised by WH-HC",
        lambda t: Req(f"/api/campaigns/{t.campaign_hc}"),
        sibling_unit="WH-WD",
        sibling=not_found,
        in_scope=readers(),
        ok=status(200),
    ),
    Route(
        "POST",
        "/api/campaigns/{campaign_id}/reports",
        "campaign organised by WH-HC",
        lambda t: Req(
            f"/api/campaigns/{t.campaign_hc}/reports",
            json={"unit": "WH-HC-001", "kind": "statistics"},
        ),
        sibling_unit="WH-WD",
        sibling=not_found,
        in_scope=parent("manager"),
        ok=status(201),
    ),
    Route(
        "POST",
        "/api/campaigns/{campaign_id}/reports",
        "WH campaign, unit WH-HC-001 in the body",
        lambda t: Req(
            f"/api/campaigns/{t.campaign_wh}/reports",
            json={"unit": "WH-HC-001", "kind": "statistics"},
        ),
        sibling=unknown_field("unit"),
        gate=Grant.SUBMIT_REPORT,
        in_scope=parent("manager"),
        ok=status(201),
    ),
    Route(
        "GET",
        "/api/campaigns/{campaign_id}/reports",
        "WH campaign, ?unit=WH-HC-001",
        lambda t: Req(f"/api/campaigns/{t.campaign_wh}/reports", params={"unit": "WH-HC-001"}),
        sibling=not_found,
        in_scope=readers(),
        ok=status(200),
    ),
    Route(
        "GET",
        "/api/campaigns/{campaign_id}/reports",
        "campaign organised by WH-HC",
        lambda t: Req(f"/api/campaigns/{t.campaign_hc}/reports"),
        sibling_unit="WH-WD",
        sibling=not_found,
        in_scope=readers(),
        ok=status(200),
    ),
    # -- publicity lists (of WH-HC-001, in the campaign organised by WH-HC) --
    Route(
        "POST",
        "/api/campaigns/{campaign_id}/publicity-lists",
        "unit WH-HC-001 in the body",
        lambda t: Req(
            f"/api/campaigns/{t.campaign_hc}/publicity-lists", json={"unit": "WH-HC-001"}
        ),
        sibling=unknown_field("unit"),
        gate=Permission.REVIEW_CASE,
        in_scope=parent("reviewer"),
        ok=status(201),
    ),
    Route(
        "POST",
        "/api/publicity-lists/{list_id}/publish",
        "a draft of WH-HC-001",
        lambda t: Req(f"/api/publicity-lists/{t.draft_list}/publish"),
        sibling=not_found,
        gate=Permission.REVIEW_CASE,
        in_scope=parent("reviewer"),
        ok=status(200),
    ),
    Route(
        "POST",
        "/api/publicity-lists/{list_id}/withdraw",
        "a draft of WH-HC-001",
        lambda t: Req(f"/api/publicity-lists/{t.draft_list}/withdraw", json={"reason": "重做"}),
        sibling=not_found,
        gate=Permission.REVIEW_CASE,
        in_scope=parent("reviewer"),
        ok=status(200),
    ),
    Route(
        "GET",
        "/api/publicity-lists/{list_id}",
        "a published list of WH-HC-001",
        lambda t: Req(f"/api/publicity-lists/{t.published_list}"),
        sibling=not_found,
        in_scope=readers(),
        ok=status(200),
    ),
    Route(
        "POST",
        "/api/publicity-lists/{list_id}/objections",
        "a published list of WH-HC-001",
        lambda t: Req(
            f"/api/publicity-lists/{t.published_list}/objections",
            json={"case_id": t.listed, "objector": "李某", "contact": "139", "content": "不实"},
        ),
        sibling=not_found,
        gate=Permission.REVIEW_CASE,
        in_scope=parent("reviewer"),
        ok=status(201),
    ),
    Route(
        "POST",
        "/api/objections/{objection_id}/resolve",
        "an objection on a list of WH-HC-001",
        lambda t: Req(
            f"/api/objections/{t.objection}/resolve",
            json={"outcome": "dismissed", "reason": "经核实属实"},
        ),
        sibling=not_found,
        gate=Permission.REVIEW_CASE,
        in_scope=parent("reviewer"),
        ok=status(200),
    ),
    # -- employment records and work-study posts (of WH-HC-001, in the WH-HC campaign) --
    Route(
        "POST",
        "/api/campaigns/{campaign_id}/employment-records",
        "a paid case of WH-HC-001 in the body",
        lambda t: Req(
            f"/api/campaigns/{t.campaign_hc}/employment-records",
            json={"case_id": t.graduate, "graduation_year": 2024, "school": "山东大学"},
        ),
        sibling=unknown_field("case_id"),
        gate=Permission.RECORD_EMPLOYMENT,
        in_scope=parent("clerk"),
        ok=status(201),
    ),
    Route(
        "GET",
        "/api/campaigns/{campaign_id}/employment-records",
        "?unit=WH-HC-001",
        lambda t: Req(
            f"/api/campaigns/{t.campaign_hc}/employment-records", params={"unit": "WH-HC-001"}
        ),
        sibling=not_found,
        in_scope=readers(),
        ok=listing(True, lambda item, t: item["id"] == t.record),
    ),
    Route(
        "GET",
        "/api/campaigns/{campaign_id}/employment-records",
        "the caller's subtree",
        lambda t: Req(f"/api/campaigns/{t.campaign_hc}/employment-records"),
        sibling=listing(False, lambda item, t: item["id"] == t.record),
        in_scope=readers(),
        ok=listing(True, lambda item, t: item["id"] == t.record),
    ),
    Route(
        "GET",
        "/api/employment-records/{record_id}",
        "a record of WH-HC-001",
        lambda t: Req(f"/api/employment-records/{t.record}"),
        sibling=not_found,
        in_scope=readers(),
        ok=status(200),
    ),
    Route(
        "POST",
        "/api/employment-records/{record_id}/help",
        "a record of WH-HC-001",
        lambda t: Req(f"/api/employment-records/{t.record}/help", json={"kind": "training"}),
        sibling=not_found,
        gate=Permission.RECORD_EMPLOYMENT,
        in_scope=parent("clerk", "manager"),
        ok=status(201),
    ),
    Route(
        "POST",
        "/api/employment-records/{subject_id}/events",
        "a record of WH-HC-001 (the generic event route; the role is the noun's to refuse)",
        lambda t: Req(
            f"/api/employment-records/{t.record}/events",
            json={"event": "continue_study", "version": 1, "data": {"school": "大连理工大学"}},
        ),
        sibling=not_found,
        in_scope=parent("clerk"),
        ok=status(200),
    ),
    Route(
        "POST",
        "/api/campaigns/{campaign_id}/work-study-posts",
        "unit WH-HC-001 in the body",
        lambda t: Req(
            f"/api/campaigns/{t.campaign_hc}/work-study-posts",
            json={
                "unit": "WH-HC-001",
                "title": "助理",
                "employer": "图书馆",
                "kind": "campus",
                "hours_per_week": 6,
                "hourly_pay": "18",
            },
        ),
        sibling=unknown_field("unit"),
        gate=Permission.RECORD_EMPLOYMENT,
        in_scope=parent("clerk", "manager"),
        ok=status(201),
    ),
    Route(
        "GET",
        "/api/campaigns/{campaign_id}/work-study-posts",
        "?unit=WH-HC-001",
        lambda t: Req(
            f"/api/campaigns/{t.campaign_hc}/work-study-posts", params={"unit": "WH-HC-001"}
        ),
        sibling=not_found,
        in_scope=readers(),
        ok=listing(True, lambda item, t: item["id"] == t.post),
    ),
    Route(
        "GET",
        "/api/work-study-posts/{post_id}",
        "a post of WH-HC-001",
        lambda t: Req(f"/api/work-study-posts/{t.post}"),
        sibling=not_found,
        in_scope=readers(),
        ok=status(200),
    ),
    Route(
        "POST",
        "/api/work-study-posts/{post_id}/close",
        "a post of WH-HC-001",
        lambda t: Req(f"/api/work-study-posts/{t.post}/close"),
        sibling=not_found,
        gate=Permission.RECORD_EMPLOYMENT,
        in_scope=parent("manager"),
        ok=status(200),
    ),
    Route(
        "POST",
        "/api/work-study-posts/{post_id}/participants",
        "a post of WH-HC-001, a paid case of WH-HC-001",
        lambda t: Req(f"/api/work-study-posts/{t.post}/participants", json={"case_id": t.graduate}),
        sibling=not_found,
        gate=Permission.RECORD_EMPLOYMENT,
        in_scope=parent("clerk"),
        ok=status(201),
    ),
    Route(
        "DELETE",
        "/api/work-study-posts/{post_id}/participants/{case_id}",
        "a post of WH-HC-001 and its participant",
        lambda t: Req(f"/api/work-study-posts/{t.post}/participants/{t.participant}"),
        sibling=not_found,
        gate=Permission.RECORD_EMPLOYMENT,
        in_scope=parent("clerk"),
        ok=status(204),
    ),
    # -- cases --
    Route(
        "GET",
        "/api/cases",
        "?unit=WH-HC-001",
        lambda t: Req("/api/cases", params={"unit": "WH-HC-001", "campaign": t.campaign_wh}),
        sibling=not_found,
        in_scope=readers(),
        ok=case_total(1),
    ),
    Route(
        "GET",
        "/api/cases",
        "total",
        lambda t: Req("/api/cases", params={"campaign": t.campaign_wh}),
        sibling=case_total(0),
        in_scope=readers(),
        ok=case_total(1),
    ),
    Route(
        "POST",
        "/api/cases",
        "case of WH-HC-001 in the body",
        lambda t: Req("/api/cases", json=case_body(t.campaign_wh, "WH-HC-001")),
        sibling=unknown_field("unit"),
        gate=Grant.CREATE_CASE,
        in_scope=parent("clerk"),
        ok=status(201),
    ),
    Route(
        "POST",
        "/api/cases",
        "campaign organised by WH-HC, the sibling's own unit",
        lambda t: Req("/api/cases", json=case_body(t.campaign_hc, "WH-WD-001")),
        sibling_unit="WH-WD",
        sibling=unknown_field("campaign"),
        gate=Grant.CREATE_CASE,
        in_scope=parent("clerk"),
        ok=status(201),
        in_scope_request=lambda t: Req("/api/cases", json=case_body(t.campaign_hc, "WH-HC-001")),
    ),
    Route(
        "GET",
        "/api/cases/{case_id}",
        "case at WH-HC-001",
        lambda t: Req(f"/api/cases/{t.case}"),
        sibling=not_found,
        in_scope=readers(),
        ok=status(200),
    ),
    Route(
        "PATCH",
        "/api/cases/{case_id}",
        "case at WH-HC-001",
        lambda t: Req(
            f"/api/cases/{t.case}",
            json={"student": {"school": "青岛大学"}},
            headers={"If-Match": 'W/"1"'},
        ),
        sibling=not_found,
        gate=Grant.CREATE_CASE,
        in_scope=parent("manager"),
        ok=status(200),
    ),
    Route(
        "POST",
        "/api/cases/{case_id}/events",
        "withdraw the case at WH-HC-001",
        lambda t: Req(f"/api/cases/{t.case}/events", json={"event": "withdraw", "version": 1}),
        sibling=not_found,
        in_scope=parent("manager"),
        ok=withdrawn,
    ),
    Route(
        "POST",
        "/api/cases/bulk-events",
        "withdraw the case at WH-HC-001",
        lambda t: Req(
            "/api/cases/bulk-events",
            json={"event": "withdraw", "cases": [{"id": t.case, "version": 1}]},
        ),
        sibling=bulk_not_found,
        in_scope=parent("manager"),
        ok=bulk_ok,
    ),
    Route(
        "GET",
        "/api/cases/{case_id}/history",
        "case at WH-HC-001",
        lambda t: Req(f"/api/cases/{t.case}/history"),
        sibling=not_found,
        in_scope=readers(),
        ok=listing(True, lambda h, t: h["event"] == "create"),
    ),
    # -- printed forms and exports --
    Route(
        "GET",
        "/api/cases/{case_id}/form",
        "the 摸底表 of the case at WH-HC-001",
        lambda t: Req(f"/api/cases/{t.case}/form"),
        sibling=not_found,
        in_scope=readers(),
        ok=printed("text/html"),
    ),
    Route(
        "GET",
        "/api/cases/{case_id}/evidence",
        "the evidence bundle of the case at WH-HC-001",
        lambda t: Req(f"/api/cases/{t.case}/evidence"),
        sibling=not_found,
        gate=Grant.READ_EVIDENCE,
        in_scope=parent("manager", "auditor"),
        ok=printed("application/zip"),
    ),
    Route(
        "GET",
        "/api/campaigns/{campaign_id}/survey-form",
        "WH campaign, ?unit=WH-HC-001",
        lambda t: Req(f"/api/campaigns/{t.campaign_wh}/survey-form", params={"unit": "WH-HC-001"}),
        sibling=not_found,
        in_scope=readers(),
        ok=printed("text/html"),
    ),
    Route(
        "GET",
        "/api/cases",
        "the workbook of the WH campaign",
        lambda t: Req("/api/cases", params={"campaign": t.campaign_wh, "format": "xlsx"}),
        sibling=workbook_rows(0),
        in_scope=readers(),
        ok=workbook_rows(1),
    ),
    # -- documents of the case --
    Route(
        "POST",
        "/api/cases/{case_id}/attachments",
        "a transcript for a case at WH-HC-001",
        lambda t: Req(
            f"/api/cases/{t.documented}/attachments",
            files={"kind": (None, "transcript"), "file": ("成绩单.pdf", PDF, "application/pdf")},
        ),
        sibling=not_found,
        in_scope=parent("clerk"),
        ok=status(201),
    ),
    Route(
        "GET",
        "/api/cases/{case_id}/attachments",
        "case at WH-HC-001",
        lambda t: Req(f"/api/cases/{t.documented}/attachments"),
        sibling=not_found,
        in_scope=readers(),
        ok=listing(True, lambda a, t: a["id"] == t.attachment),
    ),
    Route(
        "GET",
        "/api/cases/{case_id}/attachments/{attachment_id}",
        "the case's document",
        lambda t: Req(f"/api/cases/{t.documented}/attachments/{t.attachment}"),
        sibling=not_found,
        in_scope=parent("reviewer", "approver", "manager", "finance", "auditor"),
        ok=status(200),
    ),
    # -- follow-up visits and renewal of a paid case --
    Route(
        "POST",
        "/api/cases/{case_id}/visits",
        "a visit of a case at WH-HC-001 in follow-up",
        lambda t: Req(
            f"/api/cases/{t.followed}/visits",
            json={"date": "2024-07-20", "kind": "phone", "visitor": "李干事", "notes": "正常"},
        ),
        sibling=not_found,
        in_scope=parent("clerk", "reviewer", "manager"),
        ok=status(201),
    ),
    Route(
        "GET",
        "/api/cases/{case_id}/visits",
        "case at WH-HC-001",
        lambda t: Req(f"/api/cases/{t.followed}/visits"),
        sibling=not_found,
        in_scope=readers(),
        ok=status(200),
    ),
    Route(
        "POST",
        "/api/cases/{case_id}/renewal",
        "the paid case at WH-HC-001 into the next year",
        lambda t: Req(f"/api/cases/{t.followed}/renewal", json={"campaign": t.campaign_later}),
        sibling=not_found,
        in_scope=parent("clerk"),
        ok=status(201),
    ),
    # -- dashboard and statistics --
    Route(
        "GET",
        "/api/dashboard",
        "WH campaign, ?unit=WH-HC-001",
        lambda t: Req("/api/dashboard", params={"campaign": t.campaign_wh, "unit": "WH-HC-001"}),
        sibling=not_found,
        in_scope=readers(),
        ok=surveyed(1),
    ),
    Route(
        "GET",
        "/api/dashboard",
        "WH campaign, own unit",
        lambda t: Req("/api/dashboard", params={"campaign": t.campaign_wh}),
        sibling=surveyed(0),
        in_scope=readers(),
        ok=surveyed(1),
    ),
    Route(
        "GET",
        "/api/dashboard",
        "campaign organised by WH-HC",
        lambda t: Req("/api/dashboard", params={"campaign": t.campaign_hc}),
        sibling_unit="WH-WD",
        sibling=not_found,
        in_scope=readers(),
        ok=status(200),
    ),
    Route(
        "GET",
        "/api/campaigns/{campaign_id}/statistics",
        "WH campaign, ?unit=WH-HC-001",
        lambda t: Req(f"/api/campaigns/{t.campaign_wh}/statistics", params={"unit": "WH-HC-001"}),
        sibling=not_found,
        in_scope=readers(),
        ok=status(200),
    ),
    Route(
        "GET",
        "/api/campaigns/{campaign_id}/statistics",
        "WH campaign, ?format=xlsx",
        lambda t: Req(
            f"/api/campaigns/{t.campaign_wh}/statistics",
            params={"unit": "WH-HC-001", "format": "xlsx"},
        ),
        sibling=not_found,
        in_scope=parent("manager"),
        ok=status(200),
    ),
    Route(
        "GET",
        "/api/campaigns/{campaign_id}/statistics",
        "campaign organised by WH-HC",
        lambda t: Req(f"/api/campaigns/{t.campaign_hc}/statistics"),
        sibling_unit="WH-WD",
        sibling=not_found,
        in_scope=readers(),
        ok=status(200),
    ),
    # -- the survey spreadsheet (roles that create cases; a dry run writes nothing) --
    Route(
        "GET",
        "/api/campaigns/{campaign_id}/import-template",
        "campaign organised by WH-HC",
        lambda t: Req(f"/api/campaigns/{t.campaign_hc}/import-template"),
        sibling_unit="WH-WD",
        sibling=not_found,
        gate=Grant.CREATE_CASE,
        in_scope=parent("clerk", "manager"),
        ok=status(200),
    ),
    Route(
        "POST",
        "/api/campaigns/{campaign_id}/imports",
        "WH campaign, ?unit=WH-HC-001",
        lambda t: Req(
            f"/api/campaigns/{t.campaign_wh}/imports",
            params={"unit": "WH-HC-001"},
            files={"file": ("摸底表.csv", SURVEY, "text/csv")},
        ),
        sibling=not_found,
        gate=Grant.CREATE_CASE,
        in_scope=parent("clerk", "manager"),
        ok=status(200),
    ),
    Route(
        "POST",
        "/api/campaigns/{campaign_id}/imports",
        "campaign organised by WH-HC",
        lambda t: Req(
            f"/api/campaigns/{t.campaign_hc}/imports",
            params={"unit": "WH-HC-001"},
            files={"file": ("摸底表.csv", SURVEY, "text/csv")},
        ),
        sibling_unit="WH-WD",
        sibling=not_found,
        gate=Grant.CREATE_CASE,
        in_scope=parent("clerk"),
        ok=status(200),
    ),
    # -- the survey register (摸底登记): importers, and auditors as for the case list --
    Route(
        "GET",
        "/api/campaigns/{campaign_id}/survey-register",
        "WH campaign, ?unit=WH-HC-001, ?format=xlsx",
        lambda t: Req(
            f"/api/campaigns/{t.campaign_wh}/survey-register",
            params={"unit": "WH-HC-001", "format": "xlsx"},
        ),
        sibling=not_found,
        gate=frozenset({Grant.CREATE_CASE, Grant.READ_AUDIT}),
        in_scope=parent("clerk", "manager", "auditor"),
        ok=status(200),
    ),
    # -- payment batches and funds (finance: the `pay` permission, checked first) --
    Route(
        "POST",
        "/api/campaigns/{campaign_id}/payment-batches",
        "WH campaign, unit WH-HC-001 in the body",
        lambda t: Req(
            f"/api/campaigns/{t.campaign_wh}/payment-batches",
            json={"fund_source": "government", "unit": "WH-HC-001"},
        ),
        sibling=unknown_field("unit"),
        gate=Permission.PAY_CASE,
        in_scope=parent("finance"),
        ok=unknown_field("case_ids"),  # in scope: the unit is found, and nothing waits for payment
    ),
    Route(
        "POST",
        "/api/campaigns/{campaign_id}/payment-batches",
        "campaign organised by WH-HC",
        lambda t: Req(
            f"/api/campaigns/{t.campaign_hc}/payment-batches", json={"fund_source": "government"}
        ),
        sibling_unit="WH-WD",
        sibling=not_found,
        gate=Permission.PAY_CASE,
        in_scope=parent("finance"),
        ok=unknown_field("case_ids"),
    ),
    Route(
        "GET",
        "/api/payment-batches/{batch_id}",
        "batch of WH-HC-001",
        lambda t: Req(f"/api/payment-batches/{t.batch}"),
        sibling=not_found,
        gate=Permission.PAY_CASE,
        in_scope=parent("finance"),
        ok=status(200),
    ),
    Route(
        "GET",
        "/api/payment-batches/{batch_id}/file",
        "batch of WH-HC-001",
        lambda t: Req(f"/api/payment-batches/{t.batch}/file", params={"format": "csv"}),
        sibling=not_found,
        gate=Permission.PAY_CASE,
        in_scope=parent("finance"),
        ok=status(200),
    ),
    Route(
        "POST",
        "/api/payment-batches/{batch_id}/result",
        "batch of WH-HC-001",
        lambda t: Req(
            f"/api/payment-batches/{t.batch}/result",
            files={"file": ("result.csv", RESULT, "text/csv")},
        ),
        sibling=not_found,
        gate=Permission.PAY_CASE,
        in_scope=parent("finance"),
        ok=status(200),
    ),
    Route(
        "POST",
        "/api/payment-batches/{batch_id}/retry",
        "batch of WH-HC-001",
        lambda t: Req(f"/api/payment-batches/{t.batch}/retry"),
        sibling=not_found,
        gate=Permission.PAY_CASE,
        in_scope=parent("finance"),
        ok=status(409),  # in scope: the batch is found; no result imported yet to retry
    ),
    Route(
        "GET",
        "/api/campaigns/{campaign_id}/funds",
        "campaign organised by WH-HC",
        lambda t: Req(f"/api/campaigns/{t.campaign_hc}/funds"),
        sibling_unit="WH-WD",
        sibling=not_found,
        in_scope=readers(),
        ok=status(200),
    ),
    # -- donors (campaign.manage) and units' own funds, 自筹 (report.submit) --
    Route(
        "POST",
        "/api/campaigns/{campaign_id}/donors",
        "campaign organised by WH-HC",
        lambda t: Req(
            f"/api/campaigns/{t.campaign_hc}/donors",
            json={"name": "爱心企业", "contact": "李经理", "amount": "5000"},
        ),
        sibling_unit="WH-WD",
        sibling=not_found,
        gate=Grant.MANAGE_CAMPAIGN,
        in_scope=parent("manager", "admin"),
        ok=status(201),
    ),
    Route(
        "POST",
        "/api/campaigns/{campaign_id}/donors",
        "WH campaign, unit WH-HC-001 in the body",
        lambda t: Req(
            f"/api/campaigns/{t.campaign_wh}/donors",
            json={"name": "爱心企业", "contact": "李经理", "amount": "5000", "unit": "WH-HC-001"},
        ),
        sibling=unknown_field("unit"),
        gate=Grant.MANAGE_CAMPAIGN,
        in_scope=parent("manager"),
        ok=status(201),
    ),
    Route(
        "GET",
        "/api/campaigns/{campaign_id}/donors",
        "campaign organised by WH-HC",
        lambda t: Req(f"/api/campaigns/{t.campaign_hc}/donors"),
        sibling_unit="WH-WD",
        sibling=not_found,
        in_scope=readers(),
        ok=status(200),
    ),
    Route(
        "POST",
        "/api/campaigns/{campaign_id}/unit-funds",
        "WH campaign, unit WH-HC-001 in the body",
        lambda t: Req(
            f"/api/campaigns/{t.campaign_wh}/unit-funds",
            json={"unit": "WH-HC-001", "source": "union", "amount": "800"},
        ),
        sibling=unknown_field("unit"),
        gate=Grant.SUBMIT_REPORT,
        in_scope=parent("manager"),
        ok=status(201),
    ),
    Route(
        "POST",
        "/api/campaigns/{campaign_id}/unit-funds",
        "campaign organised by WH-HC",
        lambda t: Req(
            f"/api/campaigns/{t.campaign_hc}/unit-funds",
            json={"unit": "WH-HC-001", "source": "union", "amount": "800"},
        ),
        sibling_unit="WH-WD",
        sibling=not_found,
        gate=Grant.SUBMIT_REPORT,
        in_scope=parent("manager"),
        ok=status(201),
    ),
    Route(
        "GET",
        "/api/campaigns/{campaign_id}/unit-funds",
        "WH campaign, ?unit=WH-HC-001",
        lambda t: Req(f"/api/campaigns/{t.campaign_wh}/unit-funds", params={"unit": "WH-HC-001"}),
        sibling=not_found,
        in_scope=readers(),
        ok=status(200),
    ),
    Route(
        "PUT",
        "/api/cases/{case_id}/bank-card",
        "case at WH-HC-001",
        lambda t: Req(
            f"/api/cases/{t.case}/bank-card",
            json={
                "bank_card_number": with_check_digit("622848" + "7" * 12),
                "version": 1,
                "reason": "更正",
            },
        ),
        sibling=not_found,
        gate=Permission.PAY_CASE,
        in_scope=parent("finance"),
        ok=status(409),  # in scope: the case is found; it is in survey, not waiting for payment
    ),
    # -- the record of full reads (auditors) --
    Route(
        "GET",
        "/api/audit/pii-access",
        "a full read of the case at WH-HC-001",
        lambda t: Req("/api/audit/pii-access"),
        sibling=listing(False, lambda a, t: a["case"] == t.case),
        gate=Grant.READ_AUDIT,
        in_scope=parent("auditor"),
        ok=listing(True, lambda a, t: a["case"] == t.case),
    ),
    Route(
        "GET",
        "/api/audit/pii-access",
        "?case= the case at WH-HC-001",
        lambda t: Req("/api/audit/pii-access", params={"case": t.case}),
        sibling=not_found,
        gate=Grant.READ_AUDIT,
        in_scope=parent("auditor"),
        ok=listing(True, lambda a, t: a["case"] == t.case),
    ),
    # -- notifications (addressed to one unit: its own users read them) --
    Route(
        "GET",
        "/api/inbox",
        "notification for WH-HC-001",
        lambda t: Req("/api/inbox"),
        sibling=listing(False, lambda m, t: m["id"] == t.inbox),
        in_scope=tuple(username(r, "WH-HC-001") for r in ROLES),
        ok=listing(True, lambda m, t: m["id"] == t.inbox),
    ),
    Route(
        "POST",
        "/api/inbox/{item_id}/read",
        "notification for WH-HC-001",
        lambda t: Req(f"/api/inbox/{t.inbox}/read"),
        sibling=not_found,
        in_scope=(username("clerk", "WH-HC-001"),),
        ok=status(200),
    ),
    Route(
        "GET",
        "/api/admin/outbox",
        "failed e-mail to WH-HC-001's contact",
        lambda t: Req("/api/admin/outbox", params={"status": "failed"}),
        sibling=listing(False, lambda m, t: m["id"] == t.outbox),
        gate=Grant.MANAGE_USERS,
        in_scope=parent("admin"),
        ok=listing(True, lambda m, t: m["id"] == t.outbox),
    ),
    Route(
        "GET",
        "/api/admin/sweep-errors",
        "the sweep failed for WH-HC's campaign",
        lambda t: Req("/api/admin/sweep-errors"),
        sibling=listing(False, lambda e, t: e["campaign"] == t.campaign_hc),
        sibling_unit="WH-WD",
        gate=Grant.MANAGE_USERS,
        in_scope=parent("admin"),
        ok=listing(True, lambda e, t: e["campaign"] == t.campaign_hc),
    ),
)


# -- the matrix covers every route -------------------------------------------------------------


def app_routes() -> set[tuple[str, str]]:
    app = create_app(engine=create_engine("sqlite://"), settings=Settings(secret_key="x" * 32))
    return {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    }


def test_the_matrix_has_an_entry_for_every_route_of_the_app() -> None:
    """A new endpoint without a row here fails: decide its scoping and add it to MATRIX."""
    routes = app_routes()
    assert routes >= PUBLIC
    assert {(r.method, r.path) for r in MATRIX} == routes - PUBLIC - SELF_ONLY


def test_every_role_is_in_the_matrix_world() -> None:
    assert set(ROLES) == {"clerk", "reviewer", "approver", "finance", "manager", "auditor", "admin"}


# -- the world ----------------------------------------------------------------------------------


def snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in key order."""
    with engine.connect() as conn:
        return {
            table.name: [
                tuple(r) for r in conn.execute(select(table).order_by(*table.primary_key.columns))
            ]
            for table in metadata.sorted_tables
        }


def changed(
    before: dict[str, list[tuple[Any, ...]]], after: dict[str, list[tuple[Any, ...]]]
) -> list[str]:
    return [name for name in before if before[name] != after[name]]


@pytest.fixture
def matrix(world: World) -> Iterator[tuple[World, Target]]:
    now = world.clock.now()
    with transaction(world.engine) as conn:
        campaign_hc = load_campaign(
            conn,
            weihai_file(
                organizer="WH-HC",
                name="环翠区2024年度",
                deadlines=BY_LEVEL,
                # More visits than the matrix records: each role's visit is recorded, none closes.
                follow_up={"visits_required": 12, "local_decision": "测试：案件留在回访"},
            ),
            world.clock,
        )
        inbox = conn.execute(
            insert(inbox_t)
            .values(
                idempotency_key="matrix:inbox",
                unit_code="WH-HC-001",
                title="请报送摸底表",
                body="截止日期 2024-07-31",
                link=None,
                created_at=now,
            )
            .returning(inbox_t.c.id)
        ).scalar_one()
        outbox = conn.execute(
            insert(outbox_t)
            .values(
                idempotency_key="matrix:outbox",
                channel="email",
                recipient="wh-hc-001@example.org",
                unit_code="WH-HC-001",
                subject="WH-HC-001 逾期提醒",
                body_text="WH-HC-001 的摸底表已逾期",
                payload={},
                status="failed",
                attempts=5,
                next_attempt_at=now,
                last_error="550 mailbox unavailable",
                created_at=now,
            )
            .returning(outbox_t.c.id)
        ).scalar_one()
        conn.execute(
            insert(sweep_error_t).values(
                campaign_id=campaign_hc,
                campaign_name="环翠区2024年度",
                stage="截止事项 survey_materials",
                error="CalendarUnknown: 2003-12-31 所在年度的法定节假日安排未知",
                failures=1,
                first_failed_at=now,
                last_failed_at=now,
            )
        )
    case = new_case(world.engine, world.clock, world.campaign, "WH-HC-001")
    with transaction(world.engine) as conn:  # a manager of WH-HC was shown its numbers in full
        conn.execute(
            insert(pii_t).values(
                case_id=case,
                actor=username("manager", "WH-HC"),
                actor_unit="WH-HC",
                fields=["worker.id_number"],
                purpose="GET /api/cases/{id}",
                at=now,
            )
        )
    documented = new_case(world.engine, world.clock, campaign_hc, "WH-HC-001")
    with transaction(world.engine) as conn:  # its clerk attached the admission notice
        clerk = actor(conn, "WH-HC-001", "clerk")
        assert world.settings.attachments_dir is not None
        document, _new = attach(
            conn, FileStore(Path(world.settings.attachments_dir)), case_id=documented,
            kind="admission_notice", filename="录取通知书.pdf", content=PDF + b"%notice",
            actor=clerk, clock=world.clock,
        )  # fmt: skip
    lists = publicity_lists(world, campaign_hc)
    followed = case_in(world.engine, world.clock, campaign_hc, "WH-HC-001", CaseState.FOLLOW_UP)
    with transaction(world.engine) as conn:
        campaign_later = load_campaign(
            conn,
            weihai_file_in(2025, organizer="WH-HC", name="环翠区2025年度", deadlines=[]),
            world.clock,
        )
    with transaction(world.engine) as conn:  # a batch of WH-HC-001 with its bank file out
        units = dict(conn.execute(select(unit_t.c.code, unit_t.c.id)).all())
        fund = conn.execute(
            select(fund_t.c.id).where(
                fund_t.c.campaign_id == world.campaign, fund_t.c.source == "government"
            )
        ).scalar_one()
        batch = conn.execute(
            insert(batch_t)
            .values(
                campaign_id=world.campaign,
                unit_id=units["WH-HC-001"],
                fund_source_id=fund,
                state="exported",
                version=2,
                rows=0,
                total_fen=0,
                purpose="2024年金秋助学金",
                audit_seq=0,
                audit_head="",
                created_by="finance.wh-hc-001",
                created_at=now,
                updated_at=now,
            )
            .returning(batch_t.c.id)
        ).scalar_one()
    # Signing in is Argon2 on purpose (slow); the matrix is about scoping, so mint the tokens.
    for unit in ("WH-HC", "WH-HC-001", "WH-HC-002", "WH-WD"):
        for role in ROLES:
            name = username(role, unit)
            world.tokens[name] = issue_token(world.settings, name, now)
    yield (
        world,
        Target(
            case=case,
            campaign_wh=world.campaign,
            campaign_hc=campaign_hc,
            inbox=int(inbox),
            outbox=int(outbox),
            **lists,
            batch=int(batch),
            **employment(world, campaign_hc),
            documented=documented,
            attachment=document.id,
            followed=followed,
            campaign_later=campaign_later,
        ),
    )


def employment(world: World, campaign: int) -> dict[str, int]:
    """In the WH-HC campaign, at WH-HC-001: a registered graduate, a paid case not registered,
    and an open work-study post with a third paid case on it."""
    record_case, graduate, participant = (
        case_in(world.engine, world.clock, campaign, "WH-HC-001", CaseState.FOLLOW_UP)
        for _ in range(3)
    )
    with transaction(world.engine) as conn:
        clerk = actor(conn, "WH-HC-001", "clerk")
        hc = conn.execute(select(unit_t).where(unit_t.c.code == "WH-HC-001")).one()
        year = conn.execute(text("SELECT year FROM campaign WHERE id = :c"), {"c": campaign})
        record = employment_service.register(
            conn, campaign=Campaign(campaign, year.scalar_one()), case_id=record_case,
            graduation_year=2024, school="山东大学", major=None, studies_locally=False,
            actor=clerk, clock=world.clock,
        )  # fmt: skip
        post = employment_service.open_post(
            conn, campaign_id=campaign, unit=hc, title="助理", employer="图书馆", kind="campus",
            hours_per_week=6, hourly_pay_fen=1800, actor=clerk, clock=world.clock,
        )  # fmt: skip
        employment_service.add_participant(
            conn, post, case_id=participant, actor=clerk, clock=world.clock
        )
    return {"record": record, "graduate": graduate, "post": post, "participant": participant}


@dataclass(frozen=True)
class Campaign:
    id: int
    year: int


def publicity_lists(world: World, campaign: int) -> dict[str, int]:
    """In the WH-HC campaign, at WH-HC-001: a case waiting for a list, a draft list of another,
    and a published list of two with an open objection against the first."""
    ready = [
        case_in(world.engine, world.clock, campaign, "WH-HC-001", CaseState.READY_FOR_PUBLICITY)
        for _ in range(4)
    ]
    with transaction(world.engine) as conn:
        reviewer = actor(conn, "WH-HC", "reviewer")
        unit = conn.execute(select(unit_t).where(unit_t.c.code == "WH-HC-001")).one()
        made = {}
        for name, cases in (("draft_list", ready[1:2]), ("published_list", ready[2:4])):
            made[name] = build_list(conn, campaign_id=campaign, unit=unit, case_ids=cases,
                                    actor=reviewer, clock=world.clock)  # fmt: skip
        publish_list(conn, made["published_list"], actor=reviewer, clock=world.clock)
        made["objection"] = record_objection(
            conn, made["published_list"], case_id=ready[2], objector="王某", contact="138",
            content="收入不实", received_on=None, actor=reviewer, clock=world.clock,
        )  # fmt: skip
    return {**made, "listed": ready[3]}


def call(
    world: World, who: str, route: Route, target: Target, *, in_scope: bool = False
) -> httpx.Response:
    req = (route.in_scope_request if in_scope and route.in_scope_request else route.request)(target)
    return world.client.request(
        route.method,
        req.url,
        params=req.params,
        json=req.json,
        files=req.files,
        headers={**world.as_(who), **req.headers},
    )


def passes_gate(role: str, gate: PermissionName | frozenset[PermissionName] | None) -> bool:
    if isinstance(gate, frozenset):
        return bool(gate & ROLE_PERMISSIONS[Role(role)])
    return gate is None or gate in ROLE_PERMISSIONS[Role(role)]


@pytest.mark.parametrize(
    "route",
    [
        pytest.param(
            r, id=r.id, marks=[pytest.mark.xfail(strict=True, reason=r.xfail)] if r.xfail else []
        )
        for r in MATRIX
    ],
)
def test_a_sibling_is_refused_and_changes_nothing_and_the_parent_succeeds(
    matrix: tuple[World, Target], route: Route
) -> None:
    world, target = matrix
    failures: list[str] = []
    before = snapshot(world.engine)
    for role in ROLES:
        who = username(role, route.sibling_unit)
        response = call(world, who, route, target)
        try:
            if passes_gate(role, route.gate):
                route.sibling(response, target)
            else:
                error(response, 403, "forbidden")
        except AssertionError as exc:
            failures.append(f"{who}: {exc}")
        after = snapshot(world.engine)  # also the next role's "before"
        if diff := changed(before, after):
            failures.append(f"{who}: {response.status_code} changed the tables {diff}")
        before = after
    assert not failures, "\n".join(failures)

    assert route.in_scope, "every route names who in scope may use it"
    for who in route.in_scope:
        response = call(world, who, route, target, in_scope=True)
        try:
            route.ok(response, target)
        except AssertionError as exc:
            failures.append(f"{who}: {exc}")
    assert not failures, "\n".join(failures)


def test_a_sibling_cannot_fire_on_or_see_the_case_even_with_its_current_version(
    matrix: tuple[World, Target],
) -> None:
    """The case row, its version and its audit trail are exactly as before after every role of
    the sibling tried every event on it."""
    world, target = matrix
    before = snapshot(world.engine)
    events = [event.value for event in CaseEvent]  # every event of the machine, as it grows
    assert {"submit", "end_publicity", "close"} <= set(events)
    for role in ROLES:
        for event in events:
            response = world.client.post(
                f"/api/cases/{target.case}/events",
                json={"event": event, "version": 1},
                headers=world.as_(username(role, "WH-HC-002")),
            )
            error(response, 404, "not_found")
    assert changed(before, snapshot(world.engine)) == []
    rows = world.client.get(
        f"/api/cases/{target.case}/history", headers=world.as_(username("auditor", "WH-HC"))
    ).json()
    assert [(h["event"], h["to"]) for h in rows] == [("create", "survey")]


def test_an_unknown_id_answers_exactly_like_a_case_outside_the_subtree(
    matrix: tuple[World, Target],
) -> None:
    """404 outside the subtree reveals nothing: same status, code and message shape."""
    world, target = matrix
    headers = world.as_(username("manager", "WH-HC-002"))
    hidden = world.client.get(f"/api/cases/{target.case}", headers=headers)
    missing = world.client.get(f"/api/cases/{target.case + 1000}", headers=headers)
    assert (hidden.status_code, hidden.json()["code"]) == (404, "not_found")
    assert (missing.status_code, missing.json()["code"]) == (404, "not_found")
    assert hidden.json()["message"].replace(str(target.case), "N") == missing.json()[
        "message"
    ].replace(str(target.case + 1000), "N")


def test_tokens_are_minted_for_the_clock_in_use(matrix: tuple[World, Target]) -> None:
    """The minted tokens are real ones: the same user signs in over HTTP and sees the same."""
    world, target = matrix
    response = world.client.post(
        "/api/auth/token", data={"username": username("reviewer", "WH-HC"), "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    signed_in = {"Authorization": f"Bearer {response.json()['access_token']}"}
    minted = world.as_(username("reviewer", "WH-HC"))
    assert (
        world.client.get(f"/api/cases/{target.case}", headers=signed_in).json()
        == world.client.get(f"/api/cases/{target.case}", headers=minted).json()
    )
