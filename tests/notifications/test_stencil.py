"""A stencil: a template rendered once with markers in place of some values, filled per message.
Filled, it must give the very bytes a full render gives — escaped where the template escapes."""

from __future__ import annotations

from typing import Any

import pytest

from jinqiu.notifications.render import Stencil, StencilError, environment, slot

TRICKY = ("威海市<总工会> & \"工会\" '甲'", "", "  空格  ", "{{ not jinja }}", "\ue000x\ue001")


def context(**values: Any) -> dict[str, Any]:
    return {
        "kind": "before",
        "working_days": 1,
        "campaign_name": "威海 2024 <金秋>",
        "deadline_title": "报送 & 摸底",
        "due": "2024-07-31",
        "unit_name": "甲",
        "unit_code": "WH-1",
        "late_unit_name": "甲",
        "recipient_name": "经办人",
        "pending": [{"label": "摸底申报", "state": "survey", "count": 3}],
        "pending_total": 3,
        "report_label": "",
        "link": "https://x.example.org/queue?campaign=1&unit=WH-1",
        "subject": "主题 <b>",
        **values,
    }


SLOTS = ("unit_name", "late_unit_name", "recipient_name", "link", "subject", "count")


def marked() -> dict[str, Any]:
    return context(
        unit_name=slot("unit_name"),
        late_unit_name=slot("late_unit_name"),
        recipient_name=slot("recipient_name"),
        link=slot("link"),
        subject=slot("subject"),
        pending=[{"label": "摸底申报", "state": "survey", "count": slot("count")}],
    )


@pytest.mark.parametrize("name", ["reminder.txt", "reminder.html", "reminder.md"])
@pytest.mark.parametrize("value", TRICKY)
def test_a_filled_stencil_is_the_full_render_byte_for_byte(name: str, value: str) -> None:
    template = environment().get_template(name)
    stencil = Stencil.of(template, marked(), SLOTS)
    values = {
        "unit_name": value,
        "late_unit_name": value,
        "recipient_name": value or "经办人",
        "link": f"https://x.example.org/queue?campaign=1&unit={value}",
        "subject": f"【今日截止】{value}",
        "count": 17,
    }
    plain = {k: v for k, v in values.items() if k != "count"}
    pending = [{"label": "摸底申报", "state": "survey", "count": 17}]
    full = template.render(**context(**plain, pending=pending))
    assert stencil.fill(values) == full


def test_html_values_are_escaped_and_text_values_are_not() -> None:
    html = Stencil.of(environment().get_template("reminder.html"), marked(), SLOTS)
    text = Stencil.of(environment().get_template("reminder.txt"), marked(), SLOTS)
    values = dict.fromkeys(SLOTS, "<a&b>")
    assert "&lt;a&amp;b&gt;" in html.fill(values) and "<a&b>" not in html.fill(values)
    assert "<a&b>" in text.fill(values)


@pytest.mark.parametrize(
    "source",
    [
        "{{ unit_name|upper }}（{{ link }}）",  # changed
        "{{ unit_name[:3] }}",  # cut
        "{% if unit_name|length > 8 %}长{% endif %}{{ unit_name }}",  # measured
        "{{ unit_name|replace('&', '和') }}",  # changed where a value has `&`
        "{% for c in unit_name %}{{ c }}·{% endfor %}",  # looped over
        "{{ count + 1 }}",  # used as a number
    ],
)
def test_a_template_doing_more_than_printing_a_value_is_refused(source: str) -> None:
    template = environment().from_string(source)
    with pytest.raises(StencilError):
        Stencil.of(template, marked(), SLOTS)


def test_escaping_is_decided_place_by_place() -> None:
    # An HTML template may print one value raw (|safe) and another escaped: each place is
    # filled as the template treats it.
    env = environment()
    template = env.from_string("{{ unit_name|safe }}|{{ link|e }}")
    stencil = Stencil.of(template, marked(), SLOTS)
    values = {"unit_name": "<b>", "link": "a&b"}
    assert stencil.fill(values) == template.render(**values) == "<b>|a&amp;b"
