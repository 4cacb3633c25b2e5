"""The app lists every route itself. FastAPI (0.137 and later) keeps each `include_router()` as a
layer a request is matched through twice — the router's routes to pick the router, then again
inside it — which cost ~30 µs of CPU an event and ~330 µs a request for a page near the end of
the list (measured in-process, docs/PERFORMANCE.md). The routers' routes carry their prefixes,
tags and responses themselves (given to `api_router`, never to an include), so the app takes
them as they are, in the routers' order: the first route that matches still wins."""

from __future__ import annotations

from fastapi.routing import APIRoute
from sqlalchemy import create_engine
from starlette.routing import BaseRoute, Mount, Route

from jinqiu.api.app import ROUTERS, create_app
from jinqiu.api.http.events import event_router
from jinqiu.workflow.config import Settings
from jinqiu.workflow.engine.registry import SERVED


def signature(route: BaseRoute) -> tuple[str, tuple[str, ...], str]:
    assert isinstance(route, APIRoute), route
    return route.path, tuple(sorted(route.methods)), route.name


def test_the_app_lists_every_route_of_its_routers_itself_in_their_order() -> None:
    app = create_app(engine=create_engine("sqlite://"), settings=Settings(secret_key="x" * 32))
    layers = [r for r in app.router.routes if not isinstance(r, (Route, Mount))]
    assert not layers, f"matched through a layer of their own: {[type(r).__name__ for r in layers]}"
    routers = [*ROUTERS, *(event_router(name, noun) for name, noun in SERVED.items())]
    expected = [signature(r) for router in routers for r in router.routes]
    listed = [signature(r) for r in app.router.routes if isinstance(r, APIRoute)]
    # the app's own few (/api/health, /docs) first, then the routers'
    assert listed[len(listed) - len(expected) :] == expected
