"""`python -m bench scaleout [--db URL] [--servers 3] [--ticks 2] [--cases N]`: event throughput
through 1, 2, … `--servers` separate `jinqiu serve` processes on one database, with `--ticks`
`jinqiu tick` loops sweeping and delivering beside them — the shape of a deployment past one
machine (many stateless processes, one PostgreSQL), measured on this one.

The world: as `bench http` (the Weihai tree, a campaign whose survey is open today, a clerk per
grassroots union and a reviewer per district, `--cases` cases per step), plus one deadline due
today (the districts' statistics report), so the sweeps — every server's scheduler and the tick
loops — have reminders to claim, render and deliver, to an SMTP server in this process.

Per step k = 1 … `--servers`: k `jinqiu serve --workers 1` processes, each on its own port (step k
starts the k-th and keeps the others), all healthy and warmed before the clock starts; `--concurrency` connections spread round-robin over them; every
case of the step's own slice gets `submit` (its clerk) then `verify` (its district's reviewer).
`events_per_s` per step; `scaling` = each step's rate ÷ the first step's (linear would be k).
Per step also the CPU the servers, the tick loops and PostgreSQL's backends used (from /proc), so
the figures say which of them ran out first on this machine.

Checked afterwards: every case waiting for publicity with 3 audit entries, the counters equal
to a recount, each reminder claimed once in the ledger (its unique key), every e-mail the outbox
marked sent received by the SMTP server with its stable Message-ID (at least once).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from sqlalchemy import Engine, func, select

from bench.common import BenchDatabase, add_db_option, bench_database, postgres_cpu_s, say
from bench.http import (
    SECRET,
    Phase,
    RawHttp,
    Request,
    World,
    build,
    check,
    cpu_of,
    event_requests,
    login,
    server_url,
)
from bench.seeding import loadavg
from jinqiu.demo.server import Server, ServerFailed, free_port, start_server
from jinqiu.notifications.models import OutboxMessage
from jinqiu.notifications.outbox import message_id
from jinqiu.states import CaseEvent
from jinqiu.states import CaseState as S
from jinqiu.workflow.campaigns.models import CampaignDeadline
from jinqiu.workflow.db import transaction
from jinqiu.workflow.deadlines.models import ReminderLedger

ROOT = Path(__file__).resolve().parents[1]
SUBMIT, VERIFY = CaseEvent.SUBMIT.value, CaseEvent.VERIFY.value
outbox_t = OutboxMessage.__table__  # type: ignore[attr-defined]
ledger_t = ReminderLedger.__table__  # type: ignore[attr-defined]
deadline_t = CampaignDeadline.__table__  # type: ignore[attr-defined]

# A tick loop: `jinqiu tick`'s work (a sweep, then the due deliveries) every `interval` seconds
# until stopped, counting its ticks on stdout.
TICK_LOOP = """
import signal, sys, time
from jinqiu.workflow.clock import SystemClock
from jinqiu.workflow.config import get_settings
from jinqiu.workflow.runtime import open_existing_database
from jinqiu.workflow.tick import tick
stop = False
def _stop(*_):
    global stop
    stop = True
signal.signal(signal.SIGTERM, _stop)
engine, settings, ticks = open_existing_database(), get_settings(), 0
while not stop:
    tick(engine, SystemClock(), settings)
    ticks += 1
    time.sleep(float(sys.argv[1]))
