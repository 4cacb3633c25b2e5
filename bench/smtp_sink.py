"""`python -m bench.smtp_sink`: an SMTP server (aiosmtpd) on a free loopback port, in a process
of its own so that its CPU is not the benchmark's. It prints `{"port": N}` once listening, then
answers each line on stdin: `take` prints what arrived since the last `take` as one JSON line
— `{"received": [[idempotency key, Message-ID, client port], …], "connections": EHLOs
greeted, "cpu_s": its CPU time so far}` — and forgets them; end of input stops it. Only the headers of each message are parsed."""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from email.parser import BytesHeaderParser
from email.policy import compat32
from typing import Any

from aiosmtpd.controller import Controller

KEY_HEADER = "X-Jinqiu-Idempotency-Key"


class Sink:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.received: list[list[Any]] = []
        self.connections = 0  # smtplib greets once per connection
        self.parser = BytesHeaderParser(policy=compat32)

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        with self.lock:
            self.connections += 1
        return responses

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        content: bytes = envelope.content
        end = content.find(b"\r\n\r\n")
        headers = self.parser.parsebytes(content[: end + 4] if end >= 0 else content)
        row = [str(headers[KEY_HEADER]), str(headers["Message-ID"]), int(session.peer[1])]
        with self.lock:
            self.received.append(row)
        return "250 Message accepted for delivery"

    def take(self) -> tuple[list[list[Any]], int]:
        with self.lock:
            taken, self.received = self.received, []
            connections, self.connections = self.connections, 0
        return taken, connections


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> int:
    sink = Sink()
    controller = Controller(
        sink, hostname="127.0.0.1", port=free_port(), server_hostname="smtp.bench.test"
    )
    controller.start()
    try:
        print(json.dumps({"port": controller.port}), flush=True)
        for line in sys.stdin:
            if line.strip() == "take":
                received, connections = sink.take()
                taken = {
                    "received": received,
                    "connections": connections,
                    "cpu_s": time.process_time(),
                }
                print(json.dumps(taken), flush=True)
    finally:
        controller.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
