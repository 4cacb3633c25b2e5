"""A reminder's message parts (subject, text, HTML for e-mail, markdown for robot webhooks).

`render_reminder` renders every part of one reminder with Jinja. `Composer` gives the same
bytes for a sweep's thousands of reminders of one deadline far cheaper: the parts of each shape
of reminder (kind, occurrence, the states pending, the report) are rendered once as stencils
(notifications/render.py), and each reminder fills in its own unit's values — name, recipient,
link, counts, subject. The first reminder of each shape is also rendered in full and compared:
a shape whose stencils do not give the full render's bytes is rendered in full from then on."""

from __future__ import annotations

import logging
from typing import Any

from jinja2 import Template

from jinqiu.notifications.render import Stencil, StencilError, slot
from jinqiu.states import MACHINE
from jinqiu.workflow.deadlines.pending import PendingUnit
from jinqiu.workflow.deadlines.schedule import Occurrence

log = logging.getLogger("jinqiu.sweep")

# What a pending unit still has, by open state in lifecycle order (labels from states/).
STATE_LABELS = {s.value: MACHINE.state_labels[s] for s in MACHINE.open_states}
_STATE_RANK = {state: rank for rank, state in enumerate(STATE_LABELS)}
REPORT_LABELS = {
    "statistics": "活动总结和统计表",
    "interim": "阶段性情况报告",
    "demand_summary": "资金需求情况汇总表",
}
SUBJECT, TEXT, HTML, MARKDOWN = (
    "reminder_subject.txt",
    "reminder.txt",
    "reminder.html",
    "reminder.md",
)
TEMPLATES = (SUBJECT, TEXT, HTML, MARKDOWN)


def _pending(counts: dict[str, int]) -> list[tuple[str, int]]:
    """(state, count) in lifecycle order, states the machine does not list last."""
    return sorted(counts.items(), key=lambda kv: _STATE_RANK.get(kv[0], 99))


def _link(base_url: str, deadline: Any, unit: PendingUnit) -> str:
    return f"{base_url.rstrip('/')}/queue?campaign={deadline.campaign_id}&unit={unit.code}"


def _data(deadline: Any, unit: PendingUnit, occ: Occurrence, pending: Any) -> dict[str, Any]:
    return {
        "deadline": deadline.key,
        "due": deadline.due.isoformat(),
        "unit": unit.code,
        "kind": occ.kind.value,
        "occurrence": occ.occurrence,
        "pending": {state: n for state, n in pending},
        "report": unit.report_kind,
    }


def render_reminder(
    deadline: Any,
    unit: PendingUnit,
    occ: Occurrence,
    notified: Any,
    base_url: str,
    templates: dict[str, Template],
    *,
    html: bool = True,
    markdown: bool = True,
) -> dict[str, Any]:
    """Every part of one reminder rendered in full (the reference the stencils are held to)."""
    link = _link(base_url, deadline, unit)
    pending = [
        {"label": STATE_LABELS.get(s, s), "state": s, "count": n} for s, n in _pending(unit.counts)
    ]
    context: dict[str, Any] = {
        "kind": occ.kind.value,
        "working_days": occ.occurrence,
        "campaign_name": deadline.campaign_name,
        "deadline_title": deadline.title,
        "due": deadline.due.isoformat(),
        "unit_name": unit.name,
        "unit_code": unit.code,
        "late_unit_name": unit.name,
        "recipient_name": notified.contact_name or notified.name,
        "pending": pending,
        "pending_total": sum(unit.counts.values()),
        "report_label": REPORT_LABELS.get(unit.report_kind or "", unit.report_kind or ""),
        "link": link,
    }
    subject = templates[SUBJECT].render(**context).strip()
    context["subject"] = subject
    return {
        "subject": subject,
        "text": templates[TEXT].render(**context),
        "html": templates[HTML].render(**context) if html else None,
        "markdown": templates[MARKDOWN].render(**context) if markdown else None,
        "link": link,
        "data": _data(deadline, unit, occ, [(p["state"], p["count"]) for p in pending]),
    }


# A shape of reminder: kind, occurrence, the pending states in order, the report, and its empty
# values (each written into the stencils as it is: "", 0 or None; True for every other value).
_Shape = tuple[str, int, tuple[str, ...], str | None, tuple[Any, ...]]
_PER_UNIT = ("unit_name", "unit_code", "late_unit_name", "recipient_name", "pending_total", "link")


