"""`python -m bench import [--db URL] [--rows N]`: a 摸底表 of N rows (default 10,000; at most
the import's 100,000) read, checked and imported into one grassroots union's register, a case
created for each row through `create_cases` (create_case's rows, set-based) — against the
bare driver inserting the same rows.

The file is a UTF-8 CSV made here (valid identity numbers, the template's headers). Timed, each
its own transaction to the commit included: (dry) `import_survey(dry_run=True)`: the file read
and every row checked (the API's model, duplicates in the file, against the register and the
open cases); (import) the same for real: N register rows, N cases with their worker and student
rows, N audit entries and the counters. The baseline, on a scratch database of its own with the
bare driver (sqlite3 / psycopg) in one transaction: the same N rows into five plain tables
(worker, student, case, audit, register) by executemany. Peak RSS is the process's
(ru_maxrss) when the import has committed, the file's making included (the baseline's own rows
come after). CPU seconds (time.process_time) beside each wall time: on a shared machine they
say more than the wall clock; the load average is the one-minute figure at the end. Checks: N
cases, N register rows, chains intact, counters equal to a recount.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import os
import resource
import time
from typing import Any

from sqlalchemy import func, select

from bench.bulk import campaign_spec
from bench.common import (
    BenchDatabase,
    RawScratch,
    add_db_option,
    bench_database,
    db_kind,
    say,
)
from jinqiu.demo.units import seed_weihai_tree
from jinqiu.states import CaseState
from jinqiu.workflow.campaigns.service import load_campaign
from jinqiu.workflow.cases.counters import counter_differences
from jinqiu.workflow.cases.models import Case
from jinqiu.workflow.cases.trail import verify_case_chains
from jinqiu.workflow.clock import ManualClock
from jinqiu.workflow.db import transaction
from jinqiu.workflow.identity import make_id_number
from jinqiu.workflow.roles import Actor
from jinqiu.workflow.survey.models import SurveyEntry
from jinqiu.workflow.survey.service import import_survey
from jinqiu.workflow.survey.sheet import MAX_ROWS

case_t = Case.__table__  # type: ignore[attr-defined]
entry_t = SurveyEntry.__table__  # type: ignore[attr-defined]
UNIT = "WH-HC-001"
IMPORTED_AT = dt.datetime(2024, 7, 20, 9, 0)
HEADERS = ("职工姓名", "职工身份证号码", "建档类型", "建档日期", "学生姓名", "与职工关系",
           "身份证号码", "当前学历", "入学年份", "年制", "学校", "中考/高考分数", "录取学校",
           "录取批次", "备注")  # fmt: skip


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench import", description=(__doc__ or "").split("\n")[0]
    )
    add_db_option(parser)
    parser.add_argument("--rows", type=int, default=10_000, help="rows (default 10,000)")
    return parser.parse_args(argv)


def family(n: int) -> tuple[str, ...]:
    """Row n: a worker and a student with identity numbers of their own."""
    worker = make_id_number("371002", dt.date(1970, 1, 1) + dt.timedelta(days=n // 500), n % 500)
    student = make_id_number("371002", dt.date(2000, 1, 1) + dt.timedelta(days=n // 500), n % 500)
    return ("王建国", worker, "深度困难", "2024-03-01", "王小明", "子", student, "本科", "2024",
            "4", "山东大学（威海）", "612", "山东大学（威海）", "一本", "")  # fmt: skip


def survey_csv(rows: int) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(HEADERS)
    for n in range(rows):
        writer.writerow(family(n))
    return out.getvalue().encode("utf-8")


def main(argv: list[str]) -> dict[str, Any]:
    args = parse_args(argv)
    if not 1 <= args.rows <= MAX_ROWS:
        raise SystemExit(f"--rows must be 1 … {MAX_ROWS} (the import's limit)")
    kind = "sqlite" if args.db is None else db_kind(args.db)
    say(f"import on {kind}: a 摸底表 of {args.rows} rows checked, then imported")
    content = survey_csv(args.rows)
    with bench_database(args.db, name="import") as db:
        clock = ManualClock(IMPORTED_AT)
        with transaction(db.engine) as conn:
            seed_weihai_tree(conn)
            campaign_id = load_campaign(conn, campaign_spec(args.rows), clock)
        clerk = Actor("clerk.wh-hc-001", UNIT, "/WH/WH-HC/WH-HC-001/", "grassroots", ("clerk",))

        def run(dry_run: bool) -> tuple[float, float, Any]:
            started, cpu = time.perf_counter(), time.process_time()
            with transaction(db.engine) as conn:
                report = import_survey(
                    conn,
                    campaign_id=campaign_id,
                    unit_code=UNIT,
                    content=content,
                    filename="bench.csv",
                    dry_run=dry_run,
                    skip_invalid=False,
                    actor=clerk,
                    clock=clock,
                )
            return time.perf_counter() - started, time.process_time() - cpu, report

        dry_s, dry_cpu, dry = run(True)
        say(f"  dry run: {args.rows} rows checked in {dry_s:.2f} s ({dry_cpu:.2f} s CPU)")
        import_s, import_cpu, report = run(False)
        peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        say(f"  import: {report.created} cases in {import_s:.2f} s ({import_cpu:.2f} s CPU)")
        with db.engine.connect() as conn:
            entries = conn.execute(select(func.count()).select_from(entry_t)).scalar_one()
            cases = conn.execute(select(func.count()).select_from(case_t)).scalar_one()
            broken = list(verify_case_chains(conn))
            differences = list(counter_differences(conn, campaign_id))
        baseline_s, baseline_cpu = raw_baseline(db, args.rows)
        say(f"  bare driver: {args.rows} rows × 5 tables in {baseline_s:.2f} s")
    say(
        f"  checks: entries {entries}, cases {cases}, broken {len(broken)}, differences {len(differences)}, errors {len(dry.errors)}/{len(report.errors)}"
    )
    ok = (
        dry.errors == []
        and report.errors == []
        and entries == cases == report.created == args.rows
        and not broken
        and not differences
    )
    rows_per_s = args.rows / import_s
    baseline_rows_per_s = args.rows / baseline_s
    return {
        "bench": "import",
        "db": kind,
        "rows": args.rows,
        "file_bytes": len(content),
        "seconds": round(import_s, 3),
        "cpu_seconds": round(import_cpu, 3),
        "dry_run_seconds": round(dry_s, 3),
        "dry_run_cpu_seconds": round(dry_cpu, 3),
        "rows_per_s": round(rows_per_s, 1),
        "dry_run_rows_per_s": round(args.rows / dry_s, 1),
        "baseline_seconds": round(baseline_s, 3),
        "baseline_cpu_seconds": round(baseline_cpu, 3),
        "baseline_rows_per_s": round(baseline_rows_per_s, 1),
        "ratio": round(rows_per_s / baseline_rows_per_s, 4),
        "peak_rss_mb": round(peak_rss_mb, 1),
        "load_average": round(os.getloadavg()[0], 2),
        "ok": ok,
    }


_TABLES = (
    "CREATE TABLE raw_worker (id {pk}, name TEXT, id_number TEXT, archive_status TEXT, "
    "archived_on DATE)",
    "CREATE TABLE raw_student (id {pk}, name TEXT, id_number TEXT, education_level TEXT, "
    "school TEXT, enrollment_year INTEGER, exam_score INTEGER)",
    "CREATE TABLE raw_case (id {pk}, worker_id INTEGER, student_id INTEGER, "
    "student_id_number TEXT, state TEXT, version INTEGER)",
    "CREATE TABLE raw_audit (id {pk}, case_id INTEGER, seq INTEGER, event TEXT, hash TEXT)",
    "CREATE TABLE raw_entry (id {pk}, case_id INTEGER, student_id_number TEXT, "
    "student_name TEXT, row_hash TEXT)",
)


def raw_baseline(db: BenchDatabase, rows: int) -> tuple[float, float]:
    """The same rows into five plain tables, one transaction: seconds, CPU seconds."""
    raw = RawScratch(db)
    for table in _TABLES:
        raw.run(table)
    families = [family(n) for n in range(rows)]
    started, cpu = time.perf_counter(), time.process_time()
    raw.run("BEGIN")
    raw.run("INSERT INTO raw_worker (id, name, id_number, archive_status, archived_on) "
            "VALUES (?, ?, ?, 'deep', '2024-03-01')",
            [(n + 1, f[0], f[1]) for n, f in enumerate(families)])  # fmt: skip
    raw.run("INSERT INTO raw_student (id, name, id_number, education_level, school, "
            "enrollment_year, exam_score) VALUES (?, ?, ?, 'undergraduate', ?, 2024, 612)",
            [(n + 1, f[4], f[6], f[10]) for n, f in enumerate(families)])  # fmt: skip
    raw.run("INSERT INTO raw_case (id, worker_id, student_id, student_id_number, state, version) "
            "VALUES (?, ?, ?, ?, ?, 1)",
            [(n + 1, n + 1, n + 1, f[6], CaseState.SURVEY.value)
             for n, f in enumerate(families)])  # fmt: skip
    raw.run("INSERT INTO raw_audit (case_id, seq, event, hash) VALUES (?, 1, 'create', ?)",
            [(n + 1, f"{n:064x}") for n in range(rows)])  # fmt: skip
    raw.run("INSERT INTO raw_entry (case_id, student_id_number, student_name, row_hash) "
            "VALUES (?, ?, ?, ?)",
            [(n + 1, f[6], f[4], f"{n:064x}") for n, f in enumerate(families)])  # fmt: skip
    raw.run("COMMIT")
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
    raw.close()
    return seconds, cpu_seconds
