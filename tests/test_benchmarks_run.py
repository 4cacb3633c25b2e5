"""Every benchmark still runs, on a tiny world, and says its own checks passed: `bench
lifecycle` once crashed on main for weeks unnoticed (an aid rule's key renamed). Figures are
not asserted — speed is the benchmarks' business, not the tests'."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
TINY = {
    "lifecycle": ["--cases", "20"],
    "bulk": ["--cases", "50"],
    "sweep": ["--cases", "200", "--units", "20"],
    "dashboard": [
        *("--cases", "500", "--units", "20", "--calls", "3", "--baseline-calls", "3"),
        *("--cold", "2", "--concurrent-calls", "2", "--readers", "2"),
    ],
    "machine": ["--number", "10", "--repeat", "1"],
    "payments": ["--cases", "50"],
    "employment": ["--records", "50", "--calls", "2"],
    "import": ["--rows", "50"],
    "inbox": ["--items", "2000", "--units", "10", "--calls", "2"],
}
# The benches that start servers (serve, an SMTP sink, a PostgreSQL pair) are in
# test_benchmarks_run_servers.py: the suite runs a file's tests in one worker, so two files
# let its two workers run them side by side.


@pytest.mark.parametrize("name", sorted(TINY))
def test_the_benchmark_runs_and_its_checks_pass(name: str, tmp_path: Path) -> None:
    run_tiny(name, TINY[name], tmp_path)


# The benches that bulk-load their world on the bare driver (COPY on PostgreSQL, not SQLite's
# executemany): the loader met a table without an `id` column only on PostgreSQL.
BULK_LOADED = ("bulk", "dashboard", "sweep")


@pytest.mark.postgres
@pytest.mark.parametrize("name", BULK_LOADED)
def test_the_bulk_loaded_benchmark_runs_on_postgresql(
    name: str, tmp_path: Path, postgres_schema_url: tuple[str, str]
) -> None:
    url, _schema = postgres_schema_url  # the bench makes and drops a schema of its own
    run_tiny(name, [*TINY[name], "--db", url.replace("+psycopg", "")], tmp_path)


def run_tiny(name: str, options: list[str], tmp_path: Path) -> None:
    env = {**os.environ, "JINQIU_DATABASE_URL": f"sqlite:///{tmp_path / 'bench.db'}"}
    env.pop("CI", None)  # not a suite: no PostgreSQL asked for
    done = subprocess.run(
        [sys.executable, "-m", "bench", name, *options],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result.get("ok", True) is True, result
