"""Schemathesis beyond the API's single operations: the HTML pages' forms, and the API's OpenAPI
links followed as chains (create → read / correct / fire an event → onward).

The data: the Weihai tree and campaign, the fuzzer holding every role at the city union (so
handlers are reached past their permission checks), three cases in survey and one waiting in
each later state (archive check, publicity, the city's approval step, disbursement, follow-up).

Pages: the pages router is left out of /openapi.json (`include_in_schema=False`), so the test
draws its own document from the same routes (FastAPI's get_openapi; form parameters become
application/x-www-form-urlencoded bodies), telling the generator what the forms really send
(event names, "id:version" items, small versions and ids, the fuzzer's own name and password
besides others). Every request carries a real session cookie and its CSRF secret, the other
fields are generated, valid and invalid. Status codes are not a contract for pages, so each
answer is checked for: no 5xx, the security headers, a redirect that stays on this site (then
followed once, and that page checked the same way).

Links: Schemathesis' state machine follows the links the case answers carry (api/http/
cases.py) — plus, for these chains only, "open a listed case" and "fire an event the answer
allows" — through the cases' operations; a second machine follows every link Schemathesis
infers across the whole API. Each chain starts from the same seeded data (replayable, so
Hypothesis can shrink a failure). Same checks as tests/api/test_openapi_fuzz.py.

Bounded and deterministic for CI (derandomize, no example database); SQLite and PostgreSQL.
"""

from __future__ import annotations

import copy
import datetime as dt
import itertools
import os
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest
import schemathesis
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from sqlalchemy import Engine, create_engine, select, text

from jinqiu.api import pages
from jinqiu.api.app import create_app
from jinqiu.api.deps import Services
from jinqiu.api.pages import COOKIE
from jinqiu.api.pages import case_entry as case_entry_pages
from jinqiu.api.pages import forms as form_pages
from jinqiu.api.pages import inbox as inbox_pages
from jinqiu.api.pages import publicity as publicity_pages
from jinqiu.api.security import issue_token, session_token
from jinqiu.states import CaseEvent
from jinqiu.workflow.cases.engine import apply_event
from jinqiu.workflow.cases.models import Case
from jinqiu.workflow.clock import ManualClock
from jinqiu.workflow.config import Settings
from jinqiu.workflow.db import transaction
from jinqiu.workflow.identity import make_id_number
from jinqiu.workflow.publicity_lists.service import build_list, end_list, publish_list
from jinqiu.workflow.roles import SCHEDULER, Actor
from jinqiu.workflow.units.models import Unit
from jinqiu.workflow.users.models import Role, User
from tests import snapshots
from tests.conftest import _wipe as wipe
from tests.factories import actor_of, new_case, password_hash, student, weihai, worker

