"""`python -m bench sweep [--db URL] [--units N] [--cases N] [--repeat N]`: one reminder sweep
over a province (100,000 units in a 4-level tree) where 10% of the responsible units owe
something, against the bare driver writing the same ledger, outbox and inbox rows.

The world: province → 20 cities → 200 districts → 99,779 grassroots unions, bulk-loaded
(bench/seeding.py); the province's campaign (loaded by the service) with four deadlines that all
have something due on Wed 2024-07-31 — grassroots: no case left in survey (due today, T-0),
districts: archive checks (3 working days overdue: overdue + escalation to the city) and the
statistics table (due tomorrow, T-1), cities: the demand summary (1 working day overdue). Every
10th grassroots union has its cases in survey, every 10th district an archive check open and no
statistics table, every 10th city no demand summary; everyone else is done.

Timed (wall clock, `workflow.deadlines.sweep.sweep` with a ManualClock, outbox delivery not
included): the sweep on 2024-07-31 (sweep_s), the same sweep again that day (everything already
sent: again_s), and a sweep on Mon 2024-07-22 when nothing is due yet (idle_s). The baseline
(raw_s): the rows the sweep wrote, inserted again with the bare driver (executemany in one
transaction) into copies of the three tables with the same indexes and foreign keys. Each
repetition starts from empty ledger/outbox/inbox tables; medians are reported.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import sqlite3
import time
from typing import Any

import psycopg
from psycopg.types.json import Json
from sqlalchemy import Engine, text

from bench.common import BenchDatabase, add_db_option, bench_database, say
from bench.seeding import (
    COUNTER_COLUMNS,
    PENDING_EVERY,
    QUIET_DAY,
    SWEEP_DAY,
    Households,
    Loader,
    ProvinceTree,
    UnitRow,
    counter_rows,
    load_cases,
    load_province_campaign,
    load_reports,
    load_tree,
    loadavg,
    median,
    pg_schema,
    province_tree,
    say_load,
    timed,
)
from jinqiu.states import CaseState
from jinqiu.workflow.clock import ManualClock
from jinqiu.workflow.deadlines.sweep import SweepReport, sweep

BASE_URL = "https://jinqiu.example.org"
WRITTEN = ("reminder_ledger", "outbox_message", "inbox_message")  # what a sweep writes
TARGET_S = 2.0
SURVEY_START = dt.datetime(2024, 7, 16, 9, 0)  # when the campaign is loaded and cases created


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench sweep", description=(__doc__ or "").split("\n")[0]
    )
    add_db_option(parser)
    parser.add_argument("--units", type=int, default=100_000, help="units in the tree")
    parser.add_argument(
        "--cases", type=int, default=200_000, help="cases, spread evenly over the grassroots unions"
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="sweeps of each kind (median reported)"
    )
    parser.add_argument(
        "--profile",
        metavar="FILE",
        default=None,
        help="cProfile one extra, uncounted sweep into FILE (pstats)",
    )
    return parser.parse_args(argv)


def main(argv: list[str]) -> dict[str, Any]:
    args = parse_args(argv)
    with bench_database(args.db, name="sweep") as db:
        return run(db, units=args.units, cases=args.cases, repeat=args.repeat, profile=args.profile)


# -- the world ---------------------------------------------------------------------------------


def assignments(tree: ProvinceTree, cases: int) -> list[tuple[UnitRow, str]]:
    """Cases spread evenly over the grassroots unions: every 10th union's are still in survey,
    the others' are past it; plus one case in archive check under every 10th district."""
    s = CaseState
    done_states = tuple(
        x.value
        for x in (
            s.APPROVAL,
            s.DISBURSEMENT,
            s.FOLLOW_UP,
            s.CLOSED,
            s.PUBLICITY,
            s.REJECTED,
            s.WITHDRAWN,
        )
    )
    base, extra = divmod(cases - len(tree.districts[::PENDING_EVERY]), len(tree.grassroots))
    out: list[tuple[UnitRow, str]] = []
    for j, unit in enumerate(tree.grassroots):
        for k in range(base + (1 if j < extra else 0)):
            out.append(
                (
                    unit,
                    s.SURVEY.value
                    if j % PENDING_EVERY == 0
                    else done_states[(j + k) % len(done_states)],
                )
            )
    first_under = {}
    for unit in tree.grassroots:
        first_under.setdefault(unit.parent_id, unit)
    for district in tree.districts[::PENDING_EVERY]:
        out.append((first_under[district.id], s.ARCHIVE_CHECK.value))
    return out


