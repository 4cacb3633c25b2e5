"""Selecting a transition through the `transitions` machine (states/machine.py) against the
compiled-dict lookup it replaced; building the machine; drawing it. Pure Python, no database.

The same-run baseline is a dict (state, event) → candidates compiled from the declaration, the
route decided in Python: what the engine read before the library did the selection."""

from __future__ import annotations

import argparse
import statistics
import timeit
from collections.abc import Callable
from typing import Any

from bench.common import say
from jinqiu.states import MACHINE, TRANSITIONS, ApprovalProgress, CaseEvent, CaseState, Machine

S, E = CaseState, CaseEvent


def compiled_table() -> Callable[[CaseState, CaseEvent, ApprovalProgress], Any]:
    table: dict[tuple[str, str], list[Any]] = {}
    for t in TRANSITIONS:
        for s in t.sources:
            table.setdefault((s, t.event), []).append(t)

    def select(state: CaseState, event: CaseEvent, progress: ApprovalProgress) -> Any:
        for t in table.get((state, event), ()):
            if t.route is None or t.route(progress):
                return t
        return None

    return select


def per_call_us(fn: Callable[[], object], number: int, repeat: int) -> float:
    """The median of `repeat` runs of `number` calls, in µs per call."""
    runs = timeit.repeat(fn, number=number, repeat=repeat)
    return round(statistics.median(runs) / number * 1e6, 3)


def rebuild() -> Machine[Any, Any, Any]:
    return Machine(
        name="case",
        label="案件状态机",
        states=MACHINE.states,
        events=CaseEvent,
        transitions=TRANSITIONS,
        initial=S.SURVEY,
    )


def main(argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench machine", description=__doc__)
    parser.add_argument("--number", type=int, default=200_000, help="calls per timed run")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs (the median is kept)")
    args = parser.parse_args(argv)
    n, r = args.number, args.repeat
    old = compiled_table()
    last, plain = ApprovalProgress(2, 3), ApprovalProgress(0, 3)
    figures = {
        "select_route_us": per_call_us(lambda: MACHINE.select(S.APPROVAL, E.APPROVE, last), n, r),
        "dict_select_route_us": per_call_us(lambda: old(S.APPROVAL, E.APPROVE, last), n, r),
        "select_plain_us": per_call_us(lambda: MACHINE.select(S.SURVEY, E.SUBMIT, plain), n, r),
        "dict_select_plain_us": per_call_us(lambda: old(S.SURVEY, E.SUBMIT, plain), n, r),
        "events_from_us": per_call_us(lambda: MACHINE.events_from(S.APPROVAL), n, r),
        "library_get_triggers_us": per_call_us(
            lambda: MACHINE.library.get_triggers(S.APPROVAL.value), n // 10, r
        ),
        "build_us": per_call_us(rebuild, 200, r),
        "mermaid_us": per_call_us(MACHINE.to_mermaid, 200, r),
    }
    assert MACHINE.select(S.APPROVAL, E.APPROVE, last) is old(S.APPROVAL, E.APPROVE, last)
    for name, value in figures.items():
        say(f"  {name:<26}{value:>10.3f}")
    return {"bench": "machine", **figures}
