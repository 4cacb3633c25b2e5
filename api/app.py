"""The FastAPI application: routers, the contract's error body, the process's services."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy import Engine

from api import errors
from api.deps import Services
from api.routers import auth, campaigns, cases, units, users
from api.schemas import Health
from workflow.clock import Clock, SystemClock
from workflow.config import Settings, get_settings
from workflow.runtime import open_database

DESCRIPTION = """金秋助学 workflow service. Every error body is `{"code", "message", "details"}`:
`code` is stable snake_case for programs, `message` is Chinese for people, `details` names the
field (`[{"field","code","message"}]`) or carries `reasons`/`allowed_events`."""


def create_app(
    engine: Engine | None = None, clock: Clock | None = None, settings: Settings | None = None
) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(title="Jinqiu 金秋助学", version="0.1.0", description=DESCRIPTION)
    app.state.services = Services(
        engine=engine or open_database(settings.database_url),
        clock=clock or SystemClock(),
        settings=settings,
    )
    errors.install(app)

    @app.get("/api/health", response_model=Health, tags=["health"])
    def health() -> Health:
        return Health(status="ok")

    for router in (auth.router, units.router, users.router, campaigns.router, cases.router):
        app.include_router(router)
    return app
