"""Issue 9, "Authorisation pasted into handlers": the object a path names (a unit, a user, a
campaign, a case, a notification) is loaded — or refused with 404 outside the caller's subtree —
by a dependency (jinqiu.api.deps; the pages' with the page session's actor), never by the
handler itself; and `audit.read`, granted to
auditors, is what the log of full-number reads requires."""

from __future__ import annotations

from fastapi.routing import APIRoute
from sqlalchemy import create_engine

from jinqiu.api.app import ROUTERS, create_app
from jinqiu.api.deps import UnitOfWorkRoute
from jinqiu.api.http.events import event_router
from jinqiu.workflow.config import Settings
from jinqiu.workflow.engine.registry import SERVED
from jinqiu.workflow.roles import ROLE_PERMISSIONS, Grant
from jinqiu.workflow.users.models import Role
from tests.api.conftest import World, username
from tests.factories import new_case


def routes() -> list[APIRoute]:
    # The generic event route of every noun the engine serves (an employment record's) too.
    served = [event_router(name, noun) for name, noun in SERVED.items()]
    found = [r for router in (*ROUTERS, *served) for r in router.routes if isinstance(r, APIRoute)]
    app = create_app(engine=create_engine("sqlite://"), settings=Settings(secret_key="x" * 32))
    documented = {(m.upper(), p) for p, ops in app.openapi()["paths"].items() for m in ops}
    assert documented <= {(m, r.path) for r in found for m in r.methods} | {("GET", "/api/health")}
    return found


def test_every_path_parameter_is_resolved_by_a_scope_dependency() -> None:
    by_handler = [
        f"{sorted(r.methods)} {r.path}: {[p.name for p in r.dependant.path_params]}"
        for r in routes()
        if r.dependant.path_params
    ]
    assert not by_handler, "handlers reading an object's key themselves:\n" + "\n".join(by_handler)
    resolvers = {
        sub.call.__module__  # type: ignore[union-attr]
        for r in routes()
        for sub in r.dependant.dependencies
        if sub.path_params
    }
    # The pages resolve with the page session's actor, through api.deps's loaders.
    assert resolvers == {"jinqiu.api.deps", "jinqiu.api.pages"}


def test_the_log_of_full_reads_is_for_auditors_of_the_subtree(world: World) -> None:
    case_id = new_case(world.engine, world.clock, world.campaign, "WH-HC-001")
    shown = world.client.get(
        f"/api/cases/{case_id}", headers=world.as_(username("manager", "WH-HC"))
    )
    assert shown.json()["pii_unmasked"] is True

    log = world.client.get("/api/audit/pii-access", headers=world.as_(username("auditor", "WH-HC")))
    assert log.status_code == 200, log.text
    assert [(e["case"], e["actor"], e["purpose"]) for e in log.json()] == [
        (case_id, username("manager", "WH-HC"), "GET /api/cases/{id}")
    ]
    assert "worker.id_number" in log.json()[0]["fields"]
    # The auditor's own reads of the log are not reads of numbers: nothing more is recorded.
    again = world.client.get(
        "/api/audit/pii-access",
        params={"case": case_id},
        headers=world.as_(username("auditor", "WH-HC")),
    )
    assert again.json() == log.json()

    sibling = world.client.get(
        "/api/audit/pii-access", headers=world.as_(username("auditor", "WH-HC-002"))
    )
    assert sibling.status_code == 200 and sibling.json() == []
    named = world.client.get(
        "/api/audit/pii-access",
        params={"case": case_id},
        headers=world.as_(username("auditor", "WH-HC-002")),
    )
    assert named.status_code == 404 and named.json()["code"] == "not_found"

    for role in Role:
        if role is Role.SCHEDULER or Grant.READ_AUDIT in ROLE_PERMISSIONS[role]:
            continue
        refused = world.client.get(
            "/api/audit/pii-access", headers=world.as_(username(role.value, "WH"))
        )
        assert (refused.status_code, refused.json()["code"]) == (403, "forbidden"), role


def test_an_invalid_body_is_named_once_and_before_any_lookup(world: World) -> None:
    """The contract's order is 401, 403, 422, then 404: a body is checked before the object it
    is about is looked up (the scope dependency takes the body too), and each problem is named
    once although two dependants read the body."""
    case_id = new_case(world.engine, world.clock, world.campaign, "WH-HC-001")
    outsider = world.as_(username("manager", "WH-HC-002"))
    for method, path, body, field in [
        ("PATCH", f"/api/cases/{case_id}", {"student": {"exam_score": 5000}}, "student.exam_score"),
        ("POST", f"/api/cases/{case_id}/events", {"event": "fly", "version": 1}, "event"),
        ("POST", f"/api/campaigns/{world.campaign + 99}/reports", {"unit": ""}, "unit"),
    ]:
        response = world.client.request(method, path, json=body, headers=outsider)
        assert response.status_code == 422, (path, response.text)
        assert [d["field"] for d in response.json()["details"]] == [field], response.text
    admin = world.as_(username("admin", "WH-HC-002"))
    response = world.client.patch("/api/units/WH-HC-001", json={"name": ""}, headers=admin)
    assert response.status_code == 422, response.text
    assert [d["field"] for d in response.json()["details"]] == ["name"]
    response = world.client.patch("/api/users/nobody", json={"roles": []}, headers=admin)
    assert response.status_code == 422, response.text
    assert [d["field"] for d in response.json()["details"]] == ["roles"]


def test_every_route_runs_its_handler_in_the_unit_of_work() -> None:
    """A write is committed by its route (api.deps.UnitOfWorkRoute, in the handler's own trip to
    the thread pool): a router made with plain APIRouter would commit nothing (its requests
    would fail loudly instead). Every router is made by api_router, the app's own routes too."""
    app = create_app(engine=create_engine("sqlite://"), settings=Settings(secret_key="x" * 32))
    own = [r for r in app.router.routes if isinstance(r, APIRoute)]
    plain = [
        f"{sorted(r.methods)} {r.path}"
        for r in [*routes(), *own]
        if not isinstance(r, UnitOfWorkRoute)
    ]
    assert not plain, "routes outside the unit of work:\n" + "\n".join(plain)
    assert own, "the app's own routes (/api/health) were not found"
