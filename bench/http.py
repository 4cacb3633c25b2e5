"""`python -m bench http [--db URL] [--cases N] [--concurrency N] [--workers N]`: events per
second and latency through HTTP against `jinqiu serve --workers 2`, next to the same server's
ceiling for a trivial endpoint (GET /api/health) measured in the same run.

The world: the Weihai tree (city, 6 districts, 42 grassroots unions), a campaign like Weihai
2024 whose survey window covers today (the server runs on the real clock), one clerk per
grassroots union and one reviewer per district (created through the service), and N cases
created through the service in survey, spread over the grassroots unions. Then `jinqiu serve
--workers 2` is started as a subprocess on a free loopback port, with JINQIU_DATABASE_URL
pointing at this run's database (PostgreSQL: `?options=-csearch_path%3D<schema>`) and
JINQIU_SECRET_KEY set; its scheduler runs as in production (the campaign has no deadlines, so
its sweeps find nothing to do).

Timed, one phase after the other, each with a fixed number of requests in flight (`--concurrency`,
a minimal client in this process), in `--rounds` rounds (8): GET /api/health; then, on the
round's share of the cases, POST /api/cases/{id}/events submit (clerk, survey → archive check)
and verify (district reviewer, archive check → ready for publicity, waiting for a list); after
the last round, health once more. The health phases share 3 × `--health` requests (default
`--cases`). `ratio` = events/s over all event phases ÷ health/s over all health phases: this
machine's speed drifts by a tenth within a minute, and phases this short and interleaved see the
same machine (one health phase before all events and two after did not: the same code's ratio
ranged 0.44–0.57). `round_ratios`: each round's events/s ÷ the health phases either side of it.
Afterwards every case must be waiting for publicity with 3 audit entries and the counters must
equal a recount.
The server is stopped at the end, whatever happens. Each phase reports the server's CPU per
request, PostgreSQL's (its processes on this machine; approximate: a backend that exits during
the phase takes its CPU with it), how busy the machine's CPUs were, and each worker's share of
a core — how the phase's connections were shared among the workers, which decides its figures
more than anything else (`docs/PERFORMANCE.md`).

`jinqiu serve` sets TCP_NODELAY on every accepted connection (api/cli/listen.py). With
`--compare-proto0` a second server follows, each with its own N cases: the same command through
PROTO0_LAUNCHER, which leaves the listening socket as uvicorn binds it (proto 0: no
TCP_NODELAY with --workers > 1, Kludex/uvicorn#3149) — what `jinqiu serve` did before, reported
under `proto0`.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, func, select
from sqlalchemy.engine import make_url

from bench.common import (
    BenchDatabase,
    add_db_option,
    bench_database,
    percentile,
    postgres_cpu_s,
    processes_cpu,
    say,
)
from bench.seeding import IdNumbers, loadavg, pg_schema
from jinqiu.demo.server import Server, ServerFailed
from jinqiu.demo.server import start_server as start_server_process
from jinqiu.demo.units import seed_weihai_tree
from jinqiu.states import CaseEvent
from jinqiu.states import CaseState as S
from jinqiu.workflow.audit.models import AuditEntry
from jinqiu.workflow.campaigns.checks import uncovered_years
from jinqiu.workflow.campaigns.schema import CampaignFile
from jinqiu.workflow.campaigns.service import load_campaign
from jinqiu.workflow.cases.counters import recount, stored
from jinqiu.workflow.cases.models import Case
from jinqiu.workflow.cases.schema import CaseCreate
from jinqiu.workflow.cases.service import create_case
from jinqiu.workflow.clock import SystemClock
from jinqiu.workflow.db import transaction
from jinqiu.workflow.roles import Actor
from jinqiu.workflow.units.models import Unit
from jinqiu.workflow.users.models import Role
from jinqiu.workflow.users.service import UserCreate, create_user

ROOT = Path(__file__).resolve().parents[1]
WEIHAI = ROOT / "examples" / "campaigns" / "weihai-2024.json"
PASSWORD = "bench-password-2024"
SECRET = "bench-http-secret-0123456789abcdef"
SUBMIT, VERIFY = CaseEvent.SUBMIT.value, CaseEvent.VERIFY.value  # the events the phases fire
case_t = Case.__table__  # type: ignore[attr-defined]
audit_t = AuditEntry.__table__  # type: ignore[attr-defined]
unit_t = Unit.__table__  # type: ignore[attr-defined]


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench http", description=(__doc__ or "").split("\n")[0]
    )
    add_db_option(parser)
    parser.add_argument(
        "--cases", type=int, default=2000, help="cases; each gets 2 events (submit, verify)"
    )
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight")
    parser.add_argument("--workers", type=int, default=2, help="jinqiu serve --workers")
    parser.add_argument(
        "--health",
        type=int,
        default=None,
        help="3 × this many health requests over all health phases (default: --cases)",
    )
    parser.add_argument(
        "--rounds", type=int, default=8, help="rounds of health, submit, verify (then health)"
    )
    parser.add_argument(
        "--client",
        choices=("raw", "httpx"),
        default="raw",
        help="raw: a minimal asyncio HTTP/1.1 client (default, light on CPU); "
        "httpx: httpx.AsyncClient",
    )
    parser.add_argument(
        "--compare-proto0",
        action="store_true",
        help="then a second server whose listening socket is left as uvicorn binds it "
        "(no TCP_NODELAY with --workers > 1: jinqiu serve before the fix)",
    )
    return parser.parse_args(argv)


def main(argv: list[str]) -> dict[str, Any]:
    args = parse_args(argv)
    with bench_database(args.db, name="http") as db:
        return run(db, args)


# -- the world ---------------------------------------------------------------------------------


@dataclass
class World:
    campaign_id: int
    cases: list[tuple[int, str, str]]  # case id, grassroots code, district code
    users: list[str]


def campaign_spec(today: dt.date) -> CampaignFile:
    """Weihai 2024's rules, with the phases (and the file's other dates) moved so that the
    survey is open today, no deadlines (no reminders while we measure) and funds for every case. Every date stays in
    today's year (a campaign's dates must), and the years the official calendar does not know
    yet are given as plain weekday years (a campaign must cover every year it counts in)."""
    raw = json.loads(WEIHAI.read_text(encoding="utf-8"))
    day = dt.timedelta(days=1)
    first, last = dt.date(today.year, 1, 1), dt.date(today.year, 12, 31)

    def within(d: dt.date) -> str:
        return min(max(d, first), last).isoformat()

    survey_start, survey_end = today - 15 * day, today + 15 * day
    raw.update(
        name=f"{today.year}年度金秋助学活动（压测）",
        year=today.year,
        deadlines=[],
        phases=[
            {
                "key": "mobilise",
                "name": "宣传发动，调查摸底",
                "starts": within(survey_start),
                "ends": within(survey_end),
                "cases_leave": [S.SURVEY.value],
            },
            {
                "key": "check",
                "name": "审核档案，信息核查",
                "starts": within(survey_start),
                "ends": within(survey_end + 20 * day),
                "cases_leave": [S.ARCHIVE_CHECK.value],
            },
            {
                "key": "award",
                "name": "确定对象，发助学金",
                "starts": within(survey_end + 21 * day),
                "ends": within(survey_end + 30 * day),
                "cases_leave": [
                    S.READY_FOR_PUBLICITY.value,
                    S.PUBLICITY.value,
                    S.APPROVAL.value,
                    S.DISBURSEMENT.value,
                ],
            },
        ],
    )
    # The other dates of the file moved into today's year too: archives counted to today,
    # statistics cut off at the end of the award phase, follow-up closed with the year.
    raw["eligibility"]["archive_reference_date"] = today.isoformat()
    raw["statistics"]["cutoff"] = within(survey_end + 30 * day)
    raw["follow_up"]["closes_on"] = last.isoformat()
    for fund in raw["funds"]:
        fund["budget"] = "20000000"
    spec = CampaignFile.model_validate(raw)
    spec.calendar.years = uncovered_years(spec)
    return spec


def family(n: int, today: dt.date, workers: IdNumbers, students: IdNumbers) -> dict[str, Any]:
    """An eligible household: archived two months ago, a first-tier undergraduate."""
    w_number, _born, _gender = workers(n)
    s_number, _s_born, s_gender = students(n)
    return {
        "worker": {
            "name": "王建国",
            "id_number": w_number,
            "phone": "13806301234",
            "work_unit": "威海市某纺织有限公司",
            "household_size": 4,
            "monthly_income_per_capita": "850",
            "hardship_cause": "配偶患重病，长期医治",
            "archive_status": "deep",
            "archived_on": (today - dt.timedelta(days=60)).isoformat(),
            "categories": [],
        },
        "student": {
            "name": "王小明",
            "id_number": s_number,
            "relation": "子" if s_gender == "male" else "女",
            "education_level": "undergraduate",
            "tier": "first",
            "school": "山东大学（威海）",
            "major": "机械工程",
            "enrollment_year": today.year,
            "program_years": 4,
            "exam_score": 612,
            "admitted_school": "山东大学（威海）",
        },
    }


def build(engine: Engine, cases: int) -> World:
    clock = SystemClock()
    today = clock.now().date()
    with transaction(engine) as conn:
        tree = seed_weihai_tree(conn)
        campaign_id = load_campaign(conn, campaign_spec(today), clock)
        # Accounts only where the cases are (case n is at grassroots n mod 42): each costs an
        # Argon2 hash here and an Argon2 check at login, which a tiny run would mostly spend on.
        holding = tree.grassroots[:cases]
        users = []
        for code in holding:
            users.append(f"clerk.{code.lower()}")
            create_user(
                conn,
                UserCreate(username=users[-1], password=PASSWORD, unit=code, roles=[Role.CLERK]),
                clock,
            )
        for code in tree.districts:
            if not any(g.startswith(f"{code}-") for g in holding):
                continue
            users.append(f"reviewer.{code.lower()}")
            create_user(
                conn,
                UserCreate(username=users[-1], password=PASSWORD, unit=code, roles=[Role.REVIEWER]),
                clock,
            )
    with engine.connect() as conn:
        paths = {r.code: r.path for r in conn.execute(select(unit_t.c.code, unit_t.c.path))}
    workers = IdNumbers("371002", dt.date(1975, 1, 1), 3000)
    students = IdNumbers("371082", dt.date(2005, 1, 1), 1500)
    made: list[tuple[int, str, str]] = []
    for start in range(0, cases, 200):
        with transaction(engine) as conn:
            for n in range(start, min(cases, start + 200)):
                code = tree.grassroots[n % len(tree.grassroots)]
                clerk = Actor(f"clerk.{code.lower()}", code, paths[code], "grassroots", ("clerk",))
                spec = CaseCreate.model_validate(
                    {
                        "campaign": campaign_id,
                        "unit": code,
                        **family(n + 1, today, workers, students),
                    }
                )
                case_id = create_case(conn, spec, actor=clerk, clock=clock)
                made.append((case_id, code, code.rsplit("-", 1)[0]))
    return World(campaign_id, made, users)


# -- the server --------------------------------------------------------------------------------


def server_url(db: BenchDatabase) -> str:
    if db.kind == "sqlite":
        return f"sqlite:///{db.engine.url.database}"
    assert db.pg_url is not None
    return (
        make_url(db.pg_url)
        .update_query_dict({"options": f"-csearch_path={pg_schema(db.engine)}"})
        .render_as_string(hide_password=False)
    )


def server_cpu_s(server: Server) -> float:
    """User + system CPU of the server so far: the supervisor and its children (the workers),
    from /proc. Not the database's own processes."""
    return cpu_of({server.process.pid})


