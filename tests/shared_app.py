"""One application per test process, bound to each test's database, clock and settings.

FastAPI builds a route's validators on the first request that reaches it: about 0.6 s for the
whole app, which a fresh app per test paid again in every test that asked anything. The routes
hold no services (api.app.build_app), so the tests that need an app on their own world bind the
same one again (`app_on`). A test that changes the app itself (adds a route) or needs a second
app beside its world's builds its own with `create_app`."""

from __future__ import annotations

import functools

from fastapi import FastAPI
from sqlalchemy import Engine

from jinqiu.api.app import bind_services, build_app
from jinqiu.workflow.clock import Clock
from jinqiu.workflow.config import Settings


@functools.cache
def _shared() -> FastAPI:
    return build_app()


def app_on(engine: Engine, clock: Clock, settings: Settings) -> FastAPI:
    """The process's app, now serving `engine` with `clock` and `settings`."""
    app = _shared()
    bind_services(app, engine=engine, clock=clock, settings=settings)
    return app