# CI's budget; JINQIU_FUZZ_EXAMPLES=500 JINQIU_FUZZ_RANDOM=1 searches deeper, with new examples.
MAX_EXAMPLES = int(os.environ.get("JINQIU_FUZZ_EXAMPLES", "25"))
STEPS = 8
FUZZER = "fuzz.all"
# A clerk of WH-HC-002: the pages as most users see them, most seeded cases outside their scope.
CLERK = "fuzz.clerk"
PASSWORD = "fuzz-password-42"
# Every role but the service's own, at the city union: each handler is reached past its
# permission check, so the fuzzing exercises the work itself.
ROLES = [r.value for r in Role if r is not Role.SCHEDULER]
SETTINGS = Settings(
    secret_key="fuzz-secret-key-0123456789abcdef",
    token_minutes=60 * 24,
    attachments_dir=tempfile.mkdtemp(prefix="jinqiu-fuzz-attachments-"),
)
NOW = dt.datetime(2024, 7, 20, 9, 0)
BOUNDED = settings(
    max_examples=MAX_EXAMPLES,
    derandomize=not os.environ.get("JINQIU_FUZZ_RANDOM"),
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
user_t = User.__table__  # type: ignore[attr-defined]
case_t = Case.__table__  # type: ignore[attr-defined]
unit_t = Unit.__table__  # type: ignore[attr-defined]

# One app, its database swapped in per test (`fuzzed`), as in test_openapi_fuzz.
APP = create_app(engine=create_engine("sqlite://"), clock=ManualClock(NOW), settings=SETTINGS)


def fire(engine: Engine, clock: ManualClock, case_id: int, event: str, who: Actor) -> None:
    with transaction(engine) as conn:
        version = conn.execute(select(case_t.c.version).where(case_t.c.id == case_id)).scalar_one()
        apply_event(
            conn,
            case_id=case_id,
            event=event,
            expected_version=version,
            actor=who,
            clock=clock,
            opinion="同意",
        )


def seeded_student(n: int) -> str:
    return make_id_number("371002", dt.date(2006, 5, 1), n + 1)


def seed(engine: Engine, clock: ManualClock) -> int:
    """The Weihai tree, the 2024 campaign (its id returned), the fuzzers; three cases in survey,
    then one case waiting in each later state (the city's approval step, disbursement and
    follow-up included), so fuzzed events reach every effect. The clock ends on 2024-08-09."""
    _tree, campaign = weihai(engine, clock)
    with transaction(engine) as conn:
        units = {r.code: r.id for r in conn.execute(text("SELECT code, id FROM unit"))}
        conn.execute(
            user_t.insert(),
            [
                {
                    "username": username,
                    "password_hash": password_hash(PASSWORD),
                    "display_name": "模糊测试",
                    "unit_id": units[unit],
                    "roles": roles,
                    "is_active": True,
                    "created_at": clock.now(),
                }
                for username, unit, roles in [
                    (FUZZER, "WH", ROLES),
                    (CLERK, "WH-HC-002", ["clerk"]),
                ]
            ],
        )
    units = ["WH-HC-001", "WH-HC-002", "WH-WD-001"] + ["WH-HC-001"] * 5
    cases = [
        new_case(engine, clock, campaign, unit, student_changes={"id_number": seeded_student(n)})
        for n, unit in enumerate(units)
    ]
    later = cases[3:]
    clerk, reviewer = actor_of(engine, "WH-HC-001", "clerk"), actor_of(engine, "WH-HC", "reviewer")
    for case_id in later:
        fire(engine, clock, case_id, "submit", clerk)
    clock.set(dt.datetime(2024, 8, 1, 10))
    for case_id in later[1:]:
        fire(engine, clock, case_id, "verify", reviewer)
    with transaction(engine) as conn:  # a draft list (1) of one case, a published one (2)
        district = conn.execute(select(unit_t).where(unit_t.c.code == "WH-HC")).one()
        build_list(conn, campaign_id=campaign, unit=district, case_ids=later[1:2],
                   actor=reviewer, clock=clock)  # fmt: skip
        published = build_list(conn, campaign_id=campaign, unit=district, case_ids=later[2:],
                               actor=reviewer, clock=clock)  # fmt: skip
        publish_list(conn, published, actor=reviewer, clock=clock)
    clock.set(dt.datetime(2024, 8, 9, 10))  # five working days after 8/1: publicity is over
    with transaction(engine) as conn:
        end_list(conn, published, actor=SCHEDULER, clock=clock)
    for case_id in later[2:]:
        for unit in ("WH-HC-001", "WH-HC"):
            fire(engine, clock, case_id, "approve", actor_of(engine, unit, "approver"))
    for case_id in later[3:]:
        fire(engine, clock, case_id, "approve", actor_of(engine, "WH", "approver"))
    fire(engine, clock, later[4], "pay", actor_of(engine, "WH", "finance"))
    return campaign


@dataclass(frozen=True)
class Seeded:
    """What seeding left besides the rows: the clock and the campaign."""

    now: dt.datetime
    campaign: int


@dataclass
class Fuzzed:
    """The seeded database behind APP, and how the fuzzer signs in to it."""

    engine: Engine
    clock: ManualClock
    client: TestClient
    kept: snapshots.Kept  # the module's seeding, put back for every other test and chain
    campaign: int = 0
    created: Iterator[int] = field(default_factory=itertools.count)
    answered: Counter[tuple[str, str, int]] = field(default_factory=Counter)

    def reset(self) -> None:
        """The same data again, ids included: each chain starts from one state, so Hypothesis
        replays a chain exactly (to shrink it) and the run does not depend on the ones before.
        Seeded once per database and module; put back exactly from the snapshot after that."""
        seeded = self.kept.seeded(self.engine, self.seed)
        self.clock.set(seeded.now)
        self.campaign = seeded.campaign
        self.created = itertools.count()

    def seed(self) -> Seeded:
        wipe(self.engine)
        self.clock.set(NOW)
        campaign = seed(self.engine, self.clock)
        return Seeded(self.clock.now(), campaign)

    def bearer(self) -> dict[str, str]:
        token = issue_token(SETTINGS, FUZZER, self.clock.now(), self.generation())
        return {"Authorization": f"Bearer {token}"}

    def session(self, username: str = FUZZER) -> tuple[str, str]:
        """A page cookie and its CSRF secret, minted for the user's current token generation
        (a fuzzed /logout revokes the one before)."""
        return session_token(SETTINGS, username, self.clock.now(), self.generation(username))

    def generation(self, username: str = FUZZER) -> int:
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    select(user_t.c.token_generation).where(user_t.c.username == username)
                ).scalar_one()
            )


