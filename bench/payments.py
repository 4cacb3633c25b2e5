"""`python -m bench payments [--db URL] [--cases N]`: a payment batch of N cases (default 10,000)
built and its bank file exported, then the bank's N-row result file validated and applied —
against the bare driver doing the same inserts and updates.

The world is `bench bulk --final`'s (the Weihai tree, N cases waiting at the city's approval,
loaded on the bare driver), moved to disbursement by one set-based final approval (each case
reserving 3000 yuan from the government fund) and given a valid bank card each; none of that is
timed. Timed, each its own transaction to the commit included:
(export) `build_batch` + `export_file` (CSV in GB18030): the batch and its N rows inserted, the N
cases joined to it (versioned), the file written and hashed, the export audited, N pii_access rows;
(result) `import_result` of the bank's CSV (1 % 退票): read and validated whole, then the N cases
paid or failed through `fire_many` (versions, guards, audit chains, counters, funds, outbox).
The baseline, on a scratch database of its own with the bare driver (sqlite3 / psycopg):
(export) N item INSERTs + N case UPDATEs + the same CSV written; (result) N case UPDATEs + N
audit INSERTs + N item UPDATEs + the fund UPDATE. Checks: every case paid or failed as the file
says, the audit chains intact, the funds reconciled.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import time
from typing import Any

from sqlalchemy import bindparam, select, update

from bench.bulk import campaign_spec, seed
from bench.common import (
    BenchDatabase,
    RawScratch,
    add_db_option,
    bench_database,
    db_kind,
    say,
)
from bench.seeding import loadavg
from jinqiu.states import CaseEvent, CaseState
from jinqiu.workflow.cases.bulk import apply_bulk
from jinqiu.workflow.cases.models import Case, Worker
from jinqiu.workflow.cases.trail import verify_case_chains
from jinqiu.workflow.clock import ManualClock
from jinqiu.workflow.db import transaction
from jinqiu.workflow.payments import bankfile, service
from jinqiu.workflow.payments.cards import with_check_digit
from jinqiu.workflow.payments.reconcile import unreconciled
from jinqiu.workflow.roles import Actor

case_t = Case.__table__  # type: ignore[attr-defined]
worker_t = Worker.__table__  # type: ignore[attr-defined]
APPROVED_AT = dt.datetime(2024, 8, 12, 9, 0)
PAID_AT = dt.datetime(2024, 8, 26, 9, 0)
FAILING_EVERY = 100  # 1 % of the rows come back 失败 (退票)
FINANCE = Actor("finance.wh", "WH", "/WH/", "city", ("finance",))


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench payments", description=(__doc__ or "").split("\n")[0]
    )
    add_db_option(parser)
    parser.add_argument("--cases", type=int, default=10_000, help="cases (default 10,000)")
    return parser.parse_args(argv)


def main(argv: list[str]) -> dict[str, Any]:
    args = parse_args(argv)
    if not 1 <= args.cases <= 20_000:
        raise SystemExit("--cases must be 1 … 20,000 (a batch's limit)")
    kind = "sqlite" if args.db is None else db_kind(args.db)
    say(f"payments on {kind}: a batch of {args.cases} cases, exported, its result applied")
    with bench_database(args.db, name="payments") as db:
        campaign_id, case_ids = disbursement_world(db, args.cases)
        clock = ManualClock(PAID_AT)
        started, cpu = time.perf_counter(), time.process_time()
        with transaction(db.engine) as conn:
            built = service.build_batch(
                conn,
                campaign_id=campaign_id,
                fund_source="government",
                unit_code=None,
                case_ids=None,
                actor=FINANCE,
                clock=clock,
            )
            exported = service.export_file(
                conn, built.id, "csv", actor=FINANCE, clock=clock, purpose="bench"
            )
        export_s, export_cpu_s = time.perf_counter() - started, time.process_time() - cpu
        content = bank_result(exported.content)
        started, cpu = time.perf_counter(), time.process_time()
        with transaction(db.engine) as conn:
            applied = service.import_result(
                conn, built.id, content, "result.csv", actor=FINANCE, clock=clock
            )
        result_s, result_cpu_s = time.perf_counter() - started, time.process_time() - cpu
        with db.engine.connect() as conn:
            paid = conn.execute(
                select(case_t.c.id).where(
                    case_t.c.id.in_(case_ids), case_t.c.state == CaseState.FOLLOW_UP.value
                )
            ).all()
            chains_ok = not list(verify_case_chains(conn))
            funds_ok = unreconciled(conn, campaign_id) == {}
        raw_export_s, raw_result_s = raw_baseline(db, exported.content, args.cases)
    failed = args.cases // FAILING_EVERY
    ok = (
        len(built.case_ids) == args.cases
        and (applied.paid, applied.failed) == (args.cases - failed, failed)
        and chains_ok
        and funds_ok
        and len(paid) == applied.paid
    )
    say(
        f"  export {export_s:.2f} s ({args.cases / export_s:,.0f} rows/s; bare driver "
        f"{raw_export_s:.2f} s), result {result_s:.2f} s ({args.cases / result_s:,.0f} rows/s; "
        f"bare driver {raw_result_s:.2f} s); paid {applied.paid}, failed {applied.failed}; "
        f"chains {'ok' if chains_ok else 'BROKEN'}, funds {'reconciled' if funds_ok else 'OFF'}"
    )
    return {
        "bench": "payments",
        "db": kind,
        "rows": args.cases,
        "export_s": round(export_s, 3),
        "result_s": round(result_s, 3),
        "export_rows_per_s": round(args.cases / export_s, 1),
        "result_rows_per_s": round(args.cases / result_s, 1),
        "export_cpu_s": round(export_cpu_s, 3),
        "result_cpu_s": round(result_cpu_s, 3),
        "raw_export_s": round(raw_export_s, 3),
        "raw_result_s": round(raw_result_s, 3),
        "ratio": round(result_s / raw_result_s, 2),
        "export_ratio": round(export_s / raw_export_s, 2),
        "ok": ok,
        "loadavg": loadavg(),
    }


def disbursement_world(db: BenchDatabase, cases: int) -> tuple[int, list[int]]:
    """`bench bulk --final`'s world, approved at the last level in one bulk, cards given."""
    world = seed(db, cases=cases, final=True)
    with transaction(db.engine) as conn:
        results = apply_bulk(
            conn,
            items=world.items,
            event=CaseEvent.APPROVE,
            actor=world.actor,
            clock=ManualClock(APPROVED_AT),
            opinion="同意",
        )
        assert all(r.ok for r in results), next(r for r in results if not r.ok)
        workers = conn.execute(
            select(case_t.c.worker_id).where(case_t.c.state == CaseState.DISBURSEMENT.value)
        ).scalars()
        conn.execute(
            update(worker_t)
            .where(worker_t.c.id == bindparam("b_id"))
            .values(bank_card_number=bindparam("card")),
            [{"b_id": w, "card": with_check_digit(f"622848{w:012d}")} for w in workers],
        )
    say(f"  seeded in {world.seconds:.1f} s, approved and cards given")
    assert campaign_spec  # the campaign: Weihai 2024, a government fund covering every case
    return world.campaign_id, [item.id for item in world.items]