print(ticks, flush=True)
"""


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench scaleout", description=(__doc__ or "").split("\n")[0]
    )
    add_db_option(parser)
    parser.add_argument("--servers", type=int, default=3, help="serve processes at most (3)")
    parser.add_argument("--ticks", type=int, default=2, help="tick loops beside them (2)")
    parser.add_argument("--cases", type=int, default=1000, help="cases per step (1,000)")
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight (16)")
    parser.add_argument(
        "--tick-interval", type=float, default=1.0, help="seconds between a loop's ticks (1)"
    )
    args = parser.parse_args(argv)
    if not 1 <= args.servers <= 16 or not 0 <= args.ticks <= 8:
        parser.error("--servers must be 1-16 and --ticks 0-8")
    if not 1 <= args.cases <= 100_000 or not 1 <= args.concurrency <= 256:
        parser.error("--cases must be 1-100,000 and --concurrency 1-256")
    return args


def main(argv: list[str]) -> dict[str, Any]:
    args = parse_args(argv)
    with bench_database(args.db, name="scaleout") as db:
        return run(db, args)


class Mailbox:
    """An SMTP server in this process: the Message-IDs it received, with their counts."""

    def __init__(self) -> None:
        self.received: Counter[str] = Counter()
        self._lock = threading.Lock()
        self.port = free_port()
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        for line in envelope.content.split(b"\r\n"):
            if line.lower().startswith(b"message-id:"):
                with self._lock:
                    self.received[line.split(b":", 1)[1].strip().decode()] += 1
                break
        return "250 OK"

    def __enter__(self) -> Mailbox:
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()


@dataclass
class Step:
    servers: int
    events: Phase
    servers_cpu_s: float = 0.0
    ticks_cpu_s: float = 0.0
    database_cpu_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


def run(db: BenchDatabase, args: argparse.Namespace) -> dict[str, Any]:
    say(
        f"scaleout on {db.kind}: 1…{args.servers} `jinqiu serve --workers 1` processes and "
        f"{args.ticks} tick loops, {args.cases:,} cases × 2 events per step, "
        f"{args.concurrency} in flight"
    )
    started = time.perf_counter()
    world = build(db.engine, args.cases * args.servers)
    add_deadline_today(db.engine, world)
    say(f"  seeded {len(world.cases):,} cases in {time.perf_counter() - started:.1f} s")
    steps: list[Step] = []
    with Mailbox() as mailbox, tempfile.TemporaryDirectory(prefix="jinqiu-scaleout-") as tmp:
        env = {
            **os.environ,
            "JINQIU_DATABASE_URL": server_url(db),
            "JINQIU_SECRET_KEY": SECRET,
            "JINQIU_SMTP_HOST": "127.0.0.1",
            "JINQIU_SMTP_PORT": str(mailbox.port),
            "PYTHONUTF8": "1",
        }
        env.pop("PGOPTIONS", None)
        ticks = [
            subprocess.Popen(
                [sys.executable, "-c", TICK_LOOP, str(args.tick_interval)],
                env=env,
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=open(Path(tmp) / f"tick{i}.log", "wb"),  # noqa: SIM115
            )
            for i in range(args.ticks)
        ]
        servers: list[Server] = []  # step k adds the k-th; all stopped at the end
        tokens: dict[str, str] = {}
        try:
            for k in range(1, args.servers + 1):
                part = world.cases[(k - 1) * args.cases : k * args.cases]
                servers.append(start_server(env, Path(tmp) / f"serve{k}.log", workers=1, cwd=ROOT))
                try:
                    servers[-1].wait_healthy(90)
                except ServerFailed as failed:
                    raise SystemExit(str(failed)) from None
                tokens = tokens or login(servers[0].base_url, world.users)
                steps.append(one_step(servers, tokens, part, args, ticks))
        finally:
            for server in servers:
                server.stop()
            tick_counts = []
            for process in ticks:
                process.terminate()
                out, _ = process.communicate(timeout=120)
                tick_counts.append(int(out.strip() or 0))
        # The outbox's e-mails marked sent, each received at least once under its Message-ID.
        with db.engine.connect() as conn:
            sent = [
                r.idempotency_key
                for r in conn.execute(
                    select(outbox_t.c.idempotency_key).where(
                        outbox_t.c.status == "sent", outbox_t.c.channel == "email"
                    )
                )
            ]
        missing = [k for k in sent if mailbox.received[message_id(k)] == 0]
        received = sum(mailbox.received.values())
    ok_cases = check(db.engine, world)
    reminders, duplicates = ledger_facts(db.engine)
    base = steps[0].events.per_s
    result_steps = [
        {
            "servers": s.servers,
            "events_per_s": round(s.events.per_s, 1),
            "scaling": round(s.events.per_s / base, 2),
            "p50_ms": round(s.events.ms(50), 2),
            "p99_ms": round(s.events.ms(99), 2),
            "cpu_s": {
                "servers": round(s.servers_cpu_s, 2),
                "ticks": round(s.ticks_cpu_s, 2),
                "postgres": round(s.database_cpu_s, 2),
                "wall": round(s.events.wall_s, 2),
            },
        }
        for s in steps
    ]
    say(f"  {ok_cases}; {reminders} reminders in the ledger; {received} e-mails received")
    return {
        "bench": "scaleout",
        "db": db.kind,
        "servers": args.servers,
        "ticks": args.ticks,
        "ticks_done": tick_counts,
        "cases_per_step": args.cases,
        "concurrency": args.concurrency,
        "steps": result_steps,
        # events/s with the most servers ÷ with one (linear would be `servers`)
        "ratio": result_steps[-1]["scaling"],
        "reminders": reminders,
        "reminder_duplicates": duplicates,
        "emails_sent": len(sent),
        "emails_received": received,
        "emails_missing": len(missing),
        "ok": not missing and duplicates == 0,
        "cores": os.cpu_count(),
        "loadavg": loadavg(),
    }


def one_step(
    servers: list[Server],
    tokens: dict[str, str],
    cases: list[tuple[int, str, str]],
    args: argparse.Namespace,
    ticks: list[subprocess.Popen[bytes]],
) -> Step:
    """The step's cases through all `servers` (healthy; the last one new and still cold)."""
    k = len(servers)
    urls = [s.base_url for s in servers]
    server_pids = {s.process.pid for s in servers}
    tick_pids = {p.pid for p in ticks}
    # Warm every server (first requests compile queries and load templates), uncounted.
    warm: list[Request] = [
        ("GET", f"/api/cases/{c}", None, tokens[f"clerk.{g.lower()}"]) for c, g, _d in cases
    ][: 20 * k]
    fire_spread(urls, f"warm-up×{k}", warm, args.concurrency)
    before = (cpu_of(server_pids), cpu_of(tick_pids), postgres_cpu_s())
    phases = [
        fire_spread(urls, f"{name}×{k}", requests, args.concurrency)
        for name, requests in zip((SUBMIT, VERIFY), event_requests(cases, tokens), strict=True)
    ]
    after = (cpu_of(server_pids), cpu_of(tick_pids), postgres_cpu_s())
    events = Phase(
        f"events×{k}",
        wall_s=sum(p.wall_s for p in phases),
        ns=[n for p in phases for n in p.ns],
    )
    say(
        f"  {k} server(s): {events.per_s:,.0f} events/s, p50 {events.ms(50):.1f} ms, "
        f"p99 {events.ms(99):.1f} ms; CPU s: servers {after[0] - before[0]:.1f}, ticks "
        f"{after[1] - before[1]:.1f}, postgres {after[2] - before[2]:.1f} in "
        f"{events.wall_s:.1f} s"
    )
    return Step(
        k,
        events,
        servers_cpu_s=after[0] - before[0],
        ticks_cpu_s=after[1] - before[1],
        database_cpu_s=after[2] - before[2],
    )


