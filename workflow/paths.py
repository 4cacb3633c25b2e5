"""A unit's materialised path ('/WH/WH-HC/WH-HC-001/': its ancestors' codes and its own) read
as codes, and as each unit on it with its parent — what the pre-aggregated counts per ancestor
(`workflow.tally`, `cases.counters`) are keyed and named by."""

from __future__ import annotations

from collections.abc import Iterable

Parents = dict[str, str | None]  # unit code → its parent's code (None: a root)


def path_codes(unit_path: str) -> list[str]:
    """'/WH/WH-HC/WH-HC-001/' → ['WH', 'WH-HC', 'WH-HC-001']: the unit and its ancestors."""
    return [code for code in unit_path.split("/") if code]


def parents_on(unit_path: str) -> Parents:
    """Each unit on the path with its parent: '/WH/WH-HC/' → {'WH': None, 'WH-HC': 'WH'}."""
    codes = path_codes(unit_path)
    return dict(zip(codes, [None, *codes[:-1]], strict=True))


def parents_along(paths: Iterable[str]) -> Parents:
    """Every unit on the paths with its parent."""
    out: Parents = {}
    for path in paths:
        out.update(parents_on(path))
    return out