def bank_result(export: bytes) -> bytes:
    """The bank's answer to the exported file: every row 成功 but one in a hundred 失败."""
    rows = list(csv.reader(io.StringIO(export.decode("gb18030"))))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["序号", "卡号", "金额", "状态", "失败原因"])
    for r in rows[1:-1]:
        failing = int(r[0]) % FAILING_EVERY == 0
        writer.writerow(
            [r[0], r[2], r[4], "失败" if failing else "成功", "户名不符" if failing else ""]
        )
    writer.writerow(["合计", "", rows[-1][4], "", ""])
    return out.getvalue().encode("gb18030")


# -- the bare driver ---------------------------------------------------------------------------

_TABLES = (
    "CREATE TABLE raw_case (id INTEGER PRIMARY KEY, state VARCHAR(20) NOT NULL, "
    "version INTEGER NOT NULL, batch_id INTEGER)",
    "CREATE TABLE raw_item (id {pk}, batch_id INTEGER NOT NULL, "
    "position INTEGER NOT NULL, case_id INTEGER NOT NULL, holder VARCHAR(50) NOT NULL, "
    "card_number VARCHAR(19) NOT NULL, bank_name VARCHAR(50) NOT NULL, amount_fen INTEGER NOT NULL, "
    "outcome VARCHAR(10), failure_reason VARCHAR(200))",
    "CREATE TABLE raw_audit (id {pk}, case_id INTEGER NOT NULL, seq INTEGER NOT NULL, "
    "event VARCHAR(32) NOT NULL, data TEXT NOT NULL, at VARCHAR(40) NOT NULL, "
    "prev_hash VARCHAR(64) NOT NULL, hash VARCHAR(64) NOT NULL)",
    "CREATE TABLE raw_fund (id INTEGER PRIMARY KEY, reserved_fen BIGINT NOT NULL, "
    "paid_fen BIGINT NOT NULL)",
    # as the service's tables: a batch's rows unique by position, audit entries by case and seq
    "CREATE UNIQUE INDEX raw_item_position ON raw_item (batch_id, position)",
    "CREATE UNIQUE INDEX raw_audit_seq ON raw_audit (case_id, seq)",
)


