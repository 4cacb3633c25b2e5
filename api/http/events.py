"""The generic event route: `POST /api/<noun>/{id}/events` for every noun the engine's registry
serves (workflow.engine.registry), the request and response models built from its machine so that
OpenAPI lists its events. Authorisation and scope are the noun's (`refusal`, `visible`): a subject
the caller may not see is 404 — from the scope dependency, once the body is valid (422 before 404),
as on every route."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field, create_model

from jinqiu.api.deps import (
    Conn,
    CurrentActor,
    ServicesDep,
    api_router,
    in_handler,
    subject_in_scope,
)
from jinqiu.api.errors import ERROR_RESPONSES
from jinqiu.api.http.schemas import Strict
from jinqiu.workflow.engine import Noun, fire
from jinqiu.workflow.validation import DbId


def _names(values: tuple[Any, ...], title: str) -> type[Enum]:
    first = values[0] if values else None
    if isinstance(first, Enum):
        return type(first)
    return Enum(title, {str(v): str(v) for v in values}, type=str)  # type: ignore[return-value]


def event_router(name: str, noun: Noun[Any]) -> APIRouter:
    title = "".join(part.capitalize() for part in name.replace("-", "_").split("_"))
    events = _names(noun.machine.events, f"{title}Event")
    states = _names(noun.machine.state_names, f"{title}State")
    body_model: type[BaseModel] = create_model(
        f"{title}EventIn",
        __base__=Strict,
        event=(events, ...),
        version=(DbId, ...),
        opinion=(str | None, Field(default=None, max_length=2000)),
        data=(dict[str, Any] | None, None),
    )
    out_model: type[BaseModel] = create_model(
        f"{title}EventOut", id=(int, ...), state=(states, ...), version=(int, ...)
    )
    router = api_router(prefix=f"/api/{name}", tags=[name], responses=ERROR_RESPONSES)

    def fire_event(
        subject_id: int,
        body: Any,
        actor: CurrentActor,
        svc: ServicesDep,
        conn: Conn,
    ) -> Any:
        fired = fire(
            conn,
            noun,
            subject_id=subject_id,
            event=str(body.event.value),
            expected_version=body.version,
            actor=actor,
            clock=svc.clock,
            opinion=body.opinion,
            data=body.data,
        )
        return out_model(id=fired.id, state=str(fired.state), version=fired.version)

    # The body's model and the scope are only known here: FastAPI reads them from the annotations.
    fire_event.__annotations__["body"] = body_model
    fire_event.__annotations__["subject_id"] = Annotated[
        int,
        Depends(in_handler(subject_in_scope(noun), checked_by_engine="subject_id", fired_on=noun)),
    ]
    fire_event.__name__ = f"fire_{title.lower()}_event"
    router.add_api_route(
        "/{subject_id}/events",
        fire_event,
        methods=["POST"],
        response_model=out_model,
        summary=f"Fire an event on a {noun.machine.label}",
    )
    return router
