"""`jinqiu serve` as a subprocess on a loopback port, waited for until it answers and stopped with
its workers: the one harness with which the tests and the bench (`python -m bench http`) start the
real server."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

# The console script installed beside this interpreter: the command an operator runs.
JINQIU = Path(sys.executable).parent / "jinqiu"
LOOPBACK = "127.0.0.1"


class ServerFailed(RuntimeError):
    """The server exited, or did not answer /api/health in time; the message ends with its log."""


def free_port(host: str = LOOPBACK) -> int:
    """A port nothing listens on now (the OS's pick; the server binds it a moment later)."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base_url: str
    log: Path

    def tail(self, chars: int = 3000) -> str:
        """The end of what the server printed (its log file)."""
        return self.log.read_text(encoding="utf-8", errors="replace")[-chars:]

    def running(self) -> bool:
        return self.process.poll() is None

    def healthy(self) -> bool:
        """Does GET /api/health answer {"status": "ok"} now?"""
        try:
            response = httpx.get(f"{self.base_url}/api/health", timeout=2)
            return response.status_code == 200 and response.json().get("status") == "ok"
        except (httpx.HTTPError, ValueError):
            return False

    def wait_healthy(self, within: float = 90.0) -> None:
        """Returns once /api/health answers; raises ServerFailed when the server exits first
        or `within` seconds pass (then the server is stopped)."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if not self.running():
                raise ServerFailed(f"jinqiu serve exited {self.process.returncode}:\n{self.tail()}")
            if self.healthy():
                return
            time.sleep(0.2)
        self.stop()
        raise ServerFailed(f"jinqiu serve did not answer within {within:g} s:\n{self.tail()}")

    def stop(self, grace: float = 30.0) -> int:
        """SIGTERM to the process started (uvicorn's supervisor stops its workers); after
        `grace` seconds, SIGKILL to the session it leads (its own workers, nothing else).
        Returns the exit code."""
        if self.running():
            self.process.terminate()
            try:
                self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        return self.process.returncode


def start_server(
    env: Mapping[str, str],
    log: Path,
    *,
    host: str | None = LOOPBACK,
    port: int | None = None,
    workers: int | None = None,
    command: Sequence[str] | None = None,
    cwd: Path | None = None,
) -> Server:
    """Starts `jinqiu serve` (or `command`, which takes serve's options) without waiting for it.
    `host=None` leaves serve's default host; the URL is on loopback either way. Its output goes
    to `log`; it leads a session of its own, so `stop` can end its workers too."""
    port = port or free_port()
    options = ["--port", str(port)]
    if host is not None:
        options += ["--host", host]
    if workers is not None:
        options += ["--workers", str(workers)]
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*(command or [str(JINQIU)]), "serve", *options],
            cwd=cwd,
            env=dict(env),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Server(process, f"http://{LOOPBACK}:{port}", log)


@contextmanager
def serving(
    env: Mapping[str, str],
    log: Path,
    *,
    within: float = 90.0,
    host: str | None = LOOPBACK,
    workers: int | None = None,
    command: Sequence[str] | None = None,
    cwd: Path | None = None,
) -> Iterator[Server]:
    """A healthy `jinqiu serve` for the block; stopped when the block ends, whatever happens."""
    server = start_server(env, log, host=host, workers=workers, command=command, cwd=cwd)
    try:
        server.wait_healthy(within)
        yield server
    finally:
        server.stop()
