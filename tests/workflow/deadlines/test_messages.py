"""The sweep's reminder messages through stencils (each deadline's frame rendered once, the
per-unit values filled in) are byte for byte the messages a full render of every part gives —
for every kind, occurrence, pending shape, report, channel and awkward name."""

from __future__ import annotations

import datetime as dt
import itertools
from types import SimpleNamespace
from typing import Any

from jinqiu.notifications.render import environment
from jinqiu.workflow.deadlines.messages import TEMPLATES, Composer, render_reminder
from jinqiu.workflow.deadlines.pending import PendingUnit
from jinqiu.workflow.deadlines.schedule import Occurrence, ReminderKind

BASE_URL = "https://jinqiu.example.org/"
DEADLINE = SimpleNamespace(
    id=7,
    key="survey_materials",
    campaign_id=3,
    campaign_name="威海市 2024 年<金秋助学> & 活动",
    title='报送《摸底表》& "材料"',
    due=dt.date(2024, 7, 31),
)
NAMES = (
    "荣成市第1基层工会",
    "<script>&'\"",
    "",
    "  前后空格  ",
    "{{ x }}",
    "\ue000unit_name\ue001",
)
COUNTS: tuple[dict[str, int], ...] = (
    {"survey": 3},
    {"survey": 1, "archive_check": 12},
    {"publicity": 2, "survey": 5, "unknown_state": 1},
    {"archive_check": 1},
)
OCCURRENCES = (
    Occurrence(ReminderKind.BEFORE, 3),
    Occurrence(ReminderKind.BEFORE, 0),
    Occurrence(ReminderKind.OVERDUE, 1),
    Occurrence(ReminderKind.OVERDUE, 3),
    Occurrence(ReminderKind.ESCALATION, 3),
)


def units() -> list[PendingUnit]:
    out = []
    for i, (name, counts) in enumerate(itertools.product(NAMES, COUNTS)):
        out.append(
            PendingUnit(
                unit_id=100 + i,
                code=f"WH-{i:03d}&x",
                name=name,
                parent_id=1,
                contact_name=(None, "", "经办人<甲>")[i % 3],
                contact_email=None if i % 4 == 0 else f"u{i}@example.org",
                webhook_url=f"https://hook.example.org/{i}" if i % 2 else None,
                counts=dict(counts),
            )
        )
    for i, (name, kind) in enumerate(itertools.product(NAMES, ("statistics", "odd_kind"))):
        out.append(
            PendingUnit(
                unit_id=900 + i,
                code=f"WH-R{i}",
                name=name,
                parent_id=None,
                contact_name=None,
                contact_email="r@example.org",
                webhook_url=None,
                report_kind=kind,
            )
        )
    return out


PARENT = SimpleNamespace(
    id=1, code="WH", name="威海市<总工会>", contact_name=None, contact_email="wh@x", webhook_url="h"
)


def messages(composer: Composer | None) -> list[dict[str, Any]]:
    templates = {name: environment().get_template(name) for name in TEMPLATES}
    out = []
    for unit in units():
        for occ in OCCURRENCES:
            notified = PARENT if occ.kind is ReminderKind.ESCALATION else unit
            for html, markdown in ((True, True), (True, False), (False, True), (False, False)):
                if composer is None:
                    out.append(
                        render_reminder(
                            DEADLINE,
                            unit,
                            occ,
                            notified,
                            BASE_URL,
                            templates,
                            html=html,
                            markdown=markdown,
                        )
                    )
                else:
                    out.append(composer.compose(unit, occ, notified, html=html, markdown=markdown))
    return out


def test_stencilled_messages_equal_the_full_render_byte_for_byte() -> None:
    templates = {name: environment().get_template(name) for name in TEMPLATES}
    composer = Composer(DEADLINE, BASE_URL, templates)
    expected = messages(None)
    assert len(expected) == 5 * 4 * len(units())
    assert messages(composer) == expected
    assert composer.stencilled > composer.full  # the stencils did the work, not the fallback


def test_an_empty_value_and_a_missing_one_are_not_the_same_shape() -> None:
    # A name "" and a name None are both empty, but print differently: neither stencil may
    # serve the other.
    templates = {name: environment().get_template(name) for name in TEMPLATES}
    composer = Composer(DEADLINE, BASE_URL, templates)
    occ = OCCURRENCES[0]
    for name in ("", None, "", None):
        unit = PendingUnit(1, "WH-1", name, None, None, "u@x", None, {"survey": 1})  # type: ignore[arg-type]
        expected = render_reminder(DEADLINE, unit, occ, unit, BASE_URL, templates)
        assert composer.compose(unit, occ, unit) == expected


def test_a_template_no_stencil_can_stand_for_still_gives_the_full_render() -> None:
    # One part the stencil cannot reproduce (a value cut, a value tested): those messages are
    # rendered in full, every other part still from its stencil.
    env = environment()
    templates = {name: env.get_template(name) for name in TEMPLATES}
    templates["reminder.txt"] = env.from_string(
        "{{ recipient_name[:2] }}{% if unit_name|length > 6 %}长{% endif %}：{{ unit_name }}\n"
    )
    composer = Composer(DEADLINE, BASE_URL, templates)
    expected = [
        render_reminder(DEADLINE, u, OCCURRENCES[0], u, BASE_URL, templates) for u in units()
    ]
    assert [composer.compose(u, OCCURRENCES[0], u) for u in units()] == expected
    # Every reminder whose name is not empty (a value the template would cut or measure).
    assert composer.full >= sum(1 for u in units() if u.name)