@pytest.fixture
def fuzzed(db: Engine, kept: snapshots.Kept) -> Iterator[Fuzzed]:
    """The seeded database (SQLite, then PostgreSQL) behind APP."""
    clock = ManualClock(NOW)
    APP.state.services = Services(engine=db, clock=clock, settings=SETTINGS)
    with TestClient(APP, raise_server_exceptions=False, follow_redirects=False) as client:
        state = Fuzzed(engine=db, clock=clock, client=client, kept=kept)
        state.reset()
        yield state


# -- the pages' forms ---------------------------------------------------------------------------

# What the pages' forms send, where a bare "string" would keep the generator at the door: the
# event <select>, hidden "id:version" items and version (small, as the seeded cases have; the
# invalid examples go beyond), at least one ticked case, the sign-in of a real user or another.
NUMBER = "[1-9][0-9]?"
FORM_FIELDS: dict[str, dict[str, Any]] = {
    "event": {"enum": [e.value for e in CaseEvent]},
    "version": {"pattern": f"^{NUMBER}$"},
    "username": {"enum": [FUZZER, "nobody.here"]},
    "password": {"enum": [PASSWORD, "not-the-password"]},
}
BULK_ITEM = {"type": "string", "pattern": f"^{NUMBER}:{NUMBER}$"}
# Ids the seed made, for valid requests; invalid ones still go beyond (the bounds' own tests).
PARAMETERS = {
    "case_id": {"maximum": 12},
    "campaign": {"maximum": 2},
    "list_id": {"maximum": 3},
    "objection_id": {"maximum": 3},
    "item_id": {"maximum": 3},
}


def page_routes() -> list[Any]:
    """The routes of every router of pages (the app's faces that answer HTML)."""
    return [
        *pages.router.routes,
        *publicity_pages.router.routes,
        *form_pages.router.routes,
        *case_entry_pages.router.routes,
        *inbox_pages.router.routes,
    ]


def pages_document() -> dict[str, Any]:
    """An OpenAPI document of the pages router alone, its routes shown for once."""
    routes = []
    for route in page_routes():
        assert isinstance(route, APIRoute)
        shown = copy.copy(route)
        shown.include_in_schema = True
        routes.append(shown)
    document = get_openapi(title="Jinqiu pages", version="fuzz", routes=routes)
    for operations in document["paths"].values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                schema = parameter["schema"]
                for option in schema.get("anyOf", [schema]):
                    if option.get("type") == "integer":
                        option.update(PARAMETERS.get(parameter["name"], {}))
    for name, schema in document["components"]["schemas"].items():
        if not name.startswith("Body_"):
            continue
        for key, hints in FORM_FIELDS.items():
            if key in schema["properties"]:
                schema["properties"][key].update(hints)
        if "cases" in schema["properties"]:
            schema["properties"]["cases"].update(items=BULK_ITEM, minItems=1)
    return document


PAGES = schemathesis.openapi.from_dict(pages_document())
PAGES.app = APP  # called in-process, like from_asgi


def header(response: Any, name: str) -> str | None:
    """One header of a Schemathesis response (its headers map names to lists of values)."""
    values = {k.lower(): v for k, v in response.headers.items()}.get(name)
    return values[0] if values else None


def has_security_headers(_ctx: Any, response: Any, _case: Any) -> bool:
    assert header(response, "content-security-policy"), "no Content-Security-Policy"
    assert header(response, "x-frame-options") == "DENY", "no X-Frame-Options: DENY"
    return True


def same_site(location: str) -> bool:
    """A redirect target a browser keeps on this site: a path, no scheme or host, also once the
    browser has dropped tabs and newlines and read backslashes as slashes."""
    seen = location.replace("\\", "/").replace("\t", "").replace("\n", "").replace("\r", "")
    parts = urlsplit(seen)
    return (
        not parts.scheme and not parts.netloc and seen.startswith("/") and not seen.startswith("//")
    )


