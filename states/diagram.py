"""The lifecycle drawn as SVG, from the same table the engine runs (no hand-drawn copy).

The main path runs left to right; `rejected` and `withdrawn` sit below it; returns to survey
arc above it; events that keep the state (objections, further approval levels, failed
payments) are loops over their state."""

from __future__ import annotations

from html import escape

from jinqiu.states.case_lifecycle import STATE_NAMES, TRANSITIONS, CaseState

MAIN = [CaseState.SURVEY, CaseState.ARCHIVE_CHECK, CaseState.PUBLICITY, CaseState.APPROVAL,
        CaseState.DISBURSEMENT, CaseState.FOLLOW_UP, CaseState.CLOSED]
BELOW = [CaseState.REJECTED, CaseState.WITHDRAWN]
LABELS = STATE_NAMES
BOX_W, BOX_H, GAP, TOP = 120, 46, 80, 170


def _positions() -> dict[CaseState, tuple[int, int]]:
    pos = {s: (20 + i * (BOX_W + GAP), TOP) for i, s in enumerate(MAIN)}
    pos[CaseState.REJECTED] = (20 + 2 * (BOX_W + GAP), TOP + 190)
    pos[CaseState.WITHDRAWN] = (20 + 0 * (BOX_W + GAP), TOP + 190)
    return pos


def to_svg() -> str:
    pos = _positions()
    width = 20 + len(MAIN) * (BOX_W + GAP)
    parts: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} 440" '
        'role="img" aria-label="案件状态机" font-family="sans-serif" font-size="12">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        'fill="#555"/></marker></defs>',
    ]
    loops: dict[CaseState, list[str]] = {}
    returns_drawn = 0
    for t in TRANSITIONS:
        for source in t.sources:
            if source == t.dest:
                loops.setdefault(source, []).append(t.event.value)
                continue
            x1, y1 = pos[source]
            x2, y2 = pos[t.dest]
            label = escape(t.event.value)
            if t.dest in BELOW:
                sx, sy = x1 + BOX_W / 2, y1 + BOX_H
                tx, ty = x2 + BOX_W / 2, y2
                parts.append(_line(sx, sy, tx, ty, dashed=True))
                continue
            if x2 < x1:  # a return to survey: an arc above the main path
                returns_drawn += 1
                lift = 40 + 22 * returns_drawn
                sx, tx = x1 + BOX_W / 2, x2 + BOX_W / 2 + 10 * returns_drawn
                parts.append(
                    f'<path d="M{sx},{y1} C{sx},{y1 - lift} {tx},{y2 - lift} {tx},{y2}" '
                    'fill="none" stroke="#b36b00" stroke-width="1.2" marker-end="url(#arrow)"/>'
                )
                parts.append(f'<text x="{(sx + tx) / 2}" y="{y1 - lift * 0.75}" fill="#b36b00" '
                             f'text-anchor="middle">{label}</text>')
                continue
            fx, fy = x1 + BOX_W, y1 + BOX_H / 2
            gx, gy = x2, y2 + BOX_H / 2
            parts.append(_line(fx, fy, gx, gy))
            parts.append(f'<text x="{(fx + gx) / 2}" y="{fy - 6}" text-anchor="middle">{label}</text>')
    parts.append(f'<text x="{pos[CaseState.REJECTED][0] + BOX_W + 10}" y="{TOP + 150}" '
                 'fill="#777">reject（核查、公示、审批中）</text>')
    parts.append(f'<text x="{pos[CaseState.WITHDRAWN][0] + BOX_W + 10}" y="{TOP + 150}" '
                 'fill="#777">withdraw（发放前）</text>')
    for state, (x, y) in pos.items():
        terminal = state in {CaseState.CLOSED, *BELOW}
        parts.append(
            f'<g class="state" data-state="{state.value}"><rect x="{x}" y="{y}" width="{BOX_W}" '
            f'height="{BOX_H}" rx="8" fill="{"#eef3f8" if not terminal else "#f3f3f3"}" '
            f'stroke="{"#2f6690" if not terminal else "#888"}" stroke-width="1.5"/>'
            f'<text x="{x + BOX_W / 2}" y="{y + 19}" text-anchor="middle" font-weight="bold">'
            f'{LABELS[state]}</text><text x="{x + BOX_W / 2}" y="{y + 36}" text-anchor="middle" '
            f'fill="#555">{state.value}</text></g>'
        )
        if state in loops:
            names = escape(" / ".join(dict.fromkeys(loops[state])))
            parts.append(
                f'<path d="M{x + 30},{y + BOX_H} C{x + 20},{y + BOX_H + 45} {x + BOX_W - 20},'
                f'{y + BOX_H + 45} {x + BOX_W - 30},{y + BOX_H}" fill="none" stroke="#555" '
                'marker-end="url(#arrow)"/>'
                f'<text x="{x + BOX_W / 2}" y="{y + BOX_H + 52}" text-anchor="middle" '
                f'font-size="10">{names}</text>'
            )
    parts.append("</svg>")
    return "\n".join(parts)


def _line(x1: float, y1: float, x2: float, y2: float, *, dashed: bool = False) -> str:
    dash = ' stroke-dasharray="4 3"' if dashed else ""
    return (f'<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="#555" stroke-width="1.2"'
            f'{dash} marker-end="url(#arrow)"/>')
