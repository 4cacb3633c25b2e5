"""Running the `jinqiu` command line from a test: in this process, or as the real console script.

In this process is `jinqiu.api.cli.run(argv)` — what the console script's `main()` runs — with
the environment, working directory, standard streams and temporary directory a new process
would have, and the process-wide state a command touches (the cached settings, the CLI's log
handler, the engines it opens) put back afterwards. It saves the interpreter's start-up and
imports (~1 s a command on this machine). The process boundary itself — the console script
exists, nothing but one line reaches stderr, the exit status, a traceback only in the log
file — keeps tests of its own that run the real script (`process=True`)."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import subprocess
import sys
import tempfile
import weakref
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, Engine, event

from jinqiu.api import cli as cli_module
from jinqiu.workflow.config import get_settings

JINQIU = Path(sys.executable).parent / "jinqiu"
TIMEOUT = 120


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str


def run_jinqiu(
    env: Mapping[str, str],
    args: Sequence[str],
    *,
    cwd: Path,
    process: bool = False,
    timeout: float = TIMEOUT,
) -> Run:
    """`jinqiu ARGS` with exactly `env` as its environment, from `cwd`."""
    if process:
        done = subprocess.run(
            [str(JINQIU), *args],
            cwd=cwd,
            env=dict(env),
            capture_output=True,
            text=True,
            encoding="utf-8",
            timeout=timeout,
            check=False,
        )
        return Run(done.returncode, done.stdout, done.stderr)
    out, err = io.StringIO(), io.StringIO()
    with (
        _as_a_new_process(env, cwd),
        _engines_disposed_after(),
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
    ):
        code = cli_module.run(list(args))
    return Run(code, out.getvalue(), err.getvalue())


@contextlib.contextmanager
def _as_a_new_process(env: Mapping[str, str], cwd: Path) -> Iterator[None]:
    saved_env, saved_cwd, saved_stdin = dict(os.environ), Path.cwd(), sys.stdin
    saved_tempdir = tempfile.tempdir
    log = logging.getLogger("jinqiu")
    saved_log = (list(log.handlers), log.propagate, log.level)
    saved_log_path = cli_module._LazyFileHandler.path
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    sys.stdin = io.StringIO("")  # a prompt reads end of input, as from /dev/null
    tempfile.tempdir = None  # read again from TMPDIR, as a new process does
    cli_module._LazyFileHandler.path = None  # no log file yet
    get_settings.cache_clear()
    try:
        yield
    finally:
        get_settings.cache_clear()
        cli_module._LazyFileHandler.path = saved_log_path
        log.handlers[:] = saved_log[0]
        log.propagate, log.level = saved_log[1], saved_log[2]
        tempfile.tempdir = saved_tempdir
        sys.stdin = saved_stdin
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)


@contextlib.contextmanager
def _engines_disposed_after() -> Iterator[None]:
    """A process ends with its connections closed; here every engine that connected during the
    command is disposed of (no SQLite file or PostgreSQL connection left open by a test)."""
    opened: weakref.WeakSet[Engine] = weakref.WeakSet()

    def seen(conn: Connection) -> None:
        opened.add(conn.engine)

    event.listen(Engine, "engine_connect", seen)
    try:
        yield
    finally:
        event.remove(Engine, "engine_connect", seen)
        for engine in list(opened):
            engine.dispose()