def raw_baseline(db: BenchDatabase, export: bytes, cases: int) -> tuple[float, float]:
    """The same inserts and updates on the bare driver, each step one transaction: seconds."""
    raw = RawScratch(db)
    for table in _TABLES:
        raw.run(table)
    raw.run("BEGIN")
    raw.run("INSERT INTO raw_case (id, state, version) VALUES (?, ?, 7)",
        [(n, CaseState.DISBURSEMENT.value) for n in range(1, cases + 1)])  # fmt: skip
    raw.run("INSERT INTO raw_fund VALUES (1, ?, 0)", [(cases * 300_000,)])
    raw.run("COMMIT")
    rows = list(csv.reader(io.StringIO(export.decode("gb18030"))))[1:-1]

    started = time.perf_counter()
    raw.run("BEGIN")
    raw.run(
        "INSERT INTO raw_item (batch_id, position, case_id, holder, card_number, bank_name, "
        "amount_fen) VALUES (1, ?, ?, ?, ?, ?, 300000)",
        [(int(r[0]), int(r[0]), r[1], r[2], r[3]) for r in rows],
    )
    raw.run("UPDATE raw_case SET batch_id = 1, version = version + 1 WHERE id = ?",
        [(int(r[0]),) for r in rows])  # fmt: skip
    written = bankfile.export_csv(
        [bankfile.FileRow(int(r[0]), r[1], r[2], r[3], 300_000) for r in rows], rows[0][5]
    )
    assert written
    raw.run("COMMIT")
    export_s = time.perf_counter() - started

    started = time.perf_counter()
    raw.run("BEGIN")
    raw.run("UPDATE raw_case SET state = ?, version = version + 1, batch_id = NULL "
        "WHERE id = ? AND version = 8",
        [(CaseState.FOLLOW_UP.value, int(r[0])) for r in rows])  # fmt: skip
    raw.run(
        "INSERT INTO raw_audit (case_id, seq, event, data, at, prev_hash, hash) "
        "VALUES (?, 8, ?, '{\"amount\": \"3000.00\"}', '2024-08-26T01:00:00Z', ?, ?)",
        [(int(r[0]), CaseEvent.PAY.value, "0" * 64, f"{int(r[0]):064x}") for r in rows],
    )
    raw.run("UPDATE raw_item SET outcome = 'paid' WHERE batch_id = 1 AND position = ?",
        [(int(r[0]),) for r in rows])  # fmt: skip
    raw.run("UPDATE raw_fund SET reserved_fen = reserved_fen - ?, paid_fen = paid_fen + ? "
        "WHERE id = 1", [(cases * 300_000, cases * 300_000)])  # fmt: skip
    raw.run("COMMIT")
    result_s = time.perf_counter() - started
    raw.close()
    return export_s, result_s
