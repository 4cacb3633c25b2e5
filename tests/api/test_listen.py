"""`jinqiu serve --workers N`: the workers share one listening socket, and each worker's loop
(api.cli.listen.TakeTurnsLoop) takes one waiting connection, then pauses before the next, so a
burst of connections is shared among the workers instead of going to whichever woke first.
Checked on real loopback sockets: connections wait in the kernel's backlog, the loop's turns
are counted."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from jinqiu.api.cli.listen import ACCEPT_PAUSE_S, TakeTurnsLoop, run_uvicorn

WAITING = 5


class Listening:
    """A loop serving a listening socket on which WAITING connections already wait."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.accepted: list[asyncio.BaseTransport] = []
        self.problems: list[dict[str, Any]] = []
        self.server: asyncio.AbstractServer | None = None
        loop.set_exception_handler(lambda _loop, context: self.problems.append(context))

    def turn(self) -> int:
        """One turn of the loop (asyncio's documented stop-before-run: poll once, run what is
        ready); the connections accepted so far."""
        self.loop.call_soon(self.loop.stop)
        self.loop.run_forever()
        return len(self.accepted)


@contextmanager
def listening(new_loop: Callable[[], asyncio.AbstractEventLoop]) -> Iterator[Listening]:
    loop = new_loop()
    listener = socket.create_server(("127.0.0.1", 0), backlog=64)
    clients = [socket.create_connection(listener.getsockname()) for _ in range(WAITING)]
    state = Listening(loop)

    class Keep(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            state.accepted.append(transport)

    try:
        state.server = loop.run_until_complete(loop.create_server(Keep, sock=listener))
        yield state
    finally:
        assert state.server is not None
        state.server.close()
        for transport in state.accepted:
            transport.close()
        loop.run_until_complete(state.server.wait_closed())
        for c in clients:
            c.close()
        loop.close()


def test_asyncios_own_loop_takes_a_whole_burst_in_one_turn() -> None:
    """What the workers' loop changes."""
    with listening(asyncio.SelectorEventLoop) as state:
        assert state.turn() == WAITING


def test_the_workers_loop_takes_one_connection_then_pauses() -> None:
    with listening(TakeTurnsLoop) as state:
        assert state.turn() == 1  # the others wait: for another worker, or the pause's end
        counts = []
        deadline = time.monotonic() + 5
        while len(state.accepted) < WAITING and time.monotonic() < deadline:
            time.sleep(ACCEPT_PAUSE_S)
            counts.append(state.turn())
        assert len(state.accepted) == WAITING, counts  # each taken in the end
        steps = [b - a for a, b in zip([1, *counts[:-1]], counts, strict=True)]
        assert max(steps) == 1, counts
        assert state.problems == []


def test_a_server_closed_during_the_pause_stops_accepting_quietly() -> None:
    with listening(TakeTurnsLoop) as state:
        assert state.turn() == 1
        assert state.server is not None
        state.server.close()
        time.sleep(ACCEPT_PAUSE_S * 3)
        state.turn()
        state.turn()
        assert len(state.accepted) == 1
        assert state.problems == []


def test_serve_with_workers_runs_them_on_that_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    """run_uvicorn hands the workers this loop (uvicorn's `loop` option, an import path): what
    uvicorn's supervisor would start each worker with, caught instead of started."""
    import uvicorn
    import uvicorn.supervisors

    class Started(Exception):
        def __init__(self, config: uvicorn.Config, sockets: list[socket.socket]) -> None:
            super().__init__()
            self.loop_factory = config.get_loop_factory()
            for s in sockets:
                s.close()

    class Supervisor:
        def __init__(self, config: uvicorn.Config, sockets: list[socket.socket]) -> None:
            self.config, self.sockets = config, sockets

        def run(self) -> None:
            raise Started(self.config, self.sockets)

    monkeypatch.setattr(uvicorn.supervisors, "Multiprocess", Supervisor)
    with pytest.raises(Started) as started:
        run_uvicorn("jinqiu.api.app:serve_app", host="127.0.0.1", port=0, workers=2, factory=True)
    assert started.value.loop_factory is TakeTurnsLoop
