"""The FastAPI application: routers, the contract's error body, the process's services."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlencode

from apscheduler.schedulers.background import BackgroundScheduler
from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Engine

from jinqiu.api import errors, pages
from jinqiu.api.deps import AnonymousConn, Services, UnitOfWorkRoute
from jinqiu.api.http import (
    attachments,
    audit,
    auth,
    campaigns,
    cases,
    donors,
    employment,
    followup,
    forms,
    imports,
    notices,
    payments,
    publicity_lists,
    reports,
    statistics,
    units,
    users,
)
from jinqiu.api.http.events import event_router
from jinqiu.api.http.schemas import Health
from jinqiu.api.middleware import LimitBody, RejectNul, SecurityHeaders
from jinqiu.api.pages import LoginRequired
from jinqiu.api.pages import case_entry as case_entry_pages
from jinqiu.api.pages import followup as followup_pages
from jinqiu.api.pages import forms as form_pages
from jinqiu.api.pages import inbox as inbox_pages
from jinqiu.api.pages import publicity as publicity_pages
from jinqiu.api.security import check_settings
from jinqiu.workflow.clock import Clock, SystemClock
from jinqiu.workflow.config import Settings, get_settings
from jinqiu.workflow.engine.registry import SERVED
from jinqiu.workflow.failures import count_sweep_errors
from jinqiu.workflow.runtime import open_database, tune_collector
from jinqiu.workflow.tick import tick

log = logging.getLogger("jinqiu.scheduler")
# The faces' routers: the JSON API by subject, then the pages. FastAPI matches a request against
# the routes in this order, one regular expression each (about 2.5 µs with its bookkeeping): the
# busiest API calls (a case's events) come first, the pages — which no /api path can match —
# after, so an event is matched against a dozen routes, not the hundred before it.
ROUTERS = (
    cases.router,
    auth.router,
    units.router,
    users.router,
    campaigns.router,
    imports.router,
    attachments.router,
    followup.router,
    payments.router,
    employment.router,
    donors.router,
    notices.router,
    publicity_lists.router,
    reports.router,
    statistics.router,
    audit.router,
    forms.router,
    case_entry_pages.router,  # before pages.router: /cases/new is not /cases/{case_id}
    inbox_pages.router,
    pages.router,
    publicity_pages.router,
    followup_pages.router,
    form_pages.router,
)

DESCRIPTION = """金秋助学 workflow service. Every error body is `{"code", "message", "details"}`:
`code` is stable snake_case for programs, `message` is Chinese for people, `details` names the
field (`[{"field","code","message"}]`) or carries `reasons`/`allowed_events`."""


def create_app(
    engine: Engine | None = None, clock: Clock | None = None, settings: Settings | None = None
) -> FastAPI:
    """The application with its services: `build_app()`, then `bind_services()`."""
    app = build_app()
    bind_services(app, engine=engine, clock=clock, settings=settings)
    return app


def bind_services(
    app: FastAPI,
    *,
    engine: Engine | None = None,
    clock: Clock | None = None,
    settings: Settings | None = None,
) -> Services:
    """Gives `app` its database, clock and settings (app.state.services, which every request and
    the lifespan read). Refused here, before anything is opened: no app signs or accepts tokens
    with a missing or short key, nor starts with an unreadable proxy list
    (api.security.InvalidSetting)."""
    settings = settings or get_settings()
    url = engine.url.render_as_string(hide_password=False) if engine else None
    settings = check_settings(settings, url)
    services = Services(
        engine=engine or open_database(settings.database_url),
        clock=clock or SystemClock(),
        settings=settings,
    )
    app.state.services = services
    return services


def build_app() -> FastAPI:
    """The routes, middleware and error handlers, which hold no services. FastAPI builds each
    route's validators on the first request that reaches it (~0.6 s for the whole app), so a
    process that needs apps on several databases (the tests) may build one and bind it again."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services: Services = app.state.services
        scheduler = start_scheduler(services) if services.settings.run_scheduler else None
        yield
        if scheduler is not None:
            scheduler.shutdown(wait=False)

    # /docs is served below from the package's own files; /redoc would need a CDN, so it is off.
    app = FastAPI(
        title="Jinqiu 金秋助学",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.router.route_class = UnitOfWorkRoute  # the app's own routes too (api.deps)
    errors.install(app, pages.error_page)
    app.add_middleware(RejectNul, html_error=pages.error_page)
    app.add_middleware(LimitBody, html_error=pages.error_page)  # nothing reads a body before it
    app.add_middleware(SecurityHeaders)  # added last, so outermost: on every answer, 413 included

    @app.get("/api/health", response_model=Health, tags=["health"])
    def health(conn: AnonymousConn) -> Health:
        return Health(status="ok", sweep_errors=count_sweep_errors(conn))

    @app.get("/docs", include_in_schema=False)
    def docs(request: Request) -> Response:
        return pages.templates.TemplateResponse(request, "docs.html", {"title": app.title})

    app.mount(
        "/static", StaticFiles(directory=str(Path(pages.__file__).parent / "static")), name="static"
    )

    @app.exception_handler(LoginRequired)
    async def login_required(_request: Request, exc: LoginRequired) -> Response:
        return RedirectResponse(f"/login?{urlencode({'next': exc.next_url})}", status_code=303)

    # The routers' routes go into the app's own list, not through app.include_router(): since
    # FastAPI 0.137 an include is a layer a request is matched through twice (~30 µs of CPU an
    # event, ~330 µs a page late in the list). Each route already carries its router's prefix,
    # tags and responses (given to api_router; nothing is given to an include). The one thing an
    # include added, app.dependency_overrides reaching the routes, nothing here uses.
    served = (event_router(name, noun) for name, noun in SERVED.items())  # the generic route's
    for router in (*ROUTERS, *served):
        app.router.routes.extend(router.routes)
    return app


def serve_app() -> FastAPI:
    """What `jinqiu serve` hands uvicorn (factory=True), in each worker: fresh settings from the
    environment with the scheduler on, passed explicitly (never through os.environ and a
    cached settings object, which the single-worker process had already read without it)."""
    tune_collector()
    return create_app(settings=Settings(run_scheduler=True))


def start_scheduler(services: Services) -> BackgroundScheduler:
    """APScheduler only wakes the sweep; what is due and what was sent live in the database,
    so every `serve` process may run its own scheduler. The first run is immediate: a catch-up
    after downtime."""

    def run() -> None:
        try:
            report = tick(services.engine, services.clock, services.settings)
            log.info(
                "sweep: %d reminders, %d publicity ended, %d sent, %d failures",
                len(report.sweep.reminders),
                len(report.sweep.publicity.ended),
                report.delivery.sent,
                len(report.sweep.failures),
            )
        except Exception:  # one failed sweep must not stop the next
            log.exception("sweep failed")

    scheduler = BackgroundScheduler(timezone="Asia/Shanghai")
    scheduler.add_job(
        run,
        "interval",
        seconds=services.settings.sweep_interval_seconds,
        next_run_time=services.clock.now(),
        max_instances=1,
        coalesce=True,
        id="sweep",
    )
    scheduler.start()
    return scheduler