def build(db: BenchDatabase, units: int, cases: int) -> tuple[dict[str, float], dict[str, int]]:
    load: dict[str, float] = {}
    clock = ManualClock(SURVEY_START)
    tree, load["tree_build_s"] = timed(lambda: province_tree(units))
    with Loader(db) as loader:
        _, load["units_s"] = timed(lambda: load_tree(loader, tree))
        say_load(f"{len(tree):,} units", load["units_s"], len(tree))
        (campaign_id, _deadlines), load["campaign_s"] = timed(
            lambda: load_province_campaign(db.engine, clock)
        )
        households = Households(campaign_id=campaign_id, created=clock.now())
        started = time.perf_counter()
        loaded = load_cases(loader, households, assignments(tree, cases))
        counters = counter_rows(tree, campaign_id, loaded.by_unit_state)
        loader.copy("unit_case_count", COUNTER_COLUMNS, counters)
        missing = load_reports(loader, tree, campaign_id, when=clock.now())
        loader.finish()
        load["cases_s"] = time.perf_counter() - started
        say_load(
            f"{loaded.count:,} cases (+ workers, students, {len(counters):,} counters, reports)",
            load["cases_s"],
            loaded.count * 3 + len(counters),
        )
    shape = {
        "units": len(tree),
        "grassroots": len(tree.grassroots),
        "districts": len(tree.districts),
        "cities": len(tree.cities),
        "cases": loaded.count,
        "campaign_id": campaign_id,
        "grassroots_pending": len(tree.grassroots[::PENDING_EVERY]),
        "districts_pending_archive": len(tree.districts[::PENDING_EVERY]),
        **missing,
    }
    return load, shape


# -- the timed part ----------------------------------------------------------------------------


def one_sweep(
    engine: Engine, when: dt.datetime, profiler: cProfile.Profile | None = None
) -> tuple[SweepReport, float, float]:
    """One sweep as of `when`: its report, wall time and this process's CPU time."""
    clock = ManualClock(when)
    if profiler is not None:
        profiler.enable()
    started, cpu = time.perf_counter(), time.process_time()
    report = sweep(engine, clock, base_url=BASE_URL)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    if profiler is not None:
        profiler.disable()
    return report, elapsed, cpu


def counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            t: int(conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()) for t in WRITTEN
        }


def reset(engine: Engine) -> None:
    """Empty ledger, outbox and inbox: the next sweep finds everything still to send. The inbox's
    read receipts go with it (none here; PostgreSQL truncates a referenced table only with them)."""
    emptied = ("inbox_read", *WRITTEN)
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text(f"TRUNCATE {', '.join(emptied)}"))
        else:
            for table in emptied:
                conn.execute(text(f"DELETE FROM {table}"))


