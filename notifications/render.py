"""Jinja2 message templates (notifications/templates/), Chinese, one file per message part."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, Template, select_autoescape
from markupsafe import escape


@lru_cache(maxsize=1)
def environment() -> Environment:
    return Environment(
        loader=PackageLoader("jinqiu.notifications", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=StrictUndefined,  # a missing variable is a bug, not an empty string
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render(name: str, **context: Any) -> str:
    return environment().get_template(name).render(**context)


# -- stencils: a template rendered once, filled per message ----------------------------------

# Markers are private-use code points: no template holds them, and escaping leaves them alone.
_OPEN, _CLOSE, _FIRST_ID = "\ue000", "\ue001", 0xE100
_CANONICAL = re.compile("\ue000([A-Za-z0-9_.]+)\ue001")
# The long marker's padding: `&` to see whether the template escapes that place, a letter to see
# it re-cased.
_PAD, _PAD_RAW, _PAD_ESCAPED = 32, "a&", "a&amp;"
_SHORT = re.compile("\ue000(.)\ue001", re.S)
_LONG = re.compile("\ue000(.)((?:a&amp;)+|(?:a&)+)\ue001", re.S)


class StencilError(ValueError):
    """The template does more with a value than print it (cuts, measures, changes or tests
    it): no stencil can stand for that template with that context."""


def slot(name: str) -> str:
    """The marker that stands, in a stencil's context, for the value named `name`."""
    if not _CANONICAL.fullmatch(f"{_OPEN}{name}{_CLOSE}"):
        raise ValueError(f"not a slot name: {name!r}")
    return f"{_OPEN}{name}{_CLOSE}"


def _substituted(value: Any, forms: dict[str, str]) -> Any:
    """`value` (the context, or any part of it) with each slot marker in its given form."""
    if isinstance(value, str):
        if _OPEN not in value:
            return value
        return _CANONICAL.sub(lambda m: forms[m.group(1)], value)
    if isinstance(value, Mapping):
        return {k: _substituted(v, forms) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_substituted(v, forms) for v in value)
    return value


@dataclass(frozen=True, slots=True)
class Stencil:
    """A template rendered once with markers where some values go; `fill` gives the message
    for one set of values: the very string `template.render` gives for the context with those
    values in, each value escaped exactly where the template escapes it.

    Built by rendering the template twice — each marker short (3 characters), then long and
    padded with `a&` — and refused (StencilError) unless both renders put the same text around
    the same places, every marker whole: a template that cuts, measures, re-cases, tests or
    loops over one of the values gives different text for the two lengths, or a broken marker.
    A template comparing a value with a constant (`{% if name == "甲" %}`) is the one case this
    cannot see: callers that may meet one check a sample against a full render."""

    literals: tuple[str, ...]  # the text between the places, one more than places
    places: tuple[tuple[str, bool], ...]  # (value name, escaped) in order

    @classmethod
    def of(cls, template: Template, context: Mapping[str, Any], names: Sequence[str]) -> Stencil:
        if len(names) > 0xF8FF - _FIRST_ID:  # the private-use block's end
            raise ValueError("too many slots")
        ids = {name: chr(_FIRST_ID + i) for i, name in enumerate(names)}
        by_id = {v: k for k, v in ids.items()}
        short = {n: f"{_OPEN}{i}{_CLOSE}" for n, i in ids.items()}
        long = {n: f"{_OPEN}{i}{_PAD_RAW * _PAD}{_CLOSE}" for n, i in ids.items()}
        try:
            first = template.render(**_substituted(dict(context), short))
            second = template.render(**_substituted(dict(context), long))
        except Exception as exc:  # a value used as what a marker is not (a number, a list)
            raise StencilError(f"{template.name}: {exc}") from exc
        a, b = _SHORT.split(first), _LONG.split(second)
        literals, literals_long = a[0::2], b[0::3]
        places = a[1::2]
        if (
            literals != literals_long
            or places != b[1::3]
            or any(ch in text for text in literals for ch in (_OPEN, _CLOSE))
            or any(p not in by_id for p in places)
        ):
            raise StencilError(f"{template.name}: a value is not only printed")
        escaped = []
        for pad in b[2::3]:
            if pad not in (_PAD_ESCAPED * _PAD, _PAD_RAW * _PAD):
                raise StencilError(f"{template.name}: a value is cut or changed")
            escaped.append(pad == _PAD_ESCAPED * _PAD)
        return cls(
            tuple(literals),
            tuple((by_id[p], e) for p, e in zip(places, escaped, strict=True)),
        )

    def fill(self, values: Mapping[str, Any]) -> str:
        out = [self.literals[0]]
        append = out.append
        for (name, escaped), literal in zip(self.places, self.literals[1:], strict=True):
            value = values[name]
            append(_escaped(value) if escaped else str(value))
            append(literal)
        return "".join(out)


_SPECIAL = re.compile("[&<>'\"]")


def _escaped(value: Any) -> str:
    """What autoescaping prints for `value` (markupsafe's escape), without building a Markup
    for the many values that have nothing to escape."""
    if type(value) is str:
        return str(escape(value)) if _SPECIAL.search(value) else value
    if type(value) is int:
        return str(value)
    return str(escape(value))
