"""`python -m bench NAME [options]`: run one benchmark, print its result as JSON on the last line.

Each benchmark is a module `bench/NAME.py` with a `main(argv) -> dict` returning the result.
"""

from __future__ import annotations

import importlib
import sys

from bench.common import emit
from jinqiu.workflow.runtime import tune_collector

BENCHMARKS = {
    "lifecycle": "bench.lifecycle",  # a case's whole life through the engine vs the bare driver
    "sweep": "bench.sweep",  # one reminder sweep over a province vs the same rows on the bare driver
    "dashboard": "bench.dashboard",  # dashboards of a 1M-case campaign vs GROUP BY over its cases
    "http": "bench.http",  # events/s through `jinqiu serve --workers 2` vs its GET /api/health
    "machine": "bench.machine",  # transition selection by the transitions machine vs a dict
    "bulk": "bench.bulk",  # one apply_bulk over N cases vs N single transitions, same audit bytes
    "payments": "bench.payments",  # a 10,000-case batch exported and its result applied
    "employment": "bench.employment",  # statistics counted from the registers vs hand-written SQL
    "import": "bench.imports",  # a 10,000-row 摸底表 checked and imported vs the bare driver
    "inbox": "bench.inbox",  # the nav's per-user unread count vs the unit-wide count it replaced
    "delivery": "bench.delivery",  # outbox e-mails to a local SMTP server vs bare smtplib
    "scaleout": "bench.scaleout",  # events/s through 1…3 serve processes + 2 tick loops, one database
    "replica": "bench.replica",  # dashboards from a streaming replica while the primary takes writes
}


def main(argv: list[str]) -> int:
    if not argv or argv[0] in {"-h", "--help"} or argv[0] not in BENCHMARKS:
        names = ", ".join(sorted(BENCHMARKS))
        print(
            f"usage: python -m bench NAME [options]   (NAME: {names}; NAME --help for options)",
            file=sys.stderr,
        )
        return 0 if argv and argv[0] in {"-h", "--help"} else 2
    tune_collector()  # as every service process does
    module = importlib.import_module(BENCHMARKS[argv[0]])
    result = module.main(argv[1:])
    emit(result)
    return 1 if result.get("ok") is False else 0  # a bench whose own checks failed


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
