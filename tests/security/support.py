"""What the security tests share: the real `jinqiu` command against the `db` fixture's database,
and a real `jinqiu serve` on a loopback port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from jinqiu.workflow.db import normalise_url
from tests.conftest import POSTGRES_URL
from tests.factories import ROOT

JINQIU = Path(sys.executable).parent / "jinqiu"
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving(env: dict[str, str], log: Path) -> Iterator[str]:
    """`jinqiu serve` on a free loopback port until the block ends; yields its base URL."""
    port = free_port()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(JINQIU), "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, f"serve exited {process.returncode}:\n{log.read_text()}"
            try:
                if httpx.get(f"{base}/api/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"serve did not answer:\n{log.read_text()}"
            time.sleep(0.2)
        yield base
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
