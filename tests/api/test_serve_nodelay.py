"""`jinqiu serve` answers on connections with TCP_NODELAY set, with one worker and with several.

Without it a keep-alive response waits for the client's delayed ACK (Nagle; with `--workers N`
uvicorn binds the listening socket with proto 0 and asyncio then never sets the option on the
accepted connections: Kludex/uvicorn#3149). Checked for real, with no clock: the real server is
started as a subprocess, a request is answered on a keep-alive connection, and the server's own
end of that connection is looked at — found in /proc (the TCP table's inode, the worker's file
descriptors), copied into this process with pidfd_getfd(2) and asked for TCP_NODELAY.
"""

from __future__ import annotations

import ctypes
import os
import socket
from pathlib import Path

import httpx
import pytest

from jinqiu.api.cli.listen import tcp_listener
from jinqiu.demo.server import serving
from tests.factories import ROOT

SECRET = "nodelay-test-secret-0123456789abcdef"
SYS_PIDFD_GETFD = 438  # the same number on every Linux architecture (new syscall table)


def environment(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JINQIU_")}
    return {
        **env,
        "JINQIU_DATABASE_URL": f"sqlite:///{tmp_path / 'jinqiu.db'}",
        "JINQIU_SECRET_KEY": SECRET,
        "PYTHONUTF8": "1",
    }


def _inode(local_port: int, remote_port: int) -> int | None:
    """The socket inode of the TCP connection from `local_port` to `remote_port` (IPv4)."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, inode = fields[1], fields[2], int(fields[9])
        if int(local.split(":")[1], 16) == local_port and int(remote.split(":")[1], 16) == (
            remote_port
        ):
            return inode
    return None


def _holder(pids: list[int], inode: int) -> tuple[int, int] | None:
    """(pid, fd) of the process among `pids` holding socket `inode`."""
    target = f"socket:[{inode}]"
    for pid in pids:
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(fd) == target:
                    return pid, int(fd.name)
            except OSError:
                continue
    return None


def _family(root: int) -> list[int]:
    """`root` and every process below it (uvicorn's supervisor and its workers)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def _copy_fd(pid: int, fd: int) -> socket.socket:
    libc = ctypes.CDLL(None, use_errno=True)
    pidfd = os.pidfd_open(pid)
    try:
        copied = libc.syscall(SYS_PIDFD_GETFD, pidfd, fd, 0)
        if copied < 0:
            errno = ctypes.get_errno()
            pytest.skip(f"pidfd_getfd refused here ({os.strerror(errno)})")
        return socket.socket(fileno=copied)
    finally:
        os.close(pidfd)


def server_side_nodelay(root_pid: int, server_port: int, client: socket.socket) -> int:
    """TCP_NODELAY as the server's process sees it on its end of `client`'s connection."""
    client_port = client.getsockname()[1]
    inode = _inode(server_port, client_port)
    assert inode is not None, "the server's end of the connection is not in /proc/net/tcp"
    held = _holder(_family(root_pid), inode)
    assert held is not None, "no process of the server holds the connection"
    with _copy_fd(*held) as copy:
        return copy.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)


def answered_connection(base_url: str) -> socket.socket:
    """A keep-alive connection on which the server has answered GET /api/health (so it has
    accepted it, and the worker holds it open)."""
    host, port = base_url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    sock.sendall(f"GET /api/health HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
    received = b""
    while b"\r\n\r\n" not in received or not received.endswith(b"}"):
        chunk = sock.recv(65536)
        assert chunk, f"connection closed after {received!r}"
        received += chunk
    assert received.startswith(b"HTTP/1.1 200"), received[:200]
    return sock


def test_the_probe_sees_an_accepted_connection_without_nodelay() -> None:
    """The check below can fail: a connection accepted by a plain socket reads 0."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        with socket.create_connection(listener.getsockname()) as client:
            accepted, _ = listener.accept()
            with accepted:
                assert server_side_nodelay(os.getpid(), listener.getsockname()[1], client) == 0


@pytest.mark.parametrize("workers", [1, 2])
def test_serve_answers_on_connections_with_tcp_nodelay(tmp_path: Path, workers: int) -> None:
    env = environment(tmp_path)
    with serving(env, tmp_path / "serve.log", workers=workers, cwd=ROOT) as server:
        port = int(server.base_url.rsplit(":", 1)[1])
        clients = [answered_connection(server.base_url) for _ in range(4)]  # both workers, likely
        try:
            seen = [server_side_nodelay(server.process.pid, port, c) for c in clients]
        finally:
            for c in clients:
                c.close()
        assert httpx.get(f"{server.base_url}/api/health", timeout=10).status_code == 200
    assert seen == [1, 1, 1, 1], server.tail()


def test_the_listening_socket_is_rewrapped_as_tcp_keeping_its_address() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as plain:
        plain.bind(("127.0.0.1", 0))
        address = plain.getsockname()
        assert plain.proto == 0  # what uvicorn's Config.bind_socket makes
        listener = tcp_listener(plain)
    with listener:
        assert listener.proto == socket.IPPROTO_TCP
        assert listener.getsockname() == address
        assert listener.get_inheritable()