def run(
    db: BenchDatabase, *, units: int, cases: int, repeat: int, profile: str | None
) -> dict[str, Any]:
    say(f"sweep on {db.kind}: {units:,} units, {cases:,} cases, 4 deadlines, {repeat} repeats")
    load, shape = build(db, units, cases)
    raw = RawInserts(db)
    profiler = cProfile.Profile() if profile else None
    full: list[float] = []
    full_cpu: list[float] = []
    again: list[float] = []
    idle: list[float] = []
    raw_s: list[float] = []
    reminders = already = 0
    by_kind: dict[str, int] = {}
    written: dict[str, int] = {}
    try:
        for i in range(repeat):
            report, elapsed, cpu = one_sweep(db.engine, SWEEP_DAY)
            full.append(elapsed)
            full_cpu.append(cpu)
            reminders = len(report.reminders)
            by_kind = {}
            for r in report.reminders:
                key = f"{r.deadline_key}:{r.kind}"
                by_kind[key] = by_kind.get(key, 0) + 1
            written = counts(db.engine)
            report2, elapsed2, _ = one_sweep(db.engine, SWEEP_DAY)
            again.append(elapsed2)
            already = report2.already_sent
            if report2.reminders:
                raise SystemExit(f"second sweep sent {len(report2.reminders)} reminders again")
            report3, elapsed3, _ = one_sweep(db.engine, QUIET_DAY)
            idle.append(elapsed3)
            if report3.reminders or report3.already_sent:
                raise SystemExit("a sweep on a day with nothing due did something")
            if i == 0:
                raw.capture()
            raw_s.append(raw.insert())
            say(
                f"  run {i + 1}: sweep {elapsed:.3f} s ({cpu:.3f} s CPU here, {reminders:,} "
                f"reminders), again {elapsed2:.3f} s ({already:,} already sent), nothing due "
                f"{elapsed3 * 1e3:.1f} ms; raw driver, same rows: {raw_s[-1]:.3f} s"
            )
            reset(db.engine)
        if profiler is not None and profile is not None:
            # An extra sweep under the profiler, not counted in the figures.
            one_sweep(db.engine, SWEEP_DAY, profiler)
            reset(db.engine)
            profiler.dump_stats(profile)
            say(f"  profile of an extra, uncounted sweep written to {profile}")
    finally:
        raw.close()
    expected = {
        "survey_materials:before": shape["grassroots_pending"],
        "archive_review:overdue": shape["districts_pending_archive"],
        "archive_review:escalation": shape["districts_pending_archive"],
        "statistics_report:before": shape["statistics_missing"],
        "demand_summary:overdue": shape["demand_summary_missing"],
    }
    if by_kind != expected:
        raise SystemExit(f"reminders {by_kind} differ from what is due {expected}")
    sweep_s, raw_med = median(full), median(raw_s)
    return {
        "bench": "sweep",
        "db": db.kind,
        "units": shape["units"],
        "cases": shape["cases"],
        "deadlines": 4,
        "reminders": reminders,
        "rows_written": written,
        "sweep_s": round(sweep_s, 3),
        "again_s": round(median(again), 3),
        "already_sent": already,
        "idle_s": round(median(idle), 4),
        "raw_s": round(raw_med, 3),
        "ratio": round(sweep_s / raw_med, 2),
        "sweep_cpu_s": round(median(full_cpu), 3),
        "sweep_runs_s": [round(x, 3) for x in full],
        "raw_runs_s": [round(x, 3) for x in raw_s],
        "reminders_per_s": round(reminders / sweep_s, 1),
        "target_s": TARGET_S,
        "within_target": sweep_s <= TARGET_S,
        "load_s": {k: round(v, 1) for k, v in load.items()},
        "loadavg": loadavg(),
    }


# -- the bare-driver baseline ------------------------------------------------------------------