def ledger_facts(engine: Engine) -> tuple[int, int]:
    """Reminders claimed, and how many ledger keys appear more than once (must be none)."""
    key = (ledger_t.c.deadline_id, ledger_t.c.unit_id, ledger_t.c.kind, ledger_t.c.occurrence)
    with engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(ledger_t)).scalar_one()
        doubled = conn.execute(
            select(func.count()).select_from(
                select(*key).group_by(*key).having(func.count() > 1).subquery()
            )
        ).scalar_one()
    return int(total), int(doubled)


def add_deadline_today(engine: Engine, world: World) -> None:
    """The grassroots unions' survey materials, due today (the campaign `bench http` loads has
    no deadline): every grassroots union with a case still in survey is owed a T-0 reminder,
    which the servers' schedulers and the tick loops race to send."""
    with transaction(engine) as conn:
        conn.execute(
            deadline_t.insert().values(
                campaign_id=world.campaign_id,
                key="survey_materials",
                title="报送困难职工子女金秋助学情况摸底表",
                due=dt.date.today(),
                responsible_level="grassroots",
                responsible=None,
                done_when={"no_cases_in": [S.SURVEY.value]},
            )
        )


def fire_spread(urls: list[str], name: str, requests: list[Request], concurrency: int) -> Phase:
    """`requests` over `concurrency` keep-alive connections dealt round-robin to the servers,
    each connection taking the next request off one shared queue."""
    phase = Phase(name)

    async def go() -> None:
        clients = []
        for i in range(concurrency):
            host, port = urls[i % len(urls)].removeprefix("http://").split(":")
            clients.append(RawHttp(host, int(port)))
        await asyncio.gather(*(c.request("GET", "/api/health", None, None) for c in clients))
        queue: asyncio.Queue[Request] = asyncio.Queue()
        for r in requests:
            queue.put_nowait(r)

        async def worker(client: RawHttp) -> None:
            while not queue.empty():
                method, path, body, token = queue.get_nowait()
                started = time.perf_counter_ns()
                status, content = await client.request(method, path, body, token)
                phase.ns.append(time.perf_counter_ns() - started)
                if status != 200:
                    phase.failures.append(f"{method} {path}: {status} {content[:300]!r}")

        started = time.perf_counter()
        await asyncio.gather(*(worker(c) for c in clients))
        phase.wall_s = time.perf_counter() - started
        for c in clients:
            await c.close()

    asyncio.run(go())
    if phase.failures:
        raise SystemExit(f"{name}: {len(phase.failures)} requests failed, e.g. {phase.failures[0]}")
    return phase
