"""How `jinqiu serve` runs uvicorn: every accepted connection with TCP_NODELAY, one worker or many.

With one worker uvicorn lets asyncio create the listening socket (through getaddrinfo: proto
IPPROTO_TCP), and asyncio sets TCP_NODELAY on each connection it accepts. With `--workers N`
uvicorn binds the socket itself, `socket.socket(family)` — proto 0 —, and hands it to the
workers; asyncio only sets TCP_NODELAY on sockets whose proto is IPPROTO_TCP, so none of the
workers' connections get it and every keep-alive response that the client does not answer at
once waits for its delayed ACK, ~40 ms (Nagle; Kludex/uvicorn#3149). Here the socket uvicorn
binds is re-wrapped with proto IPPROTO_TCP — the same file descriptor, so the same address and
options — before the workers are started; a spawned worker receives it with that proto."""

from __future__ import annotations

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


def run_uvicorn(app: str, *, host: str, port: int, workers: int, **options: Any) -> None:
    """`uvicorn.run(app, host=…, port=…, workers=…, **options)`, the workers' listening socket
    re-wrapped by `tcp_listener` (what uvicorn.run does for workers > 1, one step added)."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    if workers <= 1:
        uvicorn.run(app, host=host, port=port, workers=workers, **options)
        return
    config = uvicorn.Config(app, host=host, port=port, workers=workers, **options)
    sock = tcp_listener(config.bind_socket())
    with suppress(KeyboardInterrupt):  # as uvicorn.run: the supervisor stops its workers
        Multiprocess(config, sockets=[sock]).run()
