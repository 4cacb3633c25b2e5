"""The lifecycles, declared as data (states/machine.py); imports nothing of the service."""

from jinqiu.states.case_lifecycle import (
    ENDED_WITHOUT_AID,
    MACHINE,
    OPEN_STATES,
    STATE_NAMES,
    TERMINAL_STATES,
    TRANSITIONS,
    ApprovalProgress,
    CaseEvent,
    CaseState,
    CaseTransition,
    Permission,
    events_from,
    select_transition,
    to_mermaid,
)
from jinqiu.states.machine import Kind, Machine, MachineError, State, Transition

__all__ = [
    "ENDED_WITHOUT_AID",
    "MACHINE",
    "OPEN_STATES",
    "STATE_NAMES",
    "TERMINAL_STATES",
    "TRANSITIONS",
    "ApprovalProgress",
    "CaseEvent",
    "CaseState",
    "CaseTransition",
    "Kind",
    "Machine",
    "MachineError",
    "Permission",
    "State",
    "Transition",
    "events_from",
    "select_transition",
    "to_mermaid",
]
