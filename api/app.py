"""The FastAPI application: routers, the error body of CONTRACT.md, the database per process."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from workflow.errors import DomainError


def create_app() -> FastAPI:
    app = FastAPI(title="Jinqiu 金秋助学", version="0.1.0")

    @app.exception_handler(DomainError)
    async def domain_error(_request: Request, exc: DomainError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status)

    @app.get("/api/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    return app