def redirects_stay_here(_ctx: Any, response: Any, _case: Any) -> bool:
    if 300 <= response.status_code < 400:
        target = header(response, "location")
        assert target is not None and same_site(target), f"redirect off this site: {target!r}"
    return True


PAGE_CHECKS = [schemathesis.checks.not_a_server_error, has_security_headers, redirects_stay_here]


def check_page(response: Any) -> None:
    """The same checks on a page reached by following a redirect."""
    assert response.status_code < 500, response.text
    assert "content-security-policy" in response.headers
    assert response.headers.get("x-frame-options") == "DENY"


@pytest.fixture(params=[FUZZER, CLERK])
def signed_in(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@PAGES.parametrize()
@BOUNDED
def test_every_page_form_answers_without_a_server_error(
    case: schemathesis.Case, fuzzed: Fuzzed, signed_in: str
) -> None:
    cookie, csrf = fuzzed.session(signed_in)
    if isinstance(case.body, dict) and "csrf_token" in case.body:
        case.body["csrf_token"] = csrf  # a valid form, so the handler runs past the CSRF check
    response = case.call(cookies={COOKIE: cookie}, max_redirects=0)
    case.validate_response(response, checks=PAGE_CHECKS)
    if 300 <= response.status_code < 400:
        fuzzed.client.cookies.set(COOKIE, cookie)
        check_page(fuzzed.client.get(str(header(response, "location"))))
        fuzzed.client.cookies.clear()


def snapshot(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return [
            conn.execute(text(f"SELECT {columns} FROM {table} ORDER BY id")).all()
            for table, columns in [
                ("unit", "*"),
                ("app_user", "*"),
                ("campaign", "id, name, year"),  # and a random cache key
                ("aid_case", "*"),
                ("fund_source", "*"),
            ]
        ]


def test_each_chain_starts_from_the_same_data_ids_included(fuzzed: Fuzzed) -> None:
    first = snapshot(fuzzed.engine)
    fuzzed.client.post("/api/cases", json=creatable(None, fuzzed), headers=fuzzed.bearer())
    fuzzed.reset()
    assert snapshot(fuzzed.engine) == first
    assert [case.id for case in first[3]] == list(range(1, 9))
    assert [case.state for case in first[3]][3:] == [
        "archive_check",
        "ready_for_publicity",
        "approval",
        "disbursement",
        "follow_up",
    ]


def test_the_pages_document_covers_every_page_route() -> None:
    """A page added later is fuzzed too: the document is drawn from the router itself."""
    drawn = {
        (method.upper(), path)
        for path, operations in pages_document()["paths"].items()
        for method in operations
    }
    routed = {
        (method, route.path)
        for route in page_routes()
        if isinstance(route, APIRoute)
        for method in route.methods
    }
    assert drawn == routed
    assert ("POST", "/queue/bulk") in drawn
    assert ("POST", "/cases/{case_id}/events") in drawn
    assert ("POST", "/publicity-lists/{list_id}/objections") in drawn


# -- the API's links, followed ------------------------------------------------------------------

API = schemathesis.openapi.from_asgi("/openapi.json", APP)
CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_headers_conformance,
    schemathesis.checks.response_schema_conformance,
]
BEHIND: list[Fuzzed] = []  # the database behind APP in the running test
CREATE_UNITS = ("WH-HC-001", "WH-HC-002", "WH-WD-001")
# Text the generator may choose in a new case: the rest (identity numbers with their check
# digit, a campaign and unit that exist, a unique student) it could hardly hit by chance.
FREE_TEXT = {
    "worker": ("name", "phone", "work_unit", "address", "employment_status", "hardship_cause"),
    "student": ("name", "school", "major", "admitted_school", "ethnicity", "relation"),
}


def creatable(generated: Any, state: Fuzzed) -> dict[str, Any]:
    """A new case that can be created, with the generator's free text where it gave some."""
    n = next(state.created)
    body: dict[str, Any] = {
        "campaign": state.campaign,
        "unit": CREATE_UNITS[n % len(CREATE_UNITS)],
        "worker": worker(),
        "student": student(id_number=make_id_number("371002", dt.date(2007, 1, 1), 100 + n)),
    }
    if isinstance(generated, dict):
        for part, fields in FREE_TEXT.items():
            given = generated.get(part)
            if isinstance(given, dict):
                body[part].update({k: v for k, v in given.items() if k in fields})
    return body


class Signed:
    """Each step signed in afresh (a step that changed the fuzzer's password revoked the token
    before), checked like test_openapi_fuzz; a new case is one that can be created."""

    def setup(self) -> None:
        BEHIND[-1].reset()

    def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, Any]:
        return {"headers": BEHIND[-1].bearer()}

    def before_call(self, case: schemathesis.Case) -> None:
        if case.method.upper() == "POST" and case.path == "/api/cases":
            case.body = creatable(case.body, BEHIND[-1])

    def after_call(self, response: Any, case: schemathesis.Case) -> None:
        BEHIND[-1].answered[(case.method.upper(), case.path, response.status_code)] += 1
        super().after_call(response, case)  # type: ignore[misc]  # the machine records it

    def validate_response(
        self, response: Any, case: schemathesis.Case, additional_checks: Any = None, **kwargs: Any
    ) -> None:
        case.validate_response(response, checks=CHECKS, transport_kwargs=kwargs or None)