class RawInserts:
    """The rows one sweep wrote, inserted again with the bare driver (sqlite3 / psycopg 3,
    executemany, one transaction) into copies of the ledger, outbox and inbox tables that have
    the same indexes and foreign keys: the least any sweep writing them must pay."""

    def __init__(self, db: BenchDatabase) -> None:
        self.kind = db.kind
        self.rows: dict[str, tuple[list[str], list[tuple[Any, ...]]]] = {}
        self._lite: sqlite3.Connection | None = None
        self._pg: psycopg.Connection[Any] | None = None
        if db.kind == "sqlite":
            database = db.engine.url.database
            assert database is not None
            lite = self._lite = sqlite3.connect(database, isolation_level=None)
            for pragma in (
                "journal_mode=WAL",
                "synchronous=NORMAL",
                "foreign_keys=ON",
                "busy_timeout=30000",
            ):
                lite.execute(f"PRAGMA {pragma}")
            for table in WRITTEN:
                # The same table and indexes in the same file, named bench_raw_*: the foreign
                # keys point at the service's unit, campaign and deadline rows.
                for (sql,) in lite.execute(
                    "SELECT sql FROM sqlite_master WHERE tbl_name = ? AND sql IS NOT NULL "
                    "ORDER BY type DESC",
                    (table,),
                ).fetchall():
                    lite.execute(
                        sql.replace(f'"{table}"', f'"bench_raw_{table}"')
                        .replace(f"{table} ", f"bench_raw_{table} ")
                        .replace(" ix_", " ix_bench_raw_")
                        .replace(" uq_", " uq_bench_raw_")
                    )
        else:
            assert db.pg_url is not None and db.pg_scratch_schema is not None
            schema, scratch = pg_schema(db.engine), db.pg_scratch_schema
            pg = self._pg = psycopg.connect(db.pg_url, options=f"-csearch_path={schema}")
            for table in WRITTEN:
                pg.execute(f'CREATE TABLE "{scratch}".{table} (LIKE {table} INCLUDING ALL)')
                for (definition,) in pg.execute(
                    "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
                    "WHERE conrelid = %s::regclass AND contype = 'f'",
                    (table,),
                ).fetchall():
                    pg.execute(f'ALTER TABLE "{scratch}".{table} ADD {definition}')
            pg.commit()
            self.scratch = scratch

    def _target(self, table: str) -> str:
        return f"bench_raw_{table}" if self.kind == "sqlite" else f'"{self.scratch}".{table}'

    def capture(self) -> None:
        for table in WRITTEN:
            if self._lite is not None:
                cur = self._lite.execute(f"SELECT * FROM {table} ORDER BY id")
                names = [d[0] for d in cur.description]
                rows = cur.fetchall()
            else:
                assert self._pg is not None
                cur2 = self._pg.execute(f"SELECT * FROM {table} ORDER BY id")
                assert cur2.description is not None
                names = [d.name for d in cur2.description]
                rows = [
                    tuple(Json(v) if isinstance(v, (dict, list)) else v for v in r)
                    for r in cur2.fetchall()
                ]
                self._pg.commit()
            keep = [i for i, n in enumerate(names) if n != "id"]
            self.rows[table] = ([names[i] for i in keep], [tuple(r[i] for i in keep) for r in rows])

    def insert(self) -> float:
        """Inserts every captured row in one transaction; returns the wall time, then empties
        the copies again (not timed)."""
        started = time.perf_counter()
        if self._lite is not None:
            lite = self._lite
            lite.execute("BEGIN IMMEDIATE")
            for table, (names, rows) in self.rows.items():
                marks = ", ".join("?" for _ in names)
                lite.executemany(
                    f"INSERT INTO {self._target(table)} ({', '.join(names)}) VALUES ({marks})", rows
                )
            lite.execute("COMMIT")
        else:
            assert self._pg is not None
            with self._pg.cursor() as cur:
                for table, (names, rows) in self.rows.items():
                    marks = ", ".join("%s" for _ in names)
                    cur.executemany(
                        f"INSERT INTO {self._target(table)} ({', '.join(names)}) VALUES ({marks})",
                        rows,
                    )
            self._pg.commit()
        elapsed = time.perf_counter() - started
        for table in WRITTEN:
            if self._lite is not None:
                self._lite.execute(f"DELETE FROM {self._target(table)}")
            else:
                assert self._pg is not None
                self._pg.execute(f"TRUNCATE {self._target(table)}")
                self._pg.commit()
        return elapsed

    def close(self) -> None:
        if self._lite is not None:
            for table in WRITTEN:
                self._lite.execute(f"DROP TABLE IF EXISTS bench_raw_{table}")
            self._lite.close()
        if self._pg is not None:
            self._pg.close()
