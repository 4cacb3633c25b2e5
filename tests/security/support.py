"""What the security tests share: the `jinqiu` command against the `db` fixture's database (in
this process, tests/command.py; `process=True` for the real console script), and a real
`jinqiu serve` on a loopback port."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from jinqiu.demo.server import serving as serve_process
from jinqiu.workflow.config import normalise_url
from tests.command import TIMEOUT, Run, run_jinqiu
from tests.conftest import POSTGRES_URL
from tests.factories import ROOT


def url_of(engine: Engine) -> str:
    """A URL another process can open to reach the same data: the SQLite file, or the
    PostgreSQL server with this session's schema in `options`."""
    if engine.dialect.name == "sqlite":
        return engine.url.render_as_string(hide_password=False)
    with engine.connect() as conn:
        schema = conn.execute(text("SELECT current_schema()")).scalar_one()
    return (
        make_url(normalise_url(POSTGRES_URL))
        .update_query_dict({"options": f"-csearch_path={schema}"})
        .render_as_string(hide_password=False)
    )


def environment(database_url: str, **extra: str) -> dict[str, str]:
    """The caller's environment without any JINQIU_ setting or PGOPTIONS, plus these."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JINQIU_") and k != "PGOPTIONS"}
    return {**env, "JINQIU_DATABASE_URL": database_url, "PYTHONUTF8": "1", **extra}


def jinqiu(env: dict[str, str], *args: str, timeout: float = TIMEOUT, process: bool = False) -> Run:
    return run_jinqiu(env, args, cwd=ROOT, process=process, timeout=timeout)


def ok(env: dict[str, str], *args: str) -> str:
    run = jinqiu(env, *args)
    assert run.code == 0, f"jinqiu {' '.join(args)} exited {run.code}:\n{run.out}\n{run.err}"
    return run.out


@contextmanager
def serving(env: dict[str, str], log: Path) -> Iterator[str]:
    """`jinqiu serve` on a free loopback port until the block ends (the shared harness,
    jinqiu.demo.server); yields its base URL."""
    with serve_process(env, log, within=60, cwd=ROOT) as server:
        yield server.base_url
