"""`python -m bench bulk [--db URL] [--cases N] [--final] [--singles K]`: one event on many
cases by `apply_bulk` in one transaction, against the same event fired case by case.

The world: the Weihai unit tree and a campaign whose approval chain has two levels (district,
then city). N cases wait at ONE level — the first (the district approver of 环翠区 approves
cases of its grassroots unions: no money moves), or with --final the last (the city approver
approves cases all over the city, each reserving 3000 yuan from a fund that covers them all).
The cases are loaded on the bare driver (bench/seeding.py's Loader: COPY on PostgreSQL), with
their workers, students, dashboard counters and an audit chain each (create, submit, verify,
end of publicity and the approvals behind them) that `jinqiu audit verify` accepts.

Two identical worlds, one database each, seeded the same and driven at the same clock time:
(a) the baseline: K single transitions (default all N), one `apply_event` + commit each;
(b) one `apply_bulk` over all N items in one transaction.
Then: every bulk item ok, every audit chain intact and every counter equal to a recount in
both, and the audit digest (sha256 over the hashes of the audit rows of the K cases, ordered
by case and seq) of (a) equal to (b)'s: the bulk wrote what the single transitions wrote.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.engine import make_url

from bench.common import BenchDatabase, Timings, bench_database, db_kind, default_db_url, say
from bench.seeding import (
    CASE_COLUMNS,
    COUNTER_COLUMNS,
    STUDENT_COLUMNS,
    WORKER_COLUMNS,
    Households,
    Loader,
    loadavg,
    sql_time,
    unit_counter_rows,
)
from jinqiu.demo.units import seed_weihai_tree
from jinqiu.states import CaseEvent, CaseState
from jinqiu.states.case_lifecycle import history_to
from jinqiu.workflow.audit.chain import GENESIS, entry_hash
from jinqiu.workflow.audit.models import AuditEntry
from jinqiu.workflow.campaigns.schema import CampaignFile
from jinqiu.workflow.campaigns.service import load_campaign
from jinqiu.workflow.cases.bulk import BulkItem, apply_bulk
from jinqiu.workflow.cases.counters import counter_differences
from jinqiu.workflow.cases.engine import apply_event
from jinqiu.workflow.cases.service import CREATE_EVENT
from jinqiu.workflow.cases.trail import verify_case_chains
from jinqiu.workflow.clock import ManualClock
from jinqiu.workflow.db import snapshot, transaction
from jinqiu.workflow.paths import parents_on
from jinqiu.workflow.roles import Actor
from jinqiu.workflow.units.models import Unit, UnitLevel

ROOT = Path(__file__).resolve().parents[1]
CAMPAIGN_FILE = ROOT / "examples" / "campaigns" / "weihai-2024.json"
LEVELS = ["district", "city"]  # the campaign's approval chain: two levels
DISTRICT = "WH-HC"  # 环翠区: the first level's approver, over its grassroots unions
CITY = "WH"
AMOUNT_YUAN = 3000  # every loaded student: an undergraduate at a first-tier university
SEEDED_AT = dt.datetime(2024, 8, 9, 10, 0)  # the seeded history, all at one instant
APPROVED_AT = dt.datetime(2024, 8, 12, 9, 0)  # both runs fire at this clock time
OPINION = "同意"
SEED_ACTOR = "bench"  # the actor of the seeded audit entries, as tests.factories' "factory"
CHUNK = 5000

unit_t = Unit.__table__  # type: ignore[attr-defined]
audit_t = AuditEntry.__table__  # type: ignore[attr-defined]
AUDIT_COLUMNS = (
    "case_id",
    "seq",
    "actor",
    "actor_unit",
    "event",
    "from_state",
    "to_state",
    "opinion",
    "data",
    "at",
    "prev_hash",
    "hash",
)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench bulk", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument(
        "--db",
        default=default_db_url(),
        help="sqlite:///new-file.db (two files are made: -singles and -bulk beside it) or "
        "postgresql://user@host:port/db (two fresh schemas, dropped at the end); default: "
        "JINQIU_DATABASE_URL if set, else fresh temporary SQLite files",
    )
    parser.add_argument("--cases", type=int, default=10_000, help="cases (default 10,000)")
    parser.add_argument(
        "--final",
        action="store_true",
        help="the cases wait at the last level: each approval reserves money",
    )
    parser.add_argument(
        "--singles",
        type=int,
        default=None,
        help="time the baseline on the first K cases only (default: all of them)",
    )
    return parser.parse_args(argv)


def main(argv: list[str]) -> dict[str, Any]:
    args = parse_args(argv)
    if args.cases < 1:
        raise SystemExit("--cases must be at least 1")
    singles = min(args.singles or args.cases, args.cases)
    kind = "sqlite" if args.db is None else db_kind(args.db)
    level = "final" if args.final else "first"
    say(
        f"bulk on {kind}: {args.cases} cases at the {level} of {len(LEVELS)} approval levels; "
        f"baseline {singles} single transitions"
    )

    with bench_database(run_url(args.db, "singles"), name="bulk") as db:
        world = seed(db, cases=args.cases, final=args.final)
        single = drive_singly(db.engine, world, singles)
        checked_a = check(db.engine, world, sampled=singles)
    say(
        f"  (a) singles: {single.count} in {single.total_s:.1f} s, {single.per_s():,.0f}/s, "
        f"{single.cpu_us_each():,.0f} µs CPU each; {checked_a.describe()}"
    )

    with bench_database(run_url(args.db, "bulk"), name="bulk") as db:
        world = seed(db, cases=args.cases, final=args.final)
        bulk_seconds, items_ok = drive_in_bulk(db.engine, world)
        checked_b = check(db.engine, world, sampled=singles)
    bulk_rate = args.cases / bulk_seconds
    say(
        f"  (b) bulk: {items_ok} of {args.cases} ok in {bulk_seconds:.2f} s, "
        f"{bulk_rate:,.0f}/s; {checked_b.describe()}"
    )

    digests_equal = checked_a.digest == checked_b.digest
    audit_ok = checked_a.audit_ok and checked_b.audit_ok
    counters_ok = checked_a.counters_ok and checked_b.counters_ok
    single_rate = single.per_s()
    return {
        "bench": "bulk",
        "db": kind,
        "level": level,
        "cases": args.cases,
        "singles": single.count,
        "single_rate": round(single_rate, 1),
        "bulk_seconds": round(bulk_seconds, 3),
        "bulk_rate": round(bulk_rate, 1),
        "ratio": round(bulk_rate / single_rate, 3),
        "items_ok": items_ok,
        "digests_equal": digests_equal,
        "audit_ok": audit_ok,
        "counters_ok": counters_ok,
        "ok": items_ok == args.cases and digests_equal and audit_ok and counters_ok,
        "loadavg": loadavg(),
    }


def run_url(url: str | None, run: str) -> str | None:
    """Each run its own database: a SQLite file named after the run, or a schema of its own."""
    if url is None or db_kind(url) != "sqlite":
        return url
    database = make_url(url).database
    if not database or database == ":memory:":
        raise SystemExit("give a SQLite file (sqlite:///path.db): commits are measured")
    path = Path(database)
    return f"sqlite:///{path.with_name(f'{path.stem}-{run}{path.suffix}')}"


# -- the world ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class World:
    campaign_id: int
    items: list[BulkItem]  # in id order
    actor: Actor
    seconds: float


def campaign_spec(cases: int) -> CampaignFile:
    """Weihai 2024 with a two-level chain, and a government fund that covers every case."""
    raw = json.loads(CAMPAIGN_FILE.read_text(encoding="utf-8"))
    raw["approval_levels"] = LEVELS
    for fund in raw["funds"]:
        if fund["source"] == "government":
            fund["budget"] = str(AMOUNT_YUAN * cases)
    return CampaignFile.model_validate(raw)


def seed(db: BenchDatabase, *, cases: int, final: bool) -> World:
    """The tree and campaign through the service; cases, their audit chains and the counters on
    the bare driver, as `tests.factories.case_in` would leave them (minus guards and dates)."""
    started = time.perf_counter()
    clock = ManualClock(SEEDED_AT)
    with transaction(db.engine) as conn:
        seed_weihai_tree(conn)
        campaign_id = load_campaign(conn, campaign_spec(cases), clock)
        units = {r.code: r for r in conn.execute(select(unit_t))}
    approver_unit = units[CITY if final else DISTRICT]
    # The cases: round the grassroots unions in the approver's subtree.
    grassroots = sorted(
        (
            u
            for u in units.values()
            if u.level == UnitLevel.GRASSROOTS.value and u.path.startswith(approver_unit.path)
        ),
        key=lambda u: u.code,
    )
    approved = len(LEVELS) - 1 if final else 0
    history = history_to(CaseState.APPROVAL, levels=len(LEVELS), approved=approved)
    households = Households(campaign_id=campaign_id, created=clock.now())

    workers, students, case_rows, audit_rows = [], [], [], []
    counts: Counter[tuple[str, str]] = Counter()
    parents: dict[str, str | None] = {}
    for n in range(1, cases + 1):
        unit = grassroots[(n - 1) % len(grassroots)]
        creator = f"clerk.{unit.code.lower()}"
        worker, student, case = households.rows(n, unit.id, CaseState.APPROVAL.value, creator)
        entries = seeded_chain(n, unit.code, creator, history, clock.now())
        row = dict(zip(CASE_COLUMNS, case, strict=True))
        row.update(
            version=1 + len(history),
            approval_step=approved,
            audit_seq=len(entries),
            audit_head=entries[-1]["hash"],
        )
        workers.append(worker)
        students.append(student)
        case_rows.append(tuple(row[c] for c in CASE_COLUMNS))
        audit_rows.extend(
            tuple(
                json.dumps(e[c], ensure_ascii=False) if c == "data" else e[c] for c in AUDIT_COLUMNS
            )
            for e in entries
        )
        on_path = parents_on(unit.path)
        parents.update(on_path)
        for code in on_path:
            counts[code, CaseState.APPROVAL.value] += 1

    with Loader(db) as loader:
        loader.copy("worker", WORKER_COLUMNS, workers)
        loader.copy("student", STUDENT_COLUMNS, students)
        loader.copy("aid_case", CASE_COLUMNS, case_rows)
        loader.copy("audit_entry", AUDIT_COLUMNS, audit_rows)
        loader.copy(
            "unit_case_count", COUNTER_COLUMNS, unit_counter_rows(campaign_id, counts, parents)
        )
        loader.finish()

    actor = Actor(
        username=f"approver.{approver_unit.code.lower()}",
        unit_code=approver_unit.code,
        unit_path=approver_unit.path,
        unit_level=approver_unit.level,
        roles=("approver",),
    )
    items = [BulkItem(id=n, version=1 + len(history)) for n in range(1, cases + 1)]
    seconds = time.perf_counter() - started
    say(f"  seeded {cases} cases ({len(audit_rows)} audit entries) in {seconds:.1f} s")
    return World(campaign_id, items, actor, seconds)


def seeded_chain(
    case_id: int, unit_code: str, creator: str, history: list[Any], at: dt.datetime
) -> list[dict[str, Any]]:
    """The case's audit entries: its creation by the unit's clerk, then each transition of its
    history, chained by hash as the engine chains them."""
    entries: list[dict[str, Any]] = []
    prev_hash = GENESIS
    steps: list[tuple[str, str | None, str | None, str, dict[str, Any]]] = [
        (creator, unit_code, None, CaseState.SURVEY.value, {})
    ]
    state, level = CaseState.SURVEY.value, 0
    for t in history:
        data: dict[str, Any] = {}
        if "start_publicity" in t.effects:
            data["publicity_ends_on"] = "2024-08-08"
        if "advance_approval_level" in t.effects:
            data["approval_level"] = LEVELS[level]
            level += 1
        steps.append((SEED_ACTOR, None, state, t.dest.value, data))
        state = t.dest.value
    events = [CREATE_EVENT, *(t.event.value for t in history)]
    for seq, (event, (actor, actor_unit, from_state, to_state, data)) in enumerate(
        zip(events, steps, strict=True), start=1
    ):
        entry = {
            "case_id": case_id,
            "seq": seq,
            "actor": actor,
            "actor_unit": actor_unit,
            "event": event,
            "from_state": from_state,
            "to_state": to_state,
            "opinion": None,
            "data": data,
            "at": at,
        }
        digest = entry_hash(prev_hash=prev_hash, **entry)
        entries.append({**entry, "at": sql_time(at), "prev_hash": prev_hash, "hash": digest})
        prev_hash = digest
    return entries


# -- the two runs ------------------------------------------------------------------------------


def drive_singly(engine: Engine, world: World, count: int) -> Timings:
    """(a) one `apply_event` and one commit per case, the first `count` cases."""
    clock = ManualClock(APPROVED_AT)
    timings = Timings()
    for item in world.items[:count]:
        started = Timings.start()
        with transaction(engine) as conn:
            apply_event(
                conn,
                case_id=item.id,
                event=CaseEvent.APPROVE,
                expected_version=item.version,
                actor=world.actor,
                clock=clock,
                opinion=OPINION,
            )
        timings.add(started)
    return timings


def drive_in_bulk(engine: Engine, world: World) -> tuple[float, int]:
    """(b) one `apply_bulk` over every case, in one transaction; its seconds (to the commit
    included) and how many items succeeded."""
    clock = ManualClock(APPROVED_AT)
    started = time.perf_counter()
    with transaction(engine) as conn:
        results = apply_bulk(
            conn,
            items=world.items,
            event=CaseEvent.APPROVE,
            actor=world.actor,
            clock=clock,
            opinion=OPINION,
        )
    seconds = time.perf_counter() - started
    failed = [r for r in results if not r.ok]
    if failed:
        first = failed[0]
        say(f"  {len(failed)} bulk items refused, the first: case {first.id}: {first.error!r}")
    return seconds, len(results) - len(failed)


@dataclass(frozen=True)
class Checked:
    digest: str
    audit_ok: bool
    counters_ok: bool
    problems: list[str]

    def describe(self) -> str:
        if self.problems:
            return "PROBLEMS: " + "; ".join(self.problems[:3])
        return f"audit chains intact, counters match, audit digest {self.digest[:16]}"


def check(engine: Engine, world: World, *, sampled: int) -> Checked:
    """Audit chains, counters against a recount, and the digest of the first `sampled` cases'
    audit rows (the cases both runs fired on)."""
    last = world.items[sampled - 1].id
    digest = hashlib.sha256()
    with snapshot(engine) as conn:
        broken = [b.describe() for b in verify_case_chains(conn)]
        differences = [d.describe() for d in counter_differences(conn, world.campaign_id)]
        for hash_ in conn.execute(
            select(audit_t.c.hash)
            .where(audit_t.c.case_id <= last)
            .order_by(audit_t.c.case_id, audit_t.c.seq)
        ).scalars():
            digest.update(hash_.encode())
    return Checked(digest.hexdigest(), not broken, not differences, broken + differences)
