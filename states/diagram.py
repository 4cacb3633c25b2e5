"""A machine drawn as SVG (the help page), laid out from its declaration: no coordinates here.

Each state's column is its rank (its distance from the initial state); within a column the
open and terminal states come first, the ones that end without aid below them. Transitions to
the next column on the same row are straight arrows; returns to an earlier column (and skips
over one) arc above the row; transitions to another row are dashed lines, labelled once under
the state they lead to; events that keep the state (objections, further approval levels,
failed payments) are loops under their state."""

from __future__ import annotations

from collections import defaultdict
from html import escape
from typing import Any

from jinqiu.states.case_lifecycle import MACHINE
from jinqiu.states.machine import Kind, Machine

BOX_W, BOX_H, GAP, ROW_GAP = 120, 46, 80, 190
ARC_STEP = 22  # how much higher each further arc above the row is drawn
WRAP = 9  # characters per line of a label under a box


def to_svg(machine: Machine[Any, Any, Any] = MACHINE) -> str:
    pos = _positions(machine)
    edges = [(source, t) for t in machine.transitions for source in t.sources]
    arcs = [(s, t) for s, t in edges if _arcs(pos, s, t.dest)]
    top = 60 + ARC_STEP * len(arcs)
    rows = 1 + max(row for _col, row in pos.values())
    width = 20 + (1 + max(col for col, _row in pos.values())) * (BOX_W + GAP)
    height = top + (rows - 1) * ROW_GAP + BOX_H + 110

    def xy(state: Any) -> tuple[int, int]:
        col, row = pos[state]
        return 20 + col * (BOX_W + GAP), top + row * ROW_GAP

    parts: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{escape(machine.label)}" font-family="sans-serif" font-size="12">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        'fill="#555"/></marker></defs>',
    ]
    loops: dict[Any, list[str]] = defaultdict(list)
    into_other_rows: dict[Any, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    arc = 0
    for source, t in edges:
        (x1, y1), (x2, y2) = xy(source), xy(t.dest)
        label = escape(f"{t.event}")
        if source == t.dest:
            loops[source].append(str(t.event))
        elif pos[source][1] != pos[t.dest][1]:
            down = y2 > y1
            sy, ty = (y1 + BOX_H, y2) if down else (y1, y2 + BOX_H)
            parts.append(_line(x1 + BOX_W / 2, sy, x2 + BOX_W / 2, ty, dashed=True))
            into_other_rows[t.dest][f"{t.event} {t.label}"].append(machine.state_labels[source])
        elif _arcs(pos, source, t.dest):
            arc += 1
            lift = 40 + ARC_STEP * arc
            back = x2 < x1
            colour = "#b36b00" if back else "#555"
            sx, tx = x1 + BOX_W / 2, x2 + BOX_W / 2 + (10 * arc if back else -10 * arc)
            parts.append(
                f'<path d="M{sx},{y1} C{sx},{y1 - lift} {tx},{y2 - lift} {tx},{y2}" '
                f'fill="none" stroke="{colour}" stroke-width="1.2" marker-end="url(#arrow)"/>'
            )
            parts.append(
                f'<text x="{(sx + tx) / 2}" y="{y1 - lift * 0.75}" fill="{colour}" '
                f'text-anchor="middle">{label}</text>'
            )
        else:
            fx, fy, gx = x1 + BOX_W, y1 + BOX_H / 2, x2
            parts.append(_line(fx, fy, gx, fy))
            parts.append(
                f'<text x="{(fx + gx) / 2}" y="{fy - 6}" text-anchor="middle">{label}</text>'
            )
    for state in machine.states:
        x, y = xy(state.name)
        ended = state.kind is not Kind.OPEN
        parts.append(
            f'<g class="state" data-state="{escape(str(state.name))}"><rect x="{x}" y="{y}" '
            f'width="{BOX_W}" height="{BOX_H}" rx="8" fill="{"#f3f3f3" if ended else "#eef3f8"}" '
            f'stroke="{"#888" if ended else "#2f6690"}" stroke-width="1.5"/>'
            f'<text x="{x + BOX_W / 2}" y="{y + 19}" text-anchor="middle" font-weight="bold">'
            f'{escape(state.label)}</text><text x="{x + BOX_W / 2}" y="{y + 36}" '
            f'text-anchor="middle" fill="#555">{escape(str(state.name))}</text></g>'
        )
        if state.name in loops:
            names = escape(" / ".join(dict.fromkeys(loops[state.name])))
            parts.append(
                f'<path d="M{x + 30},{y + BOX_H} C{x + 20},{y + BOX_H + 45} {x + BOX_W - 20},'
                f'{y + BOX_H + 45} {x + BOX_W - 30},{y + BOX_H}" fill="none" stroke="#555" '
                'marker-end="url(#arrow)"/>'
                f'<text x="{x + BOX_W / 2}" y="{y + BOX_H + 52}" text-anchor="middle" '
                f'font-size="10">{names}</text>'
            )
        lines = [
            text
            for event, sources in into_other_rows.get(state.name, {}).items()
            for text in [event, *_wrap("自" + "、".join(sources))]
        ]
        for i, text in enumerate(lines):
            parts.append(
                f'<text x="{x + BOX_W / 2}" y="{y + BOX_H + 16 + 14 * i}" text-anchor="middle" '
                f'fill="#777" font-size="11">{escape(text)}</text>'
            )
    parts.append("</svg>")
    return "\n".join(parts)


def _positions(machine: Machine[Any, Any, Any]) -> dict[Any, tuple[int, int]]:
    """(column, row) of every state: the column is its rank; states that end without aid go
    below the others of their column."""
    columns: dict[int, list[Any]] = defaultdict(list)
    ordered = sorted(machine.states, key=lambda s: s.kind is Kind.ENDED_WITHOUT_AID)
    for state in ordered:
        columns[machine.ranks[state.name]].append(state.name)
    return {name: (col, row) for col, names in columns.items() for row, name in enumerate(names)}


def _arcs(pos: dict[Any, tuple[int, int]], source: Any, dest: Any) -> bool:
    """Same row, but not the next column: drawn as an arc above the row."""
    (c1, r1), (c2, r2) = pos[source], pos[dest]
    return source != dest and r1 == r2 and c2 != c1 + 1


def _wrap(text: str) -> list[str]:
    return [text[i : i + WRAP] for i in range(0, len(text), WRAP)]


def _line(x1: float, y1: float, x2: float, y2: float, *, dashed: bool = False) -> str:
    dash = ' stroke-dasharray="4 3"' if dashed else ""
    return (
        f'<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="#555" stroke-width="1.2"'
        f'{dash} marker-end="url(#arrow)"/>'
    )
