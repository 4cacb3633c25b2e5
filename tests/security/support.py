"""What the security tests share: the real `jinqiu` command against the `db` fixture's database,
and a real `jinqiu serve` on a loopback port."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from jinqiu.demo.server import JINQIU
from jinqiu.demo.server import serving as serve_process
from jinqiu.workflow.db import normalise_url
from tests.conftest import POSTGRES_URL
from tests.factories import ROOT

TIMEOUT = 120


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


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str


def jinqiu(env: dict[str, str], *args: str, timeout: float = TIMEOUT) -> Run:
    done = subprocess.run(
        [str(JINQIU), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=timeout,
        check=False,
    )
    return Run(done.returncode, done.stdout, done.stderr)


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
