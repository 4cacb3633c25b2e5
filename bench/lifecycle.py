"""`python -m bench lifecycle [--db URL] [--cases N]`: cases driven through their whole life by
the engine, against the bare driver doing one UPDATE + one INSERT per commit.

Seeds the Weihai unit tree and the 2024 campaign (funds large enough for every case), creates N
eligible synthetic families, then fires 9 transitions per case — submit, verify, publish
(one case at a time, as a publicity list fires it on the scheduler's permission, with the
campaign's own period), end_publicity (by the scheduler), approve at grassroots, district and city level, pay, close —
each `apply_event` in its own `transaction(engine)`, on a ManualClock moved through the
campaign's phases. Only the transitions are timed. The baseline does the same number of
commits with the bare driver (sqlite3 on a separate file with the same pragmas, or psycopg 3
in a scratch schema). Afterwards every case must be closed and every audit chain intact.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import hashlib
import json
import random
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import Engine, func, select

from bench.common import BenchDatabase, Timings, add_db_option, bench_database, say
from jinqiu.demo.synthetic import SCHOOLS, family
from jinqiu.demo.units import seed_weihai_tree
from jinqiu.states import CaseEvent, CaseState
from jinqiu.workflow.audit.models import AuditEntry
from jinqiu.workflow.campaigns.models import FundSource
from jinqiu.workflow.campaigns.schema import CampaignFile
from jinqiu.workflow.campaigns.service import load_campaign
from jinqiu.workflow.cases.counters import recount, stored
from jinqiu.workflow.cases.engine import apply_event
from jinqiu.workflow.cases.models import Case
from jinqiu.workflow.cases.schema import CaseCreate
from jinqiu.workflow.cases.service import create_case
from jinqiu.workflow.cases.trail import verify_case_chains
from jinqiu.workflow.clock import ManualClock
from jinqiu.workflow.db import transaction
from jinqiu.workflow.roles import SCHEDULER, Actor
from jinqiu.workflow.units.models import Unit

ROOT = Path(__file__).resolve().parents[1]
CAMPAIGN_FILE = ROOT / "examples" / "campaigns" / "weihai-2024.json"
TRANSITIONS_PER_CASE = 9

audit_t = AuditEntry.__table__  # type: ignore[attr-defined]
case_t = Case.__table__  # type: ignore[attr-defined]
fund_t = FundSource.__table__  # type: ignore[attr-defined]
unit_t = Unit.__table__  # type: ignore[attr-defined]

# The campaign's calendar: survey 7/16–7/31; five working days of publicity after 8/1 end on 8/8.
SURVEY_DAY = dt.datetime(2024, 7, 20, 9, 0)
VERIFY_DAY = dt.datetime(2024, 8, 1, 10, 0)
PUBLICITY_OVER = dt.datetime(2024, 8, 9, 10, 0)
APPROVAL_DAY = dt.datetime(2024, 8, 12, 9, 0)
PAY_DAY = dt.datetime(2024, 8, 23, 9, 0)
CLOSE_DAY = dt.datetime(2024, 8, 30, 9, 0)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench lifecycle", description=(__doc__ or "").split("\n")[0]
    )
    add_db_option(parser)
    parser.add_argument(
        "--cases",
        type=int,
        default=None,
        help="cases to drive (default 300 on SQLite, 200 on PostgreSQL)",
    )
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument(
        "--profile",
        metavar="FILE",
        default=None,
        help="cProfile the timed transitions into FILE (pstats); slows them down",
    )
    return parser.parse_args(argv)


def main(argv: list[str]) -> dict[str, Any]:
    args = parse_args(argv)
    with bench_database(args.db, name="lifecycle") as db:
        cases = args.cases or (300 if db.kind == "sqlite" else 200)
        return run(db, cases=cases, seed=args.seed, profile=args.profile)


def run(db: BenchDatabase, *, cases: int, seed: int, profile: str | None) -> dict[str, Any]:
    transitions = cases * TRANSITIONS_PER_CASE
    say(f"lifecycle on {db.kind}: {cases} cases, {transitions} transitions")

    started = time.perf_counter()
    world = build_world(db.engine, cases=cases, seed=seed)
    raw = RawDriver(db, rows=cases)
    say(f"  seeded {cases} cases in {time.perf_counter() - started:.1f} s")

    profiler = cProfile.Profile() if profile else None
    started = time.perf_counter()
    try:
        timings = drive(db.engine, world, profiler, raw)
    finally:
        raw.close()
    say(
        f"  engine: {timings.per_s():,.0f} transitions/s, {timings.cpu_us_each():,.0f} µs CPU "
        f"each; raw driver: {raw.timings.per_s():,.0f} commits/s, "
        f"{raw.timings.cpu_us_each():,.0f} µs CPU each ({time.perf_counter() - started:.1f} s)"
    )
    if profiler is not None and profile is not None:
        profiler.dump_stats(profile)
        say(f"  profile of the timed transitions written to {profile}")

    say(f"  checked: {check(db.engine, world)}")
    engine_per_s, raw_per_s = timings.per_s(), raw.timings.per_s()
    return {
        "bench": "lifecycle",
        "db": db.kind,
        "cases": cases,
        "transitions": timings.count,
        "engine_per_s": round(engine_per_s, 1),
        "raw_per_s": round(raw_per_s, 1),
        "ratio": round(engine_per_s / raw_per_s, 3),
        "p50_ms": round(timings.ms_at(50), 3),
        "p99_ms": round(timings.ms_at(99), 3),
    }


# -- the world: units, campaign, cases ---------------------------------------------------------


@dataclass(frozen=True)
class CaseUnits:
    case_id: int
    grassroots: str
    district: str


@dataclass
class World:
    clock: ManualClock
    campaign_id: int
    cases: list[CaseUnits]
    actors: dict[tuple[str, str], Actor]


def campaign_spec(cases: int) -> CampaignFile:
    """Weihai 2024, with a government fund covering every case at the highest fixed amount."""
    raw = json.loads(CAMPAIGN_FILE.read_text(encoding="utf-8"))
    rules = CampaignFile.model_validate(raw).aid_rules
    highest = max(  # the most any one rule pays (an uplift comes on top of it)
        max(v for v in (r.amount, r.cap, r.max) if v is not None)
        + (r.uplift.max if r.uplift is not None else 0)
        for r in rules
    )
    for fund in raw["funds"]:
        if fund["source"] == "government":
            fund["budget"] = str(int(highest) * cases + int(fund["budget"]))
    spec = CampaignFile.model_validate(raw)
    # The measured path ends with a bare `close`, as in the runs PERFORMANCE.md compares with:
    # the file's visits rule (a visit before the close) would add a step the baseline lacks.
    spec.follow_up = None
    return spec


def eligible_family(rng: random.Random, spec: CampaignFile) -> dict[str, Any]:
    """A synthetic family that passes every guard: archived this year, not aided elsewhere,
    at an education level the campaign pays a fixed amount for."""
    fam = family(rng, spec.year, today=SURVEY_DAY.date())
    worker, student = fam["worker"], fam["student"]
    if worker["archive_status"] == "none":
        worker["archive_status"] = rng.choice(("deep", "relative", "accident"))
    archived_on = SURVEY_DAY.date() - dt.timedelta(days=rng.randrange(0, 240))
    worker["archived_on"] = archived_on.isoformat()
    student["already_aided_by"] = None
    fixed_levels = sorted({r.education_level for r in spec.aid_rules if r.basis == "fixed"})
    if student["education_level"] not in fixed_levels:
        level = rng.choice(fixed_levels)
        school = rng.choice(SCHOOLS[level])
        student.update(
            education_level=level,
            school=school,
            admitted_school=school,
            tuition_invoice=None,
            exam_score=rng.randrange(420, 650),
        )
        tier = rng.choice(("first", "second", "third")) if level == "undergraduate" else None
        student["tier"] = tier
    return fam


def build_world(engine: Engine, *, cases: int, seed: int) -> World:
    rng = random.Random(seed)
    clock = ManualClock(SURVEY_DAY)
    spec = campaign_spec(cases)
    with transaction(engine) as conn:
        tree = seed_weihai_tree(conn)
        campaign_id = load_campaign(conn, spec, clock)
    with engine.connect() as conn:
        rows = conn.execute(select(unit_t.c.code, unit_t.c.path, unit_t.c.level))
        units = {r.code: r for r in rows}

    actors: dict[tuple[str, str], Actor] = {}

    def actor(code: str, role: str) -> Actor:
        if (code, role) not in actors:
            unit = units[code]
            username = f"{role}.{code.lower()}"
            actors[code, role] = Actor(username, code, unit.path, unit.level, (role,))
        return actors[code, role]

    created: list[CaseUnits] = []
    for _ in range(cases):
        grassroots = rng.choice(tree.grassroots)
        district = grassroots.rsplit("-", 1)[0]
        for code, role in (
            (grassroots, "clerk"),
            (grassroots, "approver"),
            (district, "reviewer"),
            (district, "approver"),
        ):
            actor(code, role)
        spec_in = CaseCreate.model_validate(
            {"campaign": campaign_id, "unit": grassroots, **eligible_family(rng, spec)}
        )
        with transaction(engine) as conn:
            case_id = create_case(conn, spec_in, actor=actor(grassroots, "clerk"), clock=clock)
        created.append(CaseUnits(case_id, grassroots, district))
        clock.advance(dt.timedelta(seconds=7))
    for role in ("approver", "finance"):
        actor(tree.city, role)
    return World(clock, campaign_id, created, actors)


# -- the timed part ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    event: CaseEvent
    when: dt.datetime
    unit: str  # "grassroots", "district", "city" or "" for the scheduler
    role: str
    opinion: str | None = None


STEPS = (
    Step(CaseEvent.SUBMIT, SURVEY_DAY, "grassroots", "clerk"),
    Step(CaseEvent.VERIFY, VERIFY_DAY, "district", "reviewer", "档案核查无误，同意公示"),
    Step(CaseEvent.PUBLISH, VERIFY_DAY + dt.timedelta(hours=6), "", "scheduler"),
    Step(CaseEvent.END_PUBLICITY, PUBLICITY_OVER, "", "scheduler"),
    Step(CaseEvent.APPROVE, APPROVAL_DAY, "grassroots", "approver", "同意"),
    Step(CaseEvent.APPROVE, APPROVAL_DAY + dt.timedelta(days=1), "district", "approver", "同意"),
    Step(CaseEvent.APPROVE, APPROVAL_DAY + dt.timedelta(days=2), "city", "approver", "同意资助"),
    Step(CaseEvent.PAY, PAY_DAY, "city", "finance"),
    Step(CaseEvent.CLOSE, CLOSE_DAY, "grassroots", "clerk"),
)
assert len(STEPS) == TRANSITIONS_PER_CASE


def drive(
    engine: Engine, world: World, profiler: cProfile.Profile | None, raw: RawDriver | None = None
) -> Timings:
    """Every case through every step, phase by phase; one transaction per transition. Before
    each phase the bare-driver baseline does as many commits of its own."""
    timings = Timings()
    versions = {c.case_id: 1 for c in world.cases}
    clock = world.clock
    for step in STEPS:
        if raw is not None:
            raw.batch(len(world.cases))
        clock.set(step.when)
        for c in world.cases:
            units = {"grassroots": c.grassroots, "district": c.district, "city": "WH"}
            who = world.actors[units[step.unit], step.role] if step.unit else SCHEDULER
            data = None
            if step.event is CaseEvent.PAY:
                data = {"payment_reference": f"PAY-{c.case_id:06d}"}
            if profiler is not None:
                profiler.enable()
            started = Timings.start()
            with transaction(engine) as conn:
                result = apply_event(
                    conn,
                    case_id=c.case_id,
                    event=step.event,
                    expected_version=versions[c.case_id],
                    actor=who,
                    clock=clock,
                    opinion=step.opinion,
                    data=data,
                )
            timings.add(started)
            if profiler is not None:
                profiler.disable()
            versions[c.case_id] = result.version
            clock.advance(dt.timedelta(seconds=3))
    return timings


def check(engine: Engine, world: World) -> str:
    """Every case closed after 9 transitions, funds paid, counters right, chains intact; returns
    a digest of the audit trail (the same seed and number of cases give the same digest, on
    either database and before or after any optimisation of the engine)."""
    with engine.connect() as conn:
        states = conn.execute(
            select(case_t.c.state, case_t.c.version, case_t.c.audit_seq, func.count()).group_by(
                case_t.c.state, case_t.c.version, case_t.c.audit_seq
            )
        ).all()
        expected = [
            (
                CaseState.CLOSED.value,
                1 + TRANSITIONS_PER_CASE,
                1 + TRANSITIONS_PER_CASE,
                len(world.cases),
            )
        ]
        if [tuple(r) for r in states] != expected:
            raise SystemExit(f"cases did not all close: {states}")
        approved = conn.execute(select(func.sum(case_t.c.approved_amount_fen))).scalar_one()
        funds = select(func.sum(fund_t.c.paid_fen), func.sum(fund_t.c.reserved_fen))
        paid = tuple(conn.execute(funds).one())
        if paid != (approved, 0):
            raise SystemExit(f"funds do not add up: paid, reserved {paid}; approved {approved}")
        if recount(conn, world.campaign_id) != stored(conn, world.campaign_id):
            raise SystemExit("dashboard counters differ from a recount of the cases")
        broken = list(verify_case_chains(conn))
        if broken:
            raise SystemExit(f"audit chains broken: {broken[0].describe()}")
        digest = hashlib.sha256()
        for (h,) in conn.execute(select(audit_t.c.hash).order_by(audit_t.c.case_id, audit_t.c.seq)):
            digest.update(h.encode())
    return (
        f"all closed, funds add up, counters match, audit chains intact; "
        f"audit digest {digest.hexdigest()[:16]}"
    )


# -- the bare-driver baseline ------------------------------------------------------------------

_RAW_HASH = "ab" * 32
# Plain strings, as a bare driver would bind them.
SURVEY, APPROVAL, APPROVE = (
    CaseState.SURVEY.value,
    CaseState.APPROVAL.value,
    CaseEvent.APPROVE.value,
)
_RAW_DATA = json.dumps({"amount": "3000.00", "fund_source": "government"})
_RAW_CASE = (
    "CREATE TABLE raw_case (id integer PRIMARY KEY, state varchar(20) NOT NULL, "
    "version integer NOT NULL, audit_seq integer NOT NULL, audit_head varchar(64) NOT NULL, "
    "updated_at {ts} NOT NULL)"
)
_RAW_AUDIT = (
    "CREATE TABLE raw_audit (id {serial} PRIMARY KEY, case_id integer NOT NULL REFERENCES "
    "raw_case(id), seq integer NOT NULL, actor varchar(64) NOT NULL, event varchar(32) NOT NULL, "
    "from_state varchar(20), to_state varchar(20) NOT NULL, opinion varchar, data {json} NOT NULL, "
    "at {ts} NOT NULL, prev_hash varchar(64) NOT NULL, hash varchar(64) NOT NULL, "
    "UNIQUE (case_id, seq))"
)
_RAW_UPDATE = (
    "UPDATE raw_case SET state = ?, version = ?, audit_seq = ?, audit_head = ?, updated_at = ? "
    "WHERE id = ? AND version = ?"
)
_RAW_INSERT = (
    "INSERT INTO raw_audit (case_id, seq, actor, event, from_state, to_state, opinion, data, at, "
    "prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_RAW_UPDATE_PG, _RAW_INSERT_PG = _RAW_UPDATE.replace("?", "%s"), _RAW_INSERT.replace("?", "%s")


class RawDriver:
    """One UPDATE (with a version check) and one INSERT (an audit-sized row) per commit, on the
    bare driver, over `rows` rows shaped like the case and audit tables. Run in batches
    interleaved with the engine's phases, so both see the same machine load."""

    def __init__(self, db: BenchDatabase, rows: int) -> None:
        self.kind = db.kind
        self.rows = rows
        self.done = 0
        self.timings = Timings()
        self._sqlite: sqlite3.Connection | None = None
        self._pg: psycopg.Connection[Any] | None = None
        cases = [(i, _RAW_HASH) for i in range(1, rows + 1)]
        if db.kind == "sqlite":
            assert db.scratch_sqlite is not None
            # Autocommit mode with an explicit BEGIN IMMEDIATE, as the service's SQLite engine does.
            lite = self._sqlite = sqlite3.connect(db.scratch_sqlite, isolation_level=None)
            for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON"):
                lite.execute(f"PRAGMA {pragma}")
            lite.execute(_RAW_CASE.format(ts="timestamp"))
            lite.execute(_RAW_AUDIT.format(serial="integer", json="text", ts="timestamp"))
            lite.execute("BEGIN")
            lite.executemany(
                f"INSERT INTO raw_case VALUES (?, '{SURVEY}', 1, 1, ?, '2024-07-20 01:00:00')",
                cases,
            )
            lite.execute("COMMIT")
        else:
            assert db.pg_url is not None and db.pg_scratch_schema is not None
            options = f"-csearch_path={db.pg_scratch_schema}"
            pg = self._pg = psycopg.connect(db.pg_url, options=options)
            pg.execute(_RAW_CASE.format(ts="timestamp"))
            pg.execute(_RAW_AUDIT.format(serial="serial", json="json", ts="timestamp"))
            with pg.cursor() as cur:
                cur.executemany(
                    f"INSERT INTO raw_case VALUES (%s, '{SURVEY}', 1, 1, %s, '2024-07-20 01:00:00')",
                    cases,
                )
            pg.commit()

    def batch(self, operations: int) -> None:
        base = dt.datetime(2024, 8, 1, 2, 0)
        for n in range(self.done, self.done + operations):
            case_id, version = n % self.rows + 1, n // self.rows + 1
            when = base + dt.timedelta(seconds=n)
            at: object = when.isoformat(" ") if self._sqlite is not None else when
            update = (APPROVAL, version + 1, version + 1, _RAW_HASH, at, case_id, version)
            insert = (
                case_id,
                version + 1,
                "approver.wh",
                APPROVE,
                APPROVAL,
                APPROVAL,
                "同意",
                _RAW_DATA,
                at,
                _RAW_HASH,
                _RAW_HASH,
            )
            if self._sqlite is not None:
                lite = self._sqlite
                started = Timings.start()
                lite.execute("BEGIN IMMEDIATE")
                lite.execute(_RAW_UPDATE, update)
                lite.execute(_RAW_INSERT, insert)
                lite.execute("COMMIT")
                self.timings.add(started)
            else:
                assert self._pg is not None
                pg = self._pg
                started = Timings.start()
                pg.execute(_RAW_UPDATE_PG, update)
                pg.execute(_RAW_INSERT_PG, insert)
                pg.commit()
                self.timings.add(started)
        self.done += operations

    def close(self) -> None:
        if self._sqlite is not None:
            self._sqlite.close()
        if self._pg is not None:
            self._pg.close()
