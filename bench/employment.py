"""`python -m bench employment [--db URL] [--records N] [--calls N]`: the statistics items
counted from the employment and work-study registers (`workflow.statistics.records`) for the
city and a district, next to the same aggregates written by hand on the bare connection.

The world: `bench bulk`'s (the Weihai tree, N cases of the district WH-HC's grassroots unions),
every case marked paid; one employment record per case (states, graduation years and 在本地就读
spread evenly), three pieces of help each (every kind in turn, loans and subsidies with an
amount), a work-study post per 20 cases and a participant per 2. Loaded with executemany, not
timed; each record's audit chain is its first entry only (unhashed: a statistics cut-off reads
the state the trail gave a record, never the hashes), and every other record is marked updated
the next day (help recorded later), so a cut-off reads the trail of half of them.

Timed (wall clock, `--calls` each, interleaved): `count_records` (what a statistics request adds
for the registers: one query over the records, one over help by kind, two over posts), and the
baseline: the same four statements as literal SQL through `exec_driver_sql` (no SQLAlchemy
compilation, no result processing); `count_records` as at a cut-off on the day everything was
recorded (each record's state then read from its trail, help by its date, participants by when
added and removed); for context, the whole `statistics()` for all five tables (with the Weihai
campaign's own cut-off, 8/30: the registers, recorded 9/20, count nothing there).
Checked: all three give the same counts.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics as stats
from collections import Counter
from typing import Any

from sqlalchemy import Connection, select, text

from bench.bulk import CITY, DISTRICT, seed
from bench.common import add_db_option, bench_database, say
from bench.seeding import loadavg
from jinqiu.states import CaseState
from jinqiu.states.employment_record import MACHINE, RecordState
from jinqiu.workflow.db import transaction
from jinqiu.workflow.employment.engine import (
    help_t,
    participant_t,
    post_t,
    record_audit_t,
    record_t,
)
from jinqiu.workflow.employment.service import CREATE_EVENT, HELP_KINDS
from jinqiu.workflow.statistics.compute import statistics
from jinqiu.workflow.statistics.records import count_records
from jinqiu.workflow.units.models import Unit, subtree_bounds

unit_t = Unit.__table__  # type: ignore[attr-defined]
YEAR = 2024
AT = dt.datetime(2024, 9, 20, 1, 0, tzinfo=dt.UTC)
STATES = [s.value for s in RecordState]
OPEN = tuple(str(s) for s in MACHINE.open_states)
EMPLOYED = RecordState.EMPLOYED.value


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench employment", description=(__doc__ or "").split("\n")[0]
    )
    add_db_option(parser)
    parser.add_argument("--records", type=int, default=10_000, help="records (default 10,000)")
    parser.add_argument("--calls", type=int, default=20, help="timed calls each (default 20)")
    return parser.parse_args(argv)


def load_registers(conn: Connection, campaign_id: int) -> dict[str, int]:
    cases = conn.execute(
        text("SELECT id, unit_id FROM aid_case WHERE campaign_id = :c ORDER BY id"),
        {"c": campaign_id},
    ).all()
    conn.execute(
        text("UPDATE aid_case SET state = :s, paid_on = :d WHERE campaign_id = :c"),
        {"s": CaseState.FOLLOW_UP.value, "d": dt.date(2024, 8, 26), "c": campaign_id},
    )
    kinds = list(HELP_KINDS)
    records = [
        {
            "campaign_id": campaign_id, "case_id": case_id, "unit_id": unit_id,
            "state": STATES[n % len(STATES)], "version": 1, "audit_seq": 0, "audit_head": "",
            "graduation_year": YEAR - (n % 3), "school": "某大学", "major": None,
            "studies_locally": n % 2 == 0, "destination": None, "created_by": "bench",
            "created_at": AT, "updated_at": AT + dt.timedelta(days=n % 2),
        }
        for n, (case_id, unit_id) in enumerate(cases)
    ]  # fmt: skip
    conn.execute(record_t.insert(), records)
    ids = conn.execute(select(record_t.c.id).order_by(record_t.c.id)).scalars().all()
    conn.execute(
        record_audit_t.insert(),
        [
            {"record_id": record_id, "seq": 1, "actor": "bench", "actor_unit": None,
             "event": CREATE_EVENT, "from_state": None, "to_state": record["state"],
             "opinion": None, "data": {}, "at": AT, "prev_hash": "", "hash": ""}
            for record_id, record in zip(ids, records, strict=True)
        ],
    )  # fmt: skip
    help_rows = []
    for n, record_id in enumerate(ids):
        for k in range(3):
            kind = kinds[(3 * n + k) % len(kinds)]
            amount = 100_000 if HELP_KINDS[kind].amount_required else None
            help_rows.append(
                {"record_id": record_id, "kind": kind, "given_on": AT.date(), "text": None,
                 "amount_fen": amount, "recorded_by": "bench", "recorded_at": AT}
            )  # fmt: skip
    conn.execute(help_t.insert(), help_rows)
    post_ids = []
    for n in range(0, len(cases), 20):
        post_ids.append(
            conn.execute(
                post_t.insert()
                .values(
                    campaign_id=campaign_id, unit_id=cases[n].unit_id, title="岗位",
                    employer=f"用工单位{n % 7}", kind="campus", hours_per_week=8,
                    hourly_pay_fen=2000, is_open=True, created_by="bench", created_at=AT,
                )
                .returning(post_t.c.id)
            ).scalar_one()
        )  # fmt: skip
    participants = [
        {"post_id": post_ids[(n // 2) % len(post_ids)], "case_id": case_id, "active": True,
         "added_by": "bench", "added_at": AT}
        for n, (case_id, _unit) in enumerate(cases) if n % 2 == 0
    ]  # fmt: skip
    conn.execute(participant_t.insert(), participants)
    return {
        "records": len(records),
        "help": len(help_rows),
        "posts": len(post_ids),
        "participants": len(participants),
    }


def by_hand(conn: Connection, campaign_id: int, path: str) -> Counter[str]:
    """The same counts, as literal SQL on the bare connection (the baseline)."""
    lower, upper = subtree_bounds(path)
    marks = ", ".join("?" if conn.dialect.name == "sqlite" else "%s" for _ in OPEN)
    p = "?" if conn.dialect.name == "sqlite" else "%s"
    scope = f"r.campaign_id = {p} AND u.path >= {p} AND u.path < {p}"
    helped = "EXISTS (SELECT 1 FROM employment_help h WHERE h.record_id = r.id)"
    out: Counter[str] = Counter()
    row = conn.exec_driver_sql(
        "SELECT count(*),"
        f" sum(CASE WHEN r.graduation_year = {YEAR} THEN 1 ELSE 0 END),"
        f" sum(CASE WHEN r.graduation_year < {YEAR} THEN 1 ELSE 0 END),"
        f" sum(CASE WHEN r.state = {p} AND {helped} THEN 1 ELSE 0 END),"
        f" sum(CASE WHEN r.state = {p} AND NOT {helped} THEN 1 ELSE 0 END),"
        f" sum(CASE WHEN r.state IN ({marks}) AND r.graduation_year = {YEAR}"
        "   AND r.studies_locally THEN 1 ELSE 0 END),"
        f" sum(CASE WHEN r.state IN ({marks}) AND r.graduation_year < {YEAR} THEN 1 ELSE 0 END)"
        f" FROM employment_record r JOIN unit u ON u.id = r.unit_id WHERE {scope}",
        (EMPLOYED, EMPLOYED, *OPEN, *OPEN, campaign_id, lower, upper),
    ).one()
    keys = ("graduates", "graduates_fresh", "graduates_previous", "employed_helped",
            "employed_self", "fresh_local_unplaced", "previous_unplaced")  # fmt: skip
    out.update({k: int(v or 0) for k, v in zip(keys, row, strict=True)})
    out["needs_help"] = out["graduates"] - out["employed_self"]
    for kind, pieces, fen in conn.exec_driver_sql(
        "SELECT h.kind, count(*), coalesce(sum(h.amount_fen), 0) FROM employment_help h"
        " JOIN employment_record r ON r.id = h.record_id JOIN unit u ON u.id = r.unit_id"
        f" WHERE {scope} GROUP BY h.kind",
        (campaign_id, lower, upper),
    ):
        out[f"help:{kind}"], out[f"help_fen:{kind}"] = int(pieces), int(fen)
    posts_scope = scope.replace("r.campaign_id", "w.campaign_id")
    posts, employers = conn.exec_driver_sql(
        "SELECT count(*), count(DISTINCT w.employer) FROM work_study_post w"
        f" JOIN unit u ON u.id = w.unit_id WHERE {posts_scope}",
        (campaign_id, lower, upper),
    ).one()
    out["posts"], out["post_employers"] = int(posts), int(employers)
    out["participants"] = int(
        conn.exec_driver_sql(
            "SELECT count(*) FROM work_study_participant a JOIN work_study_post w"
            f" ON w.id = a.post_id JOIN unit u ON u.id = w.unit_id WHERE {posts_scope} AND a.active",
            (campaign_id, lower, upper),
        ).scalar_one()
    )
    return out


def main(argv: list[str]) -> dict[str, Any]:
    args = parse_args(argv)
    with bench_database(args.db, name="employment") as db:
        say(f"seeding {args.records:,} cases and their registers …")
        world = seed(db, cases=args.records, final=False)
        with transaction(db.engine) as conn:
            loaded = load_registers(conn, world.campaign_id)
            units = {
                r.code: r
                for r in conn.execute(select(unit_t).where(unit_t.c.code.in_([CITY, DISTRICT])))
            }
        say(f"loaded {loaded}; timing {args.calls} calls each …")
        ours: dict[str, list[float]] = {CITY: [], DISTRICT: []}
        at_cutoff: dict[str, list[float]] = {CITY: [], DISTRICT: []}
        bare: dict[str, list[float]] = {CITY: [], DISTRICT: []}
        whole: dict[str, list[float]] = {CITY: [], DISTRICT: []}
        same = True
        with db.engine.connect() as conn:
            for _ in range(args.calls):
                for code, unit in units.items():
                    started = dt.datetime.now()
                    counted = count_records(conn, world.campaign_id, YEAR, unit.path)
                    ours[code].append((dt.datetime.now() - started).total_seconds() * 1e3)
                    started = dt.datetime.now()
                    baseline = by_hand(conn, world.campaign_id, unit.path)
                    bare[code].append((dt.datetime.now() - started).total_seconds() * 1e3)
                    same &= +counted == +baseline
                    started = dt.datetime.now()
                    then = count_records(conn, world.campaign_id, YEAR, unit.path, AT.date())
                    at_cutoff[code].append((dt.datetime.now() - started).total_seconds() * 1e3)
                    same &= +counted == +then
                    started = dt.datetime.now()
                    statistics(conn, world.campaign_id, unit)
                    whole[code].append((dt.datetime.now() - started).total_seconds() * 1e3)
                conn.rollback()
    median = {
        name: {code: round(stats.median(v), 2) for code, v in table.items()}
        for name, table in (("count_records_ms", ours), ("baseline_ms", bare),
                            ("count_records_at_cutoff_ms", at_cutoff),
                            ("statistics_all_tables_ms", whole))
    }  # fmt: skip
    return {
        "bench": "employment",
        "db": db.kind,
        **loaded,
        "calls": args.calls,
        **median,
        "same_counts": same,
        "loadavg": loadavg(),
        "ok": same,
    }
