"""Firing a case's event as both faces do it: the JSON API (api.http.cases) and the pages
(api.pages). Each face validates its input with the same body models and shows a refusal its own
way (an error body, or a redirect with a flash); what they share is here."""

from __future__ import annotations

from typing import Any, Protocol

from sqlalchemy import Connection

from jinqiu.states import CaseEvent
from jinqiu.workflow.cases.engine import TransitionResult, apply_event
from jinqiu.workflow.clock import Clock
from jinqiu.workflow.errors import DomainError
from jinqiu.workflow.roles import Actor


class EventRequest(Protocol):
    """What a validated request asks of every case it names (EventIn, BulkEventIn)."""

    @property
    def event(self) -> CaseEvent: ...

    @property
    def opinion(self) -> str | None: ...

    @property
    def data(self) -> dict[str, Any] | None: ...


def fire_event(
    conn: Connection, case_id: int, version: int, request: EventRequest, actor: Actor, clock: Clock
) -> TransitionResult:
    """The request's event on one case at the version the caller read; refusals are raised."""
    return apply_event(
        conn,
        case_id=case_id,
        event=request.event,
        expected_version=version,
        actor=actor,
        clock=clock,
        opinion=request.opinion,
        data=request.data,
    )


def fire_or_refuse(
    conn: Connection, case_id: int, version: int, request: EventRequest, actor: Actor, clock: Clock
) -> TransitionResult | DomainError:
    """`fire_event` in a savepoint of the request's transaction, for a request that goes on after a
    refusal (many cases at once, or a page that answers with a redirect): a refused event's
    writes are taken back and the refusal is returned, not raised. Any other error is raised."""
    try:
        with conn.begin_nested():
            return fire_event(conn, case_id, version, request, actor, clock)
    except DomainError as refusal:
        return refusal