CASE = "#/paths/~1api~1cases~1{case_id}"
CASE_ANSWERS = [  # the operations answering with a whole case (CaseOut), and their status
    ("/api/cases", "post", "201"),
    ("/api/cases/{case_id}", "get", "200"),
    ("/api/cases/{case_id}", "patch", "200"),
]
LISTED, ALLOWED = 8, 3


def chains_document() -> dict[str, Any]:
    """The API's document with what a client of it also does, as links for the chains only: it
    opens a case from the list (the seeded ones in later states too) and fires one of the
    events the case answer says are allowed (a generated event is mostly refused with 409)."""
    document = copy.deepcopy(APP.openapi())
    listed = document["paths"]["/api/cases"]["get"]["responses"]["200"]
    listed["links"] = {
        f"ReadListed{k}": {
            "operationRef": f"{CASE}/get",
            "parameters": {"case_id": f"$response.body#/items/{k}/id"},
        }
        for k in range(LISTED)
    }
    for path, method, status in CASE_ANSWERS:
        document["paths"][path][method]["responses"][status]["links"].update(
            {
                f"FireAllowed{i}": {
                    "operationRef": f"{CASE}~1events/post",
                    "parameters": {"case_id": "$response.body#/id"},
                    "requestBody": {
                        "event": f"$response.body#/allowed_events/{i}",
                        "version": "$response.body#/version",
                    },
                }
                for i in range(ALLOWED)
            }
        )
    return document


# The case's own life; its documents (multipart uploads), follow-up visits and renewal (fuzzed
# one by one by the OpenAPI fuzz) would take the chains' steps away from corrections and events.
CHAINS = (
    schemathesis.openapi.from_dict(chains_document())
    .include(path_regex="^/api/cases")
    .exclude(path_regex="/(attachments|visits|renewal)")
)
CHAINS.app = APP
# No values mined from the app's source for the chains (Schemathesis' constants analysis): among
# them is the NUL byte the app refuses in any body, and with it every generated correction was
# that one byte, a 422 each time — the chains never got past the door. (They were mined since the
# app lists its routes itself: Schemathesis finds the handlers in app.routes.) ApiChains and
# test_openapi_fuzz keep the analysis.
CHAINS.config.analysis.constants.enabled = False


# The cases' links (create or list → read / correct / event / history → onward) ...
class CaseChains(Signed, CHAINS.as_state_machine()):  # type: ignore[misc]
    pass


# ... and every link Schemathesis infers across the whole API (units, users, campaigns, inbox).
class ApiChains(Signed, API.as_state_machine()):  # type: ignore[misc]
    pass


def run_chains(machine: Any, fuzzed: Fuzzed) -> None:
    BEHIND.append(fuzzed)
    try:
        machine.run(settings=settings(BOUNDED, stateful_step_count=STEPS))
    finally:
        BEHIND.remove(fuzzed)


def test_case_answers_link_to_the_case_with_its_version() -> None:
    document = APP.openapi()
    for path, method, status in [
        ("/api/cases", "post", "201"),
        ("/api/cases/{case_id}", "get", "200"),
        ("/api/cases/{case_id}", "patch", "200"),
        ("/api/cases/{case_id}/events", "post", "200"),
    ]:
        links = document["paths"][path][method]["responses"][status]["links"]
        assert set(links) == {"ReadCase", "AmendCase", "FireEvent", "ReadHistory"}, path
        assert links["FireEvent"]["requestBody"] == {"version": "$response.body#/version"}
        assert (
            links["AmendCase"]["parameters"]["header.If-Match"] == 'W/"{$response.body#/version}"'
        )


