"""The nouns the API serves through its generic event route, by their plural name in URLs
(`POST /api/<name>/{id}/events`). A noun registers itself where it is defined; the case keeps its
own route (`/api/cases/{id}/events`, with its scope and PII rules), so it is not listed here."""

from __future__ import annotations

from typing import Any

from jinqiu.workflow.engine.noun import Noun

SERVED: dict[str, Noun[Any]] = {}


def serve(name: str, noun: Noun[Any]) -> None:
    """Offer `noun`'s events at `/api/<name>/{id}/events` in apps created from now on."""
    if name in SERVED and SERVED[name] is not noun:
        raise ValueError(f"another noun is served as {name!r}")
    SERVED[name] = noun
