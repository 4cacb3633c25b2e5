"""Shared pieces of the benchmarks: timing, the JSON result line, and a database of their own
(a fresh temporary SQLite file, or a fresh schema on PostgreSQL that is dropped at the end)."""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import psycopg
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from jinqiu.workflow.config import normalise_url
from jinqiu.workflow.db import make_engine
from jinqiu.workflow.migrate import upgrade

DbKind = Literal["sqlite", "postgresql"]


def say(message: str) -> None:
    """A human-readable progress line (the JSON result is always the last line)."""
    print(message, flush=True)


def emit(result: dict[str, Any]) -> None:
    print(json.dumps(result, ensure_ascii=False), flush=True)


def percentile(sorted_values: list[float], pct: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(pct / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


@dataclass
class Timings:
    """Durations of individual operations (wall clock), and the CPU time this process spent
    on them: on a busy machine the CPU time is the steadier measure of our own overhead."""

    ns: list[int] = field(default_factory=list)
    cpu_ns: int = 0

    @staticmethod
    def start() -> tuple[int, int]:
        return time.perf_counter_ns(), time.process_time_ns()

    def add(self, started: tuple[int, int]) -> None:
        wall, cpu = started
        self.ns.append(time.perf_counter_ns() - wall)
        self.cpu_ns += time.process_time_ns() - cpu

    def cpu_us_each(self) -> float:
        return self.cpu_ns / self.count / 1e3 if self.ns else math.nan

    @property
    def count(self) -> int:
        return len(self.ns)

    @property
    def total_s(self) -> float:
        return sum(self.ns) / 1e9

    def per_s(self) -> float:
        return self.count / self.total_s if self.ns else 0.0

    def ms_at(self, pct: float) -> float:
        return percentile(sorted(self.ns), pct) / 1e6


def default_db_url() -> str | None:
    """JINQIU_DATABASE_URL when set (as `make bench` does), else None: a fresh temp SQLite file.
    Either way the benchmark writes only into a new SQLite file or a new PostgreSQL schema."""
    return os.environ.get("JINQIU_DATABASE_URL") or None


def add_db_option(parser: argparse.ArgumentParser) -> None:
    """Every bench's `--db URL`: where its world is made (default_db_url when not given)."""
    parser.add_argument(
        "--db",
        default=default_db_url(),
        help="sqlite:///new-file.db or postgresql://user@host:port/db (a fresh schema is made "
        "and dropped); default: JINQIU_DATABASE_URL if set, else a fresh temporary SQLite file",
    )


def db_kind(url: str) -> DbKind:
    backend = make_url(normalise_url(url)).get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise SystemExit(f"unsupported database: {backend} (sqlite:/// or postgresql://)")
    return "sqlite" if backend == "sqlite" else "postgresql"


def libpq_url(url: str) -> str:
    """The URL psycopg itself takes: `postgresql://…` without SQLAlchemy's `+psycopg`."""
    return (
        make_url(normalise_url(url))
        .set(drivername="postgresql")
        .render_as_string(hide_password=False)
    )


@contextmanager
def pg_temp_schema(url: str, prefix: str) -> Iterator[str]:
    """A fresh schema, dropped with everything in it at the end: other data is never touched."""
    schema = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield schema
    finally:
        with psycopg.connect(libpq_url(url), autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@dataclass(frozen=True)
class BenchDatabase:
    """The migrated service database and a scratch place for the bare-driver baseline."""

    kind: DbKind
    engine: Engine
    scratch_sqlite: Path | None = None  # a separate SQLite file, same pragmas
    pg_url: str | None = None  # libpq URL …
    pg_scratch_schema: str | None = None  # … and a schema of its own for the baseline


@contextmanager
def bench_database(url: str | None, *, name: str) -> Iterator[BenchDatabase]:
    """A fresh, migrated database for one run: a temp SQLite file by default."""
    if url is None or db_kind(url) == "sqlite":
        with _sqlite(url, name) as db:
            yield db
    else:
        with _postgres(url, name) as db:
            yield db


@contextmanager
def _sqlite(url: str | None, name: str) -> Iterator[BenchDatabase]:
    workdir = Path(tempfile.mkdtemp(prefix=f"jinqiu-bench-{name}-"))
    try:
        if url is None:
            path = workdir / "jinqiu.db"
        else:
            database = make_url(url).database
            if not database or database == ":memory:":
                raise SystemExit("give a SQLite file (sqlite:///path.db): commits are measured")
            path = Path(database)
            if path.exists():
                raise SystemExit(f"{path} exists: the benchmark only writes into a new database")
        engine = make_engine(f"sqlite:///{path}")
        try:
            upgrade(engine)
            yield BenchDatabase("sqlite", engine, scratch_sqlite=workdir / "raw.db")
        finally:
            engine.dispose()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@contextmanager
def _postgres(url: str, name: str) -> Iterator[BenchDatabase]:
    with (
        pg_temp_schema(url, f"jq_bench_{name}") as schema,
        pg_temp_schema(url, f"jq_bench_{name}_raw") as scratch,
    ):
        engine = make_engine(url, pool_size=5, connect_args={"options": f"-csearch_path={schema}"})
        try:
            upgrade(engine)
            yield BenchDatabase(
                "postgresql", engine, pg_url=libpq_url(url), pg_scratch_schema=scratch
            )
        finally:
            engine.dispose()


class RawScratch:
    """The bare driver on a bench database's scratch space (its own SQLite file, or its scratch
    PostgreSQL schema), autocommit: a benchmark's same-run baseline writes the same rows here
    with nothing of the service in between. `run(sql)` or `run(sql, rows)` (executemany); SQL
    is written with `?` and `{pk}` (the integer primary key of the dialect)."""

    def __init__(self, db: BenchDatabase) -> None:
        self.kind = db.kind
        if db.kind == "sqlite":
            assert db.scratch_sqlite is not None
            self.conn: Any = sqlite3.connect(db.scratch_sqlite, isolation_level=None)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")  # as the service's engine sets it
            self.marker, self.pk = "?", "INTEGER PRIMARY KEY"
        else:
            assert db.pg_url is not None and db.pg_scratch_schema is not None
            self.conn = psycopg.connect(db.pg_url, options=f"-csearch_path={db.pg_scratch_schema}")
            self.conn.autocommit = True
            self.marker, self.pk = "%s", "SERIAL PRIMARY KEY"

    def run(self, sql: str, rows: list[tuple[Any, ...]] | None = None) -> None:
        sql = sql.replace("?", self.marker).replace("{pk}", self.pk)
        if rows is None:
            self.conn.execute(sql)
        elif self.kind == "sqlite":
            self.conn.executemany(sql, rows)
        else:
            with self.conn.cursor() as cur:
                cur.executemany(sql, rows)

    def close(self) -> None:
        self.conn.close()


@dataclass(frozen=True)
class ProcessCpu:
    pid: int
    parent: int
    name: str  # the command's name, as /proc/PID/stat gives it ("postgres", "python", …)
    cpu_s: float  # user + system so far


def processes_cpu() -> list[ProcessCpu]:
    """Every process on this machine with its CPU so far, from /proc (one pass)."""
    tick = os.sysconf("SC_CLK_TCK")
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            head, fields = (entry / "stat").read_text().rsplit(")", 1)
        except OSError:
            continue
        parts = fields.split()
        name = head.split("(", 1)[1] if "(" in head else ""
        cpu = (int(parts[11]) + int(parts[12])) / tick
        found.append(ProcessCpu(int(entry.name), int(parts[1]), name, cpu))
    return found


def postgres_cpu_s() -> float:
    """CPU so far of every PostgreSQL process on this machine (its backends included)."""
    return sum(p.cpu_s for p in processes_cpu() if p.name in {"postgres", "postmaster"})
