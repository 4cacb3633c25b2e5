"""The case lifecycle, declared as data with `transitions`; imports nothing of the service."""

from jinqiu.states.case_lifecycle import (
    ENDED_WITHOUT_AID,
    MACHINE,
    OPEN_STATES,
    STATE_NAMES,
    TERMINAL_STATES,
    TRANSITIONS,
    CaseEvent,
    CaseState,
    Permission,
    Route,
    Transition,
    events_from,
    select_transition,
    to_mermaid,
)

__all__ = [
    "ENDED_WITHOUT_AID",
    "MACHINE",
    "OPEN_STATES",
    "STATE_NAMES",
    "TERMINAL_STATES",
    "TRANSITIONS",
    "CaseEvent",
    "CaseState",
    "Permission",
    "Route",
    "Transition",
    "events_from",
    "select_transition",
    "to_mermaid",
]
