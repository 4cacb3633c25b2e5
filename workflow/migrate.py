"""Schema migrations (Alembic), run from code: `jinqiu db upgrade`, `jinqiu serve`, the tests."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

from jinqiu.workflow.db import transaction

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(engine: Engine | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if engine is not None:
        # configparser treats "%" as interpolation: escape it (URL-encoded options, passwords).
        url = engine.url.render_as_string(hide_password=False)
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    cfg = alembic_config(engine)
    with transaction(engine) as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
