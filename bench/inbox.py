"""`python -m bench inbox [--db URL] [--items N] [--units N] [--users N] [--calls N]`: the nav's
unread count read per user (`notifications.inbox.unread_count`, run on every page), next to the
unit-wide count it replaced on the bare driver (`unit_code = ? AND read_at IS NULL`).

The world: `--items` inbox items spread over `--units` units, and `--users` users in every unit
who each read a different part of their unit's items (user k reads those whose place modulo
users is below k: from none to nearly all) — about items × (users − 1) / 2 receipts in all —,
loaded with executemany, not timed; the first unit is measured. Timed (wall clock, `--calls` rounds, interleaved): every user's count,
and the baseline once per round per user. Checked: user 0 (reads nothing) counts the unit's items
the baseline counts unread (no unit-wide read is set here).
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics as stats
from typing import Any

from sqlalchemy import select, text

from bench.common import add_db_option, bench_database, percentile, say
from bench.seeding import loadavg
from jinqiu.notifications.inbox import inbox_t, read_t, unread_count
from jinqiu.workflow.db import transaction

AT = dt.datetime(2024, 7, 22, 1, 0, tzinfo=dt.UTC)
UNIT = "U0000"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench inbox", description=(__doc__ or "").split("\n")[0]
    )
    add_db_option(parser)
    parser.add_argument("--items", type=int, default=100_000, help="items (default 100,000)")
    parser.add_argument("--units", type=int, default=100, help="units (default 100)")
    parser.add_argument("--users", type=int, default=10, help="users of the unit (default 10)")
    parser.add_argument("--calls", type=int, default=50, help="timed rounds (default 50)")
    args = parser.parse_args(argv)
    if min(args.units, args.users, args.calls) < 1 or args.items < args.units:
        parser.error("--units, --users and --calls at least 1; --items at least --units")
    return args


def main(argv: list[str]) -> dict[str, Any]:
    args = parse_args(argv)
    users = [f"bench.user{k}" for k in range(args.users)]
    with bench_database(args.db, name="inbox") as db:
        say(f"loading {args.items:,} items over {args.units} units, {args.users} readers …")
        with transaction(db.engine) as conn:
            conn.execute(
                inbox_t.insert(),
                [
                    {"idempotency_key": f"bench:{n}", "unit_code": f"U{n % args.units:04d}",
                     "title": "提醒", "body": "请按时报送", "link": None, "created_at": AT}
                    for n in range(args.items)
                ],
            )  # fmt: skip
            by_unit: dict[str, list[int]] = {}
            for i, unit in conn.execute(select(inbox_t.c.id, inbox_t.c.unit_code)):
                by_unit.setdefault(unit, []).append(i)
            mine = sorted(by_unit[UNIT])
            receipts = 0
            for unit, items in by_unit.items():
                rows = [
                    {"inbox_message_id": i, "username": f"{unit}.{u}", "read_at": AT}
                    for k, u in enumerate(users)
                    for j, i in enumerate(sorted(items))
                    if j % args.users < k
                ]
                if rows:  # a single reader reads nothing
                    conn.execute(read_t.insert(), rows)
                receipts += len(rows)
        if db.kind == "postgresql":
            with db.engine.connect() as conn:
                conn.execute(text("ANALYZE inbox_message"))
                conn.execute(text("ANALYZE inbox_read"))
                conn.commit()
        say(f"unit {UNIT}: {len(mine):,} items; {receipts:,} receipts in all; timing …")
        ours: list[float] = []
        bare: list[float] = []
        mark = "?" if db.kind == "sqlite" else "%s"
        baseline_sql = (
            f"SELECT count(*) FROM inbox_message WHERE unit_code = {mark} AND read_at IS NULL"
        )
        checked = True
        with db.engine.connect() as conn:
            for _ in range(args.calls):
                for user in users:
                    started = dt.datetime.now()
                    counted = unread_count(conn, UNIT, f"{UNIT}.{user}")
                    ours.append((dt.datetime.now() - started).total_seconds() * 1e3)
                    started = dt.datetime.now()
                    unit_wide = conn.exec_driver_sql(baseline_sql, (UNIT,)).scalar_one()
                    bare.append((dt.datetime.now() - started).total_seconds() * 1e3)
                    if user == users[0]:
                        checked &= counted == unit_wide == len(mine)
                conn.rollback()
    ours.sort()
    bare.sort()
    return {
        "bench": "inbox",
        "db": db.kind,
        "items": args.items,
        "unit_items": len(mine),
        "receipts": receipts,
        "users": args.users,
        "calls": len(ours),
        "unread_count_ms": {
            "p50_ms": round(stats.median(ours), 3),
            "p99_ms": round(percentile(ours, 99), 3),
        },
        "baseline_ms": {
            "p50_ms": round(stats.median(bare), 3),
            "p99_ms": round(percentile(bare, 99), 3),
        },
        "ratio": round(stats.median(ours) / stats.median(bare), 2),
        "ok": checked,
        "loadavg": loadavg(),
    }
