"""The engine every machine runs on: a noun is a small adapter (`Noun`), the engine does the
rest in the caller's transaction — `fire` for one subject, `fire_many` for many at once."""

from jinqiu.workflow.engine.core import (
    Decision,
    EffectError,
    Fired,
    checked_event,
    combined,
    decide,
    fire,
)
from jinqiu.workflow.engine.noun import (
    ENGINE_COLUMNS,
    NOTHING,
    Effect,
    Guard,
    Loaded,
    Noun,
    Outcome,
    Plan,
)

__all__ = [
    "ENGINE_COLUMNS",
    "NOTHING",
    "Decision",
    "Effect",
    "EffectError",
    "Fired",
    "Guard",
    "Loaded",
    "Noun",
    "Outcome",
    "Plan",
    "checked_event",
    "combined",
    "decide",
    "fire",
]
