"""Alembic environment: the URL comes from the caller (workflow.migrate) or JINQIU_DATABASE_URL."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from jinqiu.workflow.db import make_engine
from jinqiu.workflow.metadata import metadata

config = context.config


def run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copy
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    run(connection)
else:
    engine = make_engine(config.get_main_option("sqlalchemy.url") or None)
    with engine.connect() as conn:
        run(conn)
    engine.dispose()
