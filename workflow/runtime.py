"""Opening the service's database: the engine from settings, the schema brought up to date."""

from __future__ import annotations

from sqlalchemy import Engine

from workflow.db import make_engine
from workflow.migrate import upgrade


def open_database(url: str | None = None, *, migrate: bool = True) -> Engine:
    engine = make_engine(url)
    if migrate:
        upgrade(engine)
    return engine