class Composer:
    """The reminders of one deadline, composed as `render_reminder` would (see the module)."""

    def __init__(self, deadline: Any, base_url: str, templates: dict[str, Template]) -> None:
        self.deadline = deadline
        self.base_url = base_url
        self.templates = templates
        # Per shape: a stencil per part, or None when a part cannot be one (rendered in full).
        self._stencils: dict[_Shape, dict[str, Stencil] | None] = {}
        self._checked: set[_Shape] = set()
        self.stencilled = 0  # reminders composed from stencils
        self.full = 0  # reminders rendered in full

    def compose(
        self,
        unit: PendingUnit,
        occ: Occurrence,
        notified: Any,
        *,
        html: bool = True,
        markdown: bool = True,
    ) -> dict[str, Any]:
        pending = _pending(unit.counts)
        values: dict[str, Any] = {
            "unit_name": unit.name,
            "unit_code": unit.code,
            "late_unit_name": unit.name,
            "recipient_name": notified.contact_name or notified.name,
            "pending_total": sum(unit.counts.values()),
            "link": _link(self.base_url, self.deadline, unit),
        }
        for i, (_state, n) in enumerate(pending):
            values[f"count.{i}"] = n
        shape: _Shape = (
            occ.kind.value,
            occ.occurrence,
            tuple(state for state, _n in pending),
            unit.report_kind,
            tuple(True if v else v for v in values.values()),
        )
        stencils = self._stencils.get(shape, ...)
        if stencils is ...:
            stencils = self._stencils[shape] = self._build(shape, values)
        if stencils is None:
            return self._full(unit, occ, notified, html, markdown)
        values["subject"] = subject = stencils[SUBJECT].fill(values).strip()
        message = {
            "subject": subject,
            "text": stencils[TEXT].fill(values),
            "html": stencils[HTML].fill(values) if html else None,
            "markdown": stencils[MARKDOWN].fill(values) if markdown else None,
            "link": values["link"],
            "data": _data(self.deadline, unit, occ, pending),
        }
        if shape not in self._checked:  # the first of its shape is held to the full render
            self._checked.add(shape)
            full = self._full(unit, occ, notified, html=True, markdown=True)
            self.full -= 1
            if message != {
                **full,
                "html": full["html"] if html else None,
                "markdown": full["markdown"] if markdown else None,
            }:
                log.warning("reminder stencils differ from the full render, not used: %s", shape)
                self._stencils[shape] = None
                return self._full(unit, occ, notified, html, markdown)
        self.stencilled += 1
        return message

    def _full(
        self, unit: PendingUnit, occ: Occurrence, notified: Any, html: bool, markdown: bool
    ) -> dict[str, Any]:
        self.full += 1
        return render_reminder(
            self.deadline, unit, occ, notified, self.base_url, self.templates,
            html=html, markdown=markdown,
        )  # fmt: skip

    def _build(self, shape: _Shape, values: dict[str, Any]) -> dict[str, Stencil] | None:
        """The shape's four stencils: the deadline's and the shape's values written in, each
        reminder's own as slots (an empty one written in as it is)."""
        kind, occurrence, states, report_kind, _empty = shape
        names = [k for k, v in values.items() if v] + ["subject"]

        def value(key: str) -> Any:
            return slot(key) if values[key] else values[key]

        context: dict[str, Any] = {
            "kind": kind,
            "working_days": occurrence,
            "campaign_name": self.deadline.campaign_name,
            "deadline_title": self.deadline.title,
            "due": self.deadline.due.isoformat(),
            "report_label": REPORT_LABELS.get(report_kind or "", report_kind or ""),
            **{k: value(k) for k in _PER_UNIT},
            "pending": [
                {"label": STATE_LABELS.get(s, s), "state": s, "count": value(f"count.{i}")}
                for i, s in enumerate(states)
            ],
            "subject": slot("subject"),
        }
        try:
            return {name: Stencil.of(self.templates[name], context, names) for name in TEMPLATES}
        except StencilError as exc:
            log.warning("reminders of this shape rendered in full: %s", exc)
            return None
