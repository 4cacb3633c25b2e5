"""`@readonly()`: a frozen dataclass to the type checker, a plain one at run time.

`mypy --strict` (in CI) refuses any assignment to a field of such a class — no guard or effect
can change the facts it is given, no caller a transition's result — while construction costs
what a plain dataclass's does. A frozen dataclass's `__init__` sets every field through
`object.__setattr__`: ~0.4 µs a field, ~4 µs for a case's facts, and a bulk event builds about
ten such objects per case (facts, loaded row, decision, outcome, audit link, result): a fifth of
a bulk item's whole cost (`python -m bench bulk`). Instances are not hashable (no value object
here is used as a key)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar, dataclass_transform

T = TypeVar("T")


@dataclass_transform(frozen_default=True, field_specifiers=(field,))
def readonly(*, slots: bool = True) -> Callable[[type[T]], type[T]]:
    def make(cls: type[T]) -> type[T]:
        return dataclass(slots=slots)(cls)

    return make
