"""The benchmarks that start servers — `jinqiu serve` processes, an SMTP sink, a PostgreSQL
primary and its replica — run on a tiny world and say their checks passed (the other half of
tests/test_benchmarks_run.py, in a file of its own so the suite's two workers share them)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_benchmarks_run import run_tiny

TINY = {
    "delivery": ["--messages", "60", "--batch", "25", "--old", "10"],
    "http": ["--cases", "20", "--health", "40"],
    "scaleout": ["--cases", "10", "--servers", "2", "--ticks", "1"],
    "replica": ["--cases", "10", "--readers", "1"],
}


@pytest.mark.parametrize("name", sorted(TINY))
def test_the_server_benchmark_runs_and_its_checks_pass(name: str, tmp_path: Path) -> None:
    run_tiny(name, TINY[name], tmp_path)