def test_chains_of_create_patch_and_events_never_fail_the_contract(fuzzed: Fuzzed) -> None:
    run_chains(CaseChains, fuzzed)
    # The chains went past the door: cases created, corrected and moved by events.
    done = {(method, path) for method, path, status in fuzzed.answered if status < 300}
    assert {
        ("POST", "/api/cases"),
        ("PATCH", "/api/cases/{case_id}"),
        ("POST", "/api/cases/{case_id}/events"),
    } <= done, fuzzed.answered


def test_chains_across_the_whole_api_never_fail_the_contract(fuzzed: Fuzzed) -> None:
    run_chains(ApiChains, fuzzed)


# -- what the fuzzing found, pinned -------------------------------------------------------------


def nullable_fields(schema: dict[str, Any], components: dict[str, Any], at: str = "") -> list[str]:
    """Every property of a request body (nested objects too), as dotted paths."""
    if "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[1]]
    out = []
    for name, prop in schema.get("properties", {}).items():
        out.append(f"{at}{name}")
        for option in [prop, *prop.get("anyOf", [])]:
            if "$ref" in option:
                out += nullable_fields(option, components, f"{at}{name}.")
    return out


def patch_fields() -> list[tuple[str, str]]:
    document = APP.openapi()
    components = document["components"]["schemas"]
    out = []
    for path, operations in document["paths"].items():
        body = operations.get("patch", {}).get("requestBody", {}).get("content", {})
        if "application/json" in body:
            for field in nullable_fields(body["application/json"]["schema"], components):
                out.append((path, field))
    return out


def nested(field: str, value: Any) -> dict[str, Any]:
    head, _, rest = field.partition(".")
    return {head: nested(rest, value) if rest else value}


PATCH_FIELDS = patch_fields()


def test_every_patch_field_is_tried_with_null() -> None:
    assert ("/api/units/{code}", "name") in PATCH_FIELDS
    assert ("/api/cases/{case_id}", "worker.name") in PATCH_FIELDS
    assert ("/api/users/{username}", "display_name") in PATCH_FIELDS


def test_a_null_in_any_patch_field_is_refused_or_clears_never_a_500(fuzzed: Fuzzed) -> None:
    """Found by the chains (PATCH /api/units/WH {"name": null} → NOT NULL violation, 500): null
    either clears a field that may be empty or is a 422 naming the field."""
    wrong = []
    for path, name in PATCH_FIELDS:
        url = path.format(code="WH-HC-001", case_id=1, username=FUZZER)
        response = fuzzed.client.patch(url, json=nested(name, None), headers=fuzzed.bearer())
        refused_here = (
            response.status_code == 422 and response.json()["details"][0]["field"] == name
        )
        if response.status_code != 200 and not refused_here:
            wrong.append(f"PATCH {url} {name}=null: {response.status_code} {response.text[:200]}")
    assert not wrong, wrong


OFF_SITE = [
    "//evil.example/",
    "/\\evil.example/",
    "/\t/evil.example/",
    "/\n/evil.example/",
    "https://evil.example/",
    "\\\\evil.example/",
    " //evil.example/",
]


def test_redirects_after_sign_in_and_bulk_stay_on_this_site(fuzzed: Fuzzed) -> None:
    """What the redirect check of the page fuzzing guards, with the targets a browser would
    carry off-site (backslashes read as slashes, tabs and newlines dropped)."""
    assert not any(same_site(target) for target in OFF_SITE)
    cookie, csrf = fuzzed.session()
    for target in OFF_SITE:
        signed_in = fuzzed.client.post(
            "/login", data={"username": FUZZER, "password": PASSWORD, "next": target}
        )
        fuzzed.client.cookies.set(COOKIE, cookie)
        bulk = fuzzed.client.post(
            "/queue/bulk",
            data={"csrf_token": csrf, "event": "submit", "cases": "1:1", "back": target},
        )
        fuzzed.client.cookies.clear()
        for response in (signed_in, bulk):
            assert response.status_code == 303, response.text
            assert same_site(response.headers["location"]), (target, response.headers["location"])