def machine_times() -> tuple[float, float]:
    """(all, idle) CPU time of the whole machine so far, from /proc/stat's first line."""
    values = [float(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(values), values[3] + values[4]  # idle + iowait


def worker_cpu_s(server: Server) -> dict[int, float]:
    """User + system CPU so far of each of the server's worker processes (its children)."""
    return {p.pid: p.cpu_s for p in processes_cpu() if p.parent == server.process.pid}


def cpu_of(pids: set[int], *, children: bool = True) -> float:
    """User + system CPU of these processes (and their children) so far, from /proc."""
    return sum(p.cpu_s for p in processes_cpu() if p.pid in pids or (children and p.parent in pids))


# `jinqiu serve` with the listening socket left as uvicorn binds it for --workers N (proto 0),
# as before api/cli/listen.py: asyncio then never sets TCP_NODELAY on accepted connections and
# every keep-alive response waits ~40 ms for the client's delayed ACK (Nagle). Only that changes.
PROTO0_LAUNCHER = """
import sys
import jinqiu.api.cli.listen as listen
listen.tcp_listener = lambda sock: sock
from jinqiu.api.cli import main
sys.argv[0] = "jinqiu"
main()
"""


def start_server(url: str, workers: int, log: Path, *, proto0: bool = False) -> Server:
    """`jinqiu serve --workers N` through the shared harness (jinqiu.demo.server), healthy; with
    `proto0`, the same command through PROTO0_LAUNCHER."""
    env = {**os.environ, "JINQIU_DATABASE_URL": url, "JINQIU_SECRET_KEY": SECRET, "PYTHONUTF8": "1"}
    env.pop("PGOPTIONS", None)
    command = [sys.executable, "-c", PROTO0_LAUNCHER] if proto0 else None
    server = start_server_process(env, log, workers=workers, command=command, cwd=ROOT)
    try:
        server.wait_healthy(90)
    except ServerFailed as failed:
        raise SystemExit(str(failed)) from None
    return server


# -- the client --------------------------------------------------------------------------------


@dataclass
class Phase:
    name: str
    wall_s: float = 0.0
    cpu_s: float = 0.0  # this (client) process
    server_cpu_s: float = 0.0  # the server's processes (uvicorn supervisor and workers)
    database_cpu_s: float = 0.0  # this machine's PostgreSQL processes (0 on SQLite: in the server)
    busy: float = 0.0  # share of the machine's CPUs not idle during the phase
    # each worker's CPU over the phase's wall time, busiest first: how evenly the connections
    # were shared (a worker takes every connection of a burst that it accepts in one wake-up)
    worker_shares: list[float] = field(default_factory=list)
    ns: list[int] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def per_s(self) -> float:
        return len(self.ns) / self.wall_s if self.wall_s else 0.0

    def ms(self, pct: float) -> float:
        return percentile(sorted(self.ns), pct) / 1e6

    def figures(self) -> dict[str, Any]:
        return {
            "requests": len(self.ns),
            "per_s": round(self.per_s, 1),
            "p50_ms": round(self.ms(50), 2),
            "p99_ms": round(self.ms(99), 2),
            "client_cpu_share": round(self.cpu_s / self.wall_s, 2) if self.wall_s else 0.0,
            "server_cpu_ms_each": round(self.server_cpu_s / len(self.ns) * 1e3, 3)
            if self.ns
            else 0.0,
            "database_cpu_ms_each": round(self.database_cpu_s / len(self.ns) * 1e3, 3)
            if self.ns
            else 0.0,
            "machine_busy": round(self.busy, 2),
            "worker_cpu_shares": [round(w, 2) for w in self.worker_shares],
        }


Request = tuple[str, str, dict[str, Any] | None, str | None]  # method, path, json, token


class RawHttp:
    """A minimal HTTP/1.1 keep-alive client on asyncio streams: what httpx does per request,
    minus most of the CPU (a few tens of µs instead of ~1-2 ms), so that on a 2-core machine the
    client takes less from the server it measures. Enough HTTP for this server: Content-Length
    or chunked bodies, no redirects."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def request(
        self, method: str, path: str, body: dict[str, Any] | None, token: str | None
    ) -> tuple[int, bytes]:
        if self._streams is None:
            self._streams = await asyncio.open_connection(self.host, self.port)
        reader, writer = self._streams
        payload = b"" if body is None else json.dumps(body, ensure_ascii=False).encode()
        head = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        if token:
            head.append(f"Authorization: Bearer {token}")
        if body is not None:
            head += ["Content-Type: application/json", f"Content-Length: {len(payload)}"]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + payload)
        status_line, _, header_block = (await reader.readuntil(b"\r\n\r\n")).partition(b"\r\n")
        status = int(status_line.split(b" ", 2)[1])
        headers = {
            k.strip().lower(): v.strip()
            for k, _, v in (line.partition(b":") for line in header_block.split(b"\r\n") if line)
        }
        if b"content-length" in headers:
            content = await reader.readexactly(int(headers[b"content-length"]))
        elif headers.get(b"transfer-encoding") == b"chunked":
            parts = []
            while size := int((await reader.readuntil(b"\r\n")).strip(), 16):
                parts.append(await reader.readexactly(size))
                await reader.readexactly(2)
            await reader.readuntil(b"\r\n")
            content = b"".join(parts)
        else:
            content = await reader.read()
        if headers.get(b"connection") == b"close":
            writer.close()
            self._streams = None
        return status, content

    async def close(self) -> None:
        if self._streams is not None:
            self._streams[1].close()
            self._streams = None


async def _fire(send: list[Any], requests: list[Request], phase: Phase) -> None:
    """One task per connection, each taking the next request off a shared queue."""
    queue: asyncio.Queue[Request] = asyncio.Queue()
    for r in requests:
        queue.put_nowait(r)

    async def worker(call: Any) -> None:
        while True:
            try:
                method, path, body, token = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            started = time.perf_counter_ns()
            status, content = await call(method, path, body, token)
            phase.ns.append(time.perf_counter_ns() - started)
            if status != 200:
                phase.failures.append(f"{method} {path}: {status} {content[:300]!r}")

    await asyncio.gather(*(worker(call) for call in send))


def fire(
    base_url: str,
    name: str,
    requests: list[Request],
    concurrency: int,
    *,
    client: str = "raw",
    server: Server | None = None,
) -> Phase:
    phase = Phase(name)
    host, port = base_url.removeprefix("http://").split(":")

    async def go() -> None:
        raws = [RawHttp(host, int(port)) for _ in range(concurrency)]
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=120) as httpx_client:

            async def via_httpx(
                method: str, path: str, body: dict[str, Any] | None, token: str | None
            ) -> tuple[int, bytes]:
                headers = {"Authorization": f"Bearer {token}"} if token else None
                response = await httpx_client.request(method, path, json=body, headers=headers)
                return response.status_code, response.content

            send = [via_httpx] * concurrency if client == "httpx" else [r.request for r in raws]
            # Open the connections before the clock starts.
            await asyncio.gather(*(call("GET", "/api/health", None, None) for call in send))
            server_cpu = server_cpu_s(server) if server is not None else 0.0
            workers_before = worker_cpu_s(server) if server is not None else {}
            database_cpu, (machine_all, machine_idle) = postgres_cpu_s(), machine_times()
            started, cpu = time.perf_counter(), time.process_time()
            await _fire(send, requests, phase)
            phase.wall_s = time.perf_counter() - started
            phase.cpu_s = time.process_time() - cpu
            if server is not None:
                phase.server_cpu_s = server_cpu_s(server) - server_cpu
                workers_after = worker_cpu_s(server)
                phase.worker_shares = sorted(
                    (
                        (cpu - workers_before.get(pid, 0.0)) / phase.wall_s
                        for pid, cpu in workers_after.items()
                    ),
                    reverse=True,
                )
            phase.database_cpu_s = postgres_cpu_s() - database_cpu
            now_all, now_idle = machine_times()
            phase.busy = 1 - (now_idle - machine_idle) / max(now_all - machine_all, 1e-9)
        for r in raws:
            await r.close()

    asyncio.run(go())
    server_ms = (
        f", server {phase.server_cpu_s / len(phase.ns) * 1e3:.2f} ms CPU each"
        f", database {phase.database_cpu_s / len(phase.ns) * 1e3:.2f} ms"
        f", machine {phase.busy:.0%} busy"
        f", workers {' / '.join(f'{w:.0%}' for w in phase.worker_shares)} of a core"
        if server is not None
        else ""
    )
    say(
        f"  {name:8} {len(phase.ns):6,} requests {phase.per_s:8,.0f}/s  p50 {phase.ms(50):7.2f} ms"
        f"  p99 {phase.ms(99):7.2f} ms  (client {phase.cpu_s / phase.wall_s:.0%} of a core"
        f"{server_ms})"
    )
    if phase.failures:
        raise SystemExit(f"{name}: {len(phase.failures)} requests failed, e.g. {phase.failures[0]}")
    return phase


def pooled_rate(phases: list[Phase]) -> float:
    """Requests per second over the phases taken together (their requests ÷ their wall time)."""
    return sum(len(p.ns) for p in phases) / sum(p.wall_s for p in phases)


def event_requests(
    cases: list[tuple[int, str, str]], tokens: dict[str, str]
) -> tuple[list[Request], list[Request]]:
    """`submit` on every case by its clerk, then `verify` by its district's reviewer."""
    submit: list[Request] = [
        ("POST", f"/api/cases/{c}/events", {"event": SUBMIT, "version": 1},
         tokens[f"clerk.{g.lower()}"])
        for c, g, _d in cases
    ]  # fmt: skip
    verify: list[Request] = [
        ("POST", f"/api/cases/{c}/events",
         {"event": VERIFY, "version": 2, "opinion": "档案核查无误，同意公示"},
         tokens[f"reviewer.{d.lower()}"])
        for c, _g, d in cases
    ]  # fmt: skip
    return submit, verify


def login(base_url: str, users: list[str]) -> dict[str, str]:
    """Every user signed in, four at a time (each login is an Argon2 check on the server)."""

    def one(client: httpx.Client, username: str) -> str:
        response = client.post("/api/auth/token", data={"username": username, "password": PASSWORD})
        if response.status_code != 200:
            raise SystemExit(f"login {username}: {response.status_code} {response.text}")
        return str(response.json()["access_token"])

    with (
        httpx.Client(base_url=base_url, timeout=60) as client,
        ThreadPoolExecutor(max_workers=4) as pool,
    ):
        return dict(zip(users, pool.map(lambda u: one(client, u), users), strict=True))


# -- the run -----------------------------------------------------------------------------------


def check(engine: Engine, world: World) -> str:
    with engine.connect() as conn:
        states = dict(
            conn.execute(select(case_t.c.state, func.count()).group_by(case_t.c.state)).all()
        )
        if states != {S.READY_FOR_PUBLICITY.value: len(world.cases)}:
            raise SystemExit(f"cases are not all waiting for publicity: {states}")
        entries = conn.execute(select(func.count()).select_from(audit_t)).scalar_one()
        if entries != 3 * len(world.cases):
            raise SystemExit(f"{entries} audit entries, not {3 * len(world.cases)}")
        if recount(conn, world.campaign_id) != stored(conn, world.campaign_id):
            raise SystemExit("dashboard counters differ from a recount of the cases")
    return "every case waiting for publicity with 3 audit entries; counters match a recount"


def measure(
    db: BenchDatabase,
    args: argparse.Namespace,
    cases: list[tuple[int, str, str]],
    users: list[str],
    *,
    proto0: bool,
) -> dict[str, Any]:
    """Start the server, fire the phases at it, stop it; the figures of one server variant."""
    rounds = max(1, min(args.rounds, len(cases)))
    per_health = max(1, 3 * (args.health or len(cases)) // (rounds + 1))
    label = (
        "jinqiu serve, listening socket as uvicorn binds it (proto 0)" if proto0 else "jinqiu serve"
    )
    say(f"  -- {label} --workers {args.workers}, {rounds} rounds")
    with tempfile.TemporaryDirectory(prefix="jinqiu-bench-http-") as tmp:
        server = start_server(server_url(db), args.workers, Path(tmp) / "serve.log", proto0=proto0)
        try:
            tokens = login(server.base_url, users)
            url, c = server.base_url, args.concurrency
            health: list[Request] = [("GET", "/api/health", None, None)] * per_health
            warm: list[Request] = [
                ("GET", f"/api/cases/{case_id}", None, tokens[f"clerk.{g.lower()}"])
                for case_id, g, _d in cases[:200]
            ]
            submit, verify = event_requests(cases, tokens)
            kw: dict[str, Any] = {"client": args.client, "server": server}
            fire(url, "warm-up", health[:500] + warm, c, **kw)
            phases: list[Phase] = []
            for r in range(rounds):
                share = slice(r * len(cases) // rounds, (r + 1) * len(cases) // rounds)
                phases.append(fire(url, "health", health, c, **kw))
                phases.append(fire(url, SUBMIT, submit[share], c, **kw))
                phases.append(fire(url, VERIFY, verify[share], c, **kw))
            phases.append(fire(url, "health", health, c, **kw))
        finally:
            server.stop()
        say(f"  server stopped (exit {server.process.returncode})")
    events = [p for p in phases if p.name in (SUBMIT, VERIFY)]
    healths = [p for p in phases if p.name == "health"]
    event_ns = [n for p in events for n in p.ns]
    events_wall = sum(p.wall_s for p in events)
    events_per_s = len(event_ns) / events_wall
    health_per_s = pooled_rate(healths)
    all_events = Phase(
        "events", wall_s=events_wall, ns=event_ns, server_cpu_s=sum(p.server_cpu_s for p in events)
    )
    health_requests = sum(len(p.ns) for p in healths)
    return {
        "events": len(event_ns),
        "events_per_s": round(events_per_s, 1),
        "p50_ms": round(all_events.ms(50), 2),
        "p99_ms": round(all_events.ms(99), 2),
        "health_per_s": round(health_per_s, 1),
        "ratio": round(events_per_s / health_per_s, 3),
        # round r: its submit and verify phases ÷ the health phases before and after it
        "round_ratios": [
            round(pooled_rate(events[2 * r : 2 * r + 2]) / pooled_rate(healths[r : r + 2]), 3)
            for r in range(rounds)
        ],
        "server_cpu_ms_per_event": round(all_events.server_cpu_s / len(event_ns) * 1e3, 3),
        "server_cpu_ms_per_health": round(
            sum(p.server_cpu_s for p in healths) / health_requests * 1e3, 3
        ),
        # PostgreSQL's own share of the machine (its processes on this host), per event
        "database_cpu_ms_per_event": round(
            sum(p.database_cpu_s for p in events) / len(event_ns) * 1e3, 3
        ),
        "phases": {f"{p.name}{i}": p.figures() for i, p in enumerate(phases, 1)},
    }


def run(db: BenchDatabase, args: argparse.Namespace) -> dict[str, Any]:
    variants = [False, True] if args.compare_proto0 else [False]
    say(
        f"http on {db.kind}: jinqiu serve --workers {args.workers}, {args.cases:,} cases × 2 "
        f"events per server variant, {args.concurrency} requests in flight"
    )
    started = time.perf_counter()
    world = build(db.engine, args.cases * len(variants))
    seed_s = time.perf_counter() - started
    say(
        f"  seeded {len(world.cases):,} cases and {len(world.users)} users through the service "
        f"in {seed_s:.1f} s"
    )
    figures = [
        measure(
            db,
            args,
            world.cases[i * args.cases : (i + 1) * args.cases],
            world.users,
            proto0=proto0,
        )
        for i, proto0 in enumerate(variants)
    ]
    say(f"  checked: {check(db.engine, world)}")
    result: dict[str, Any] = {
        "bench": "http",
        "db": db.kind,
        "workers": args.workers,
        "concurrency": args.concurrency,
        "client": args.client,
        "cases": args.cases,
        **figures[0],
    }
    if len(figures) > 1:
        result["proto0"] = figures[1]
    result.update(seed_s=round(seed_s, 1), loadavg=loadavg())
    return result
