"""`python -m bench replica [--cases N] [--readers N]`: dashboards read from a PostgreSQL streaming
replica while transitions are written on the primary — how stale such a read is, and what it
spares the primary. The measured half of docs/SCALING.md's "read replicas".

The bench makes its own pair of PostgreSQL servers in a temporary directory (the machine's
`initdb`, `pg_basebackup -R`, `pg_ctl`; as the `postgres` user when run as root): a primary with
`wal_level=replica` and an asynchronous streaming replica of it, on two free loopback ports;
both are stopped and removed at the end. The world is `bench http`'s (the Weihai tree, a campaign
whose survey is open today, `--cases` × 2 cases created through the service), on the primary.

Two phases, each over its own half of the cases: one writer thread fires `submit` then `verify`
on every case (`apply_event`, one transaction each, on the primary) while `--readers` threads
call the city's dashboard (`workflow.dashboard.service.dashboard`, as `GET /api/dashboard`):
(a) the baseline, the readers on the primary; (b) the readers on the replica. Per phase the
dashboard's p50/p99 and the writer's transitions/s. During (b) a watcher thread takes every
10th commit and polls the replica (all watched cases in one query, every ~1 ms) until that
case's new version is visible there: `visible_ms` p50/p99/max is the staleness a replica read
has, as this process sees it (its threads share one GIL); `replay_lag_ms` is PostgreSQL's own
figure for the same (`pg_stat_replication.replay_lag`, sampled every 50 ms). At the end, once the replica has
replayed everything the primary wrote, its dashboard counters must equal a recount of the cases
on the primary, and its case rows the primary's.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select, text

from bench.common import bench_database, percentile, say
from bench.http import build
from bench.seeding import loadavg, pg_schema
from jinqiu.states import CaseEvent
from jinqiu.workflow.cases.counters import recount, stored
from jinqiu.workflow.cases.engine import apply_event
from jinqiu.workflow.cases.models import Case
from jinqiu.workflow.clock import SystemClock
from jinqiu.workflow.dashboard.service import DashboardQuery, dashboard
from jinqiu.workflow.db import make_engine, transaction
from jinqiu.workflow.roles import Actor
from jinqiu.workflow.units.models import Unit

case_t = Case.__table__  # type: ignore[attr-defined]
unit_t = Unit.__table__  # type: ignore[attr-defined]
PG_BIN = Path("/usr/lib/postgresql/15/bin")
CITY = "WH"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench replica", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument("--cases", type=int, default=1000, help="cases per phase (1,000)")
    parser.add_argument("--readers", type=int, default=4, help="dashboard threads (4)")
    parser.add_argument(
        "--pg-bin", type=Path, default=PG_BIN, help="PostgreSQL's programs (initdb, pg_ctl, …)"
    )
    args = parser.parse_args(argv)
    if not 1 <= args.cases <= 50_000 or not 1 <= args.readers <= 32:
        parser.error("--cases must be 1-50,000 and --readers 1-32")
    if not (args.pg_bin / "initdb").exists():
        parser.error(f"no initdb in {args.pg_bin}: give --pg-bin")
    return args


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Pair:
    """A primary and its streaming replica, in `root`, run as the `postgres` user under root."""

    def __init__(self, root: Path, pg_bin: Path) -> None:
        self.root, self.bin = root, pg_bin
        self.primary_port, self.replica_port = free_port(), free_port()
        self.as_postgres = os.geteuid() == 0

    def run(self, *command: str) -> None:
        argv = [str(self.bin / command[0]), *command[1:]]
        if self.as_postgres:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SystemExit(f"{command[0]} failed: {done.stderr[-1500:]}")

    def url(self, port: int) -> str:
        return f"postgresql://postgres@127.0.0.1:{port}/postgres"

    def start(self) -> None:
        if self.as_postgres:
            shutil.chown(self.root, "postgres", "postgres")
        primary, replica = self.root / "primary", self.root / "replica"
        self.run("initdb", "-D", str(primary), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        with (primary / "postgresql.conf").open("a") as conf:
            conf.write(
                f"port = {self.primary_port}\nlisten_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.root}'\nwal_level = replica\n"
                "max_wal_senders = 4\n"
            )
        with (primary / "pg_hba.conf").open("a") as hba:
            hba.write("host replication all 127.0.0.1/32 trust\n")
        self.run("pg_ctl", "-D", str(primary), "-l", str(self.root / "primary.log"), "-w", "start")
        self.run(
            "pg_basebackup", "-h", "127.0.0.1", "-p", str(self.primary_port), "-U", "postgres",
            "-D", str(replica), "-R", "-X", "stream", "-c", "fast",
        )  # fmt: skip
        with (replica / "postgresql.conf").open("a") as conf:
            conf.write(f"port = {self.replica_port}\nhot_standby = on\n")
        self.run("pg_ctl", "-D", str(replica), "-l", str(self.root / "replica.log"), "-w", "start")

    def stop(self) -> None:
        for name in ("replica", "primary"):
            if (self.root / name / "postmaster.pid").exists():
                self.run("pg_ctl", "-D", str(self.root / name), "-m", "immediate", "-w", "stop")


@contextmanager
def replica_pair(pg_bin: Path) -> Iterator[Pair]:
    root = Path(tempfile.mkdtemp(prefix="jinqiu-bench-replica-"))
    pair = Pair(root, pg_bin)
    try:
        pair.start()
        yield pair
    finally:
        try:
            pair.stop()
        finally:
            shutil.rmtree(root, ignore_errors=True)


@dataclass
class PhaseResult:
    readers_on: str
    dashboard_ms: list[float] = field(default_factory=list)
    transitions: int = 0
    writer_s: float = 0.0
    visible_ms: list[float] = field(default_factory=list)
    replay_lag_ms: list[float] = field(default_factory=list)

    def figures(self) -> dict[str, Any]:
        calls = sorted(self.dashboard_ms)
        out: dict[str, Any] = {
            "readers_on": self.readers_on,
            "dashboard_calls": len(calls),
            "dashboard_p50_ms": round(percentile(calls, 50), 2),
            "dashboard_p99_ms": round(percentile(calls, 99), 2),
            "transitions_per_s": round(self.transitions / self.writer_s, 1),
        }
        if self.visible_ms:
            seen = sorted(self.visible_ms)
            out.update(
                visible_samples=len(seen),
                visible_p50_ms=round(percentile(seen, 50), 2),
                visible_p99_ms=round(percentile(seen, 99), 2),
                visible_max_ms=round(seen[-1], 2),
            )
        if self.replay_lag_ms:
            lags = sorted(self.replay_lag_ms)
            out.update(
                replay_lag_p50_ms=round(percentile(lags, 50), 2),
                replay_lag_p99_ms=round(percentile(lags, 99), 2),
            )
        return out


def main(argv: list[str]) -> dict[str, Any]:
    args = parse_args(argv)
    with replica_pair(args.pg_bin) as pair:
        say(
            f"replica: a primary on :{pair.primary_port} streaming to a replica on "
            f":{pair.replica_port}; {args.cases:,} cases × 2 events per phase, "
            f"{args.readers} dashboard readers"
        )
        with bench_database(pair.url(pair.primary_port), name="replica") as db:
            schema = pg_schema(db.engine)
            replica = make_engine(
                f"postgresql+psycopg://postgres@127.0.0.1:{pair.replica_port}/postgres",
                pool_size=args.readers + 2,
                connect_args={"options": f"-csearch_path={schema}"},
            )
            try:
                return run(db.engine, replica, args)
            finally:
                replica.dispose()


def run(primary: Engine, replica: Engine, args: argparse.Namespace) -> dict[str, Any]:
    started = time.perf_counter()
    world = build(primary, args.cases * 2)
    say(f"  seeded {len(world.cases):,} cases in {time.perf_counter() - started:.1f} s")
    with primary.connect() as conn:
        paths = {r.code: r.path for r in conn.execute(select(unit_t.c.code, unit_t.c.path))}
    caught_up(primary, replica)
    manager = Actor("manager.wh", CITY, paths[CITY], "city", ("manager",))
    halves = [world.cases[: args.cases], world.cases[args.cases :]]
    phases = []
    for half, (name, readers_engine) in zip(
        halves, (("primary", primary), ("replica", replica)), strict=True
    ):
        phases.append(
            one_phase(
                primary, readers_engine, replica if name == "replica" else None, half, paths,
                manager, world.campaign_id, name, args.readers,
            )
        )  # fmt: skip
    caught_up(primary, replica)
    with primary.connect() as p, replica.connect() as r:
        counters_equal = stored(r, world.campaign_id) == recount(p, world.campaign_id)
        cases_equal = _cases(p) == _cases(r)
    base, moved = phases[0].figures(), phases[1].figures()
    say(
        f"  counters on the replica equal a recount on the primary: {counters_equal}; "
        f"case rows equal: {cases_equal}"
    )
    return {
        "bench": "replica",
        "db": "postgresql",
        "cases_per_phase": args.cases,
        "readers": args.readers,
        "on_primary": base,
        "on_replica": moved,
        "ratio_p50": round(moved["dashboard_p50_ms"] / base["dashboard_p50_ms"], 3),
        "ratio": round(moved["dashboard_p50_ms"] / base["dashboard_p50_ms"], 3),
        "writer_ratio": round(moved["transitions_per_s"] / base["transitions_per_s"], 3),
        "counters_equal": counters_equal,
        "cases_equal": cases_equal,
        "ok": counters_equal and cases_equal,
        "loadavg": loadavg(),
    }


def one_phase(
    primary: Engine,
    readers_engine: Engine,
    replica: Engine | None,
    cases: list[tuple[int, str, str]],
    paths: dict[str, str],
    manager: Actor,
    campaign_id: int,
    name: str,
    readers: int,
) -> PhaseResult:
    result = PhaseResult(name)
    done = threading.Event()
    lock = threading.Lock()
    watch: list[tuple[int, int, float]] = []  # case, version, committed at (perf_counter)
    today = SystemClock().now().date()

    def read() -> None:
        while not done.is_set():
            t = time.perf_counter()
            with readers_engine.connect() as conn:
                dashboard(conn, DashboardQuery(campaign_id, CITY), manager, today=today)
            with lock:
                result.dashboard_ms.append((time.perf_counter() - t) * 1e3)

    def watcher() -> None:
        """Polls the replica for every watched commit at once (one query), so one slow commit
        does not delay the others' measurement."""
        assert replica is not None
        with replica.connect() as conn:
            while not (done.is_set() and not watch):
                with lock:
                    pending = {case_id: (v, t) for case_id, v, t in watch}
                if not pending:
                    time.sleep(0.001)
                    continue
                found = dict(
                    conn.execute(
                        select(case_t.c.id, case_t.c.version).where(case_t.c.id.in_(pending))
                    ).all()
                )
                conn.rollback()  # a new snapshot for the next poll
                now = time.perf_counter()
                seen = {c for c, (v, _t) in pending.items() if found.get(c, 0) >= v}
                with lock:
                    watch[:] = [w for w in watch if w[0] not in seen]
                result.visible_ms.extend((now - pending[c][1]) * 1e3 for c in seen)
                time.sleep(0.001)

    def sampler() -> None:
        """PostgreSQL's own measure: the walsender's replay_lag (time from a WAL flush on the
        primary to its replay on the replica), every 50 ms."""
        with primary.connect() as conn:
            while not done.is_set():
                lag = conn.execute(
                    text("SELECT EXTRACT(EPOCH FROM replay_lag) * 1000 FROM pg_stat_replication")
                ).scalar()
                conn.rollback()
                if lag is not None:
                    result.replay_lag_ms.append(float(lag))
                time.sleep(0.05)

    threads = [threading.Thread(target=read) for _ in range(readers)]
    if replica is not None:
        threads += [threading.Thread(target=watcher), threading.Thread(target=sampler)]
    for thread in threads:
        thread.start()
    clock = SystemClock()
    started = time.perf_counter()
    try:
        n = 0
        for event, version in ((CaseEvent.SUBMIT, 1), (CaseEvent.VERIFY, 2)):
            for case_id, grassroots, district in cases:
                actor = (
                    Actor(f"clerk.{grassroots.lower()}", grassroots, paths[grassroots],
                          "grassroots", ("clerk",))
                    if event is CaseEvent.SUBMIT
                    else Actor(f"reviewer.{district.lower()}", district, paths[district],
                               "district", ("reviewer",))
                )  # fmt: skip
                with transaction(primary) as conn:
                    apply_event(
                        conn, case_id=case_id, event=event, expected_version=version,
                        actor=actor, clock=clock,
                        opinion=None if event is CaseEvent.SUBMIT else "档案核查无误，同意公示",
                    )  # fmt: skip
                n += 1
                if replica is not None and n % 10 == 0:
                    with lock:
                        watch.append((case_id, version + 1, time.perf_counter()))
        result.writer_s = time.perf_counter() - started
        result.transitions = n
    finally:
        done.set()
        for thread in threads:
            thread.join()
    figures = result.figures()
    say(f"  readers on the {name}: {figures}")
    return result


def caught_up(primary: Engine, replica: Engine, within: float = 60.0) -> None:
    """Waits until the replica has replayed everything the primary has written so far."""
    with primary.connect() as conn:
        target = conn.execute(text("SELECT pg_current_wal_lsn()")).scalar_one()
    deadline = time.monotonic() + within
    with replica.connect() as conn:
        while time.monotonic() < deadline:
            behind = conn.execute(
                text("SELECT pg_wal_lsn_diff(:target, pg_last_wal_replay_lsn()) > 0"),
                {"target": target},
            ).scalar_one()
            conn.rollback()
            if not behind:
                return
            time.sleep(0.01)
    raise SystemExit(f"the replica did not catch up within {within:g} s")


def _cases(engine_conn: Any) -> list[tuple[Any, ...]]:
    return [
        tuple(r)
        for r in engine_conn.execute(
            select(case_t.c.id, case_t.c.state, case_t.c.version, case_t.c.audit_head).order_by(
                case_t.c.id
            )
        )
    ]
