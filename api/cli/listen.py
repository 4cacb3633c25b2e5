"""How `jinqiu serve` runs uvicorn: every accepted connection with TCP_NODELAY, one worker or many.

With one worker uvicorn lets asyncio create the listening socket (through getaddrinfo: proto
IPPROTO_TCP), and asyncio sets TCP_NODELAY on each connection it accepts. With `--workers N`
uvicorn binds the socket itself, `socket.socket(family)` — proto 0 —, and hands it to the
workers; asyncio only sets TCP_NODELAY on sockets whose proto is IPPROTO_TCP, so none of the
workers' connections get it and every keep-alive response that the client does not answer at
once waits for its delayed ACK, ~40 ms (Nagle; Kludex/uvicorn#3149). Here the socket uvicorn
binds is re-wrapped with proto IPPROTO_TCP — the same file descriptor, so the same address and
options — before the workers are started; a spawned worker receives it with that proto.

The workers share that one socket, and asyncio accepts every connection waiting on it each time
it wakes up: a burst of connections (a proxy or a client opening its pool) all went to the
worker that woke first, and stayed there — `bench http` showed one worker at 95 % of a core and
the other idle for whole phases, at half the events per second of a shared phase. Each worker's
loop (`TakeTurnsLoop`) takes one connection, then waits ACCEPT_PAUSE_S before taking the next,
so the other workers, woken by the same readiness, take theirs."""

from __future__ import annotations

import asyncio
import socket
from contextlib import suppress
from typing import Any


def tcp_listener(sock: socket.socket) -> socket.socket:
    """`sock` (an IPv4/IPv6 stream socket) as a socket object whose proto is IPPROTO_TCP, so that
    asyncio sets TCP_NODELAY on the connections accepted from it. `sock` is detached."""
    if sock.family not in (socket.AF_INET, socket.AF_INET6) or sock.proto == socket.IPPROTO_TCP:
        return sock
    tcp = socket.socket(sock.family, sock.type, socket.IPPROTO_TCP, fileno=sock.detach())
    tcp.set_inheritable(True)
    return tcp


# At most a thousand new connections a second per worker: far above what the service's users
# open (keep-alive), and long enough for another worker to be scheduled and accept.
ACCEPT_PAUSE_S = 0.001


class TakeTurnsLoop(asyncio.SelectorEventLoop):
    """asyncio's loop, taking one waiting connection from a listening socket, then pausing
    ACCEPT_PAUSE_S before it takes another (asyncio takes every one waiting, up to the listen
    backlog: 2,048 with uvicorn). A connection that arrives after a quiet moment is taken at
    once; the kernel's backlog is unchanged. Overrides asyncio's `_accept_connection`, whose
    signature has not changed since Python 3.11."""

    def _accept_connection(
        self,
        protocol_factory: Any,
        sock: Any,
        sslcontext: Any = None,
        server: Any = None,
        backlog: int = 100,
        *args: Any,
        **kwargs: Any,
    ) -> None:
        super()._accept_connection(  # type: ignore[misc]
            protocol_factory, sock, sslcontext, server, 1, *args, **kwargs
        )
        if sock.fileno() != -1 and self._remove_reader(sock.fileno()):  # type: ignore[attr-defined]
            self.call_later(
                ACCEPT_PAUSE_S,
                self._accept_again,
                (protocol_factory, sock, sslcontext, server, backlog, *args),
            )

    def _accept_again(self, arguments: tuple[Any, ...]) -> None:
        sock = arguments[1]
        if sock.fileno() != -1:  # not closed meanwhile (the server shutting down)
            self._start_serving(*arguments)  # type: ignore[attr-defined]


def run_uvicorn(app: str, *, host: str, port: int, workers: int, **options: Any) -> None:
    """`uvicorn.run(app, host=…, port=…, workers=…, **options)`, the workers' listening socket
    re-wrapped by `tcp_listener` (what uvicorn.run does for workers > 1, one step added)."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    if workers <= 1:
        uvicorn.run(app, host=host, port=port, workers=workers, **options)
        return
    options.setdefault("loop", f"{__name__}:TakeTurnsLoop")
    config = uvicorn.Config(app, host=host, port=port, workers=workers, **options)
    sock = tcp_listener(config.bind_socket())
    with suppress(KeyboardInterrupt):  # as uvicorn.run: the supervisor stops its workers
        Multiprocess(config, sockets=[sock]).run()
