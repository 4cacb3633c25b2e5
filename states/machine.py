"""A state machine declared as data, and the queries every consumer asks of it.

One `Machine` per noun, one file per machine in `states/` (the case: `case_lifecycle.py`).
A declaration is states (a Chinese label and a kind), the events in the order people see them,
and transitions: event, sources, destination, Chinese label, the permission that fires it, the
guards and effects it runs (names, implemented in `workflow/`), the data keys the event takes,
whether an opinion is required, the guards a manager may override, whether it is bound to the
approval level a case waits at, the route condition that picks it among transitions of the
same event, the notifications it enqueues, and whether it may be done in bulk. Pages, queues,
the engine, the sweep, the demo, statistics, the diagrams and the test factories read these
queries; nothing outside `states/` spells a state or an event.

What the `transitions` library does here, measured with `python -m bench machine` (Python 3.11,
transitions 0.9.3, this shared 2-core machine at load 4.6; medians of 5 × 200,000 calls, the
same-run baseline a dict (state, event) → candidates compiled from the same declaration):

* It holds the graph and selects. Each declared transition becomes one library transition that
  carries its declaration; a route condition is a callable the library evaluates
  (`Condition.check` with the route facts). `select()`: 1.4 µs without a route, 1.9 µs with one,
  against 0.28 / 0.33 µs for the dict: +1.1–1.6 µs on a transition that costs ~400 µs end to end
  on SQLite (≈0.4 %). Kept: the library is the one graph every answer comes from.
* It answers `events_from()`: its `get_triggers()` costs 3.8 µs a call, so it is asked once per
  state when the machine is built (the declaration is immutable); a lookup is then 0.14 µs.
* It draws the Mermaid diagram (`GraphMachine(graph_engine="mermaid")`, no graphviz) for
  `jinqiu machine --format mermaid`: 37 µs.
* Building the case machine, checks and derived answers included: 0.3 ms, once at import
  (the old build plus compile: 0.1 ms). `bench lifecycle` (300 cases, SQLite) before and after:
  the same audit digest, 2,100–2,350 vs 2,000–2,400 transitions/s (noise of the shared machine).

Never one model per case: the library machine has no model at all (`model=None`); cases are
rows, and nothing calls `may_<trigger>` or fires a library event (those need a model object
whose state the library sets, i.e. shared mutable state or one model per case).

Nested states for approval levels: not used. A campaign declares its own levels (one to four)
and each case's chain is the campaign's levels present on its unit path, so nested substates
would mean a machine per campaign revision and unit path, built at run time. One `levels`
state with a counter column (`approval_step`) and route conditions over it (more levels to go
/ the last one) keeps one machine, built once.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum, StrEnum
from types import MappingProxyType
from typing import Any, Generic, TypeVar, cast

from transitions import EventData
from transitions import State as LibraryState
from transitions import Transition as LibraryTransition
from transitions.extensions import GraphMachine
from transitions.extensions.diagrams import TransitionGraphSupport

S = TypeVar("S", bound=str)  # a machine's state names (a StrEnum)
E = TypeVar("E", bound=str)  # its event names (a StrEnum)
F = TypeVar("F")  # the facts its route conditions read


class Kind(StrEnum):
    OPEN = "open"  # events may still happen
    TERMINAL = "terminal"  # ended, its purpose done (a closed case: aided)
    ENDED_WITHOUT_AID = "ended_without_aid"  # ended without it (rejected, withdrawn)


@dataclass(frozen=True, slots=True)
class State(Generic[S]):
    name: S
    label: str  # Chinese, as people read it
    kind: Kind = Kind.OPEN
    # A case here waits at one approval level at a time: its transitions are for units acting at
    # that level only, unless a transition is declared `any_level` (withdrawing).
    levels: bool = False


@dataclass(frozen=True, slots=True)
class Transition(Generic[S, E, F]):
    event: E
    sources: tuple[S, ...]
    dest: S
    permission: str  # what a role must hold (workflow.roles maps roles to permissions)
    label: str  # Chinese: the button, the timeline, the flash message
    guards: tuple[str, ...] = ()  # names in workflow.guards.GUARDS; all run, all reasons kept
    effects: tuple[str, ...] = ()  # names in workflow.cases.effects.EFFECTS, after the guards
    data_keys: tuple[str, ...] = ()  # keys the event's `data` may carry (else refused)
    opinion_required: bool = False  # returning or rejecting must say why
    overridable: tuple[str, ...] = ()  # guards a manager may override, with a reason (audited)
    any_level: bool = (
        False  # fired from a `levels` state by any unit in scope, not only the level's
    )
    route: Callable[[F], bool] | None = None  # picks among transitions of one event and source
    notifies: tuple[str, ...] = ()  # notification names the transition enqueues
    bulk: bool = False  # offered on many cases at once (the work queue)

    @property
    def route_name(self) -> str | None:
        return None if self.route is None else self.route.__name__


class _LibraryState(LibraryState):
    """A library state that carries its label and kind into the library's markup (the diagram)."""

    def __init__(self, name: str, *, label: str, kind: str, **kwargs: Any) -> None:
        super().__init__(name, **kwargs)
        self.label = label
        self.kind = kind


class _LibraryTransition(TransitionGraphSupport):
    """A library transition that carries its declaration: what `select()` returns."""

    def __init__(self, *args: Any, declaration: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.declaration = declaration


class _LibraryMachine(GraphMachine):
    state_cls = _LibraryState
    transition_cls = _LibraryTransition
    style_attributes = {  # noqa: RUF012  (the library reads it from the class)
        **GraphMachine.style_attributes,
        "node": {
            "default": {"fillcolor": "#eef3f8", "stroke": "#2f6690"},
            Kind.TERMINAL.value: {"fillcolor": "#f3f3f3", "stroke": "#555555"},
            Kind.ENDED_WITHOUT_AID.value: {
                "fillcolor": "#f3f3f3",
                "stroke": "#888888",
                "color": "#555555",
            },
        },
    }


class MachineError(ValueError):
    """A declaration that cannot be right (raised when the machine is built, at import)."""


class Machine(Generic[S, E, F]):
    """One noun's lifecycle: the declaration, handed once to a `transitions` machine."""

    def __init__(
        self,
        *,
        name: str,
        label: str,
        states: Sequence[State[S]],
        events: Iterable[E],
        transitions: Sequence[Transition[S, E, F]],
        initial: S,
    ) -> None:
        self.name = name
        self.label = label
        self.states: tuple[State[S], ...] = tuple(states)
        self.events: tuple[E, ...] = tuple(events)
        self.transitions: tuple[Transition[S, E, F], ...] = tuple(transitions)
        self.initial = initial
        self._by_name: dict[str, State[S]] = {s.name: s for s in self.states}
        _check(self)
        self.library = self._build_library()
        # The library answers once per state; the declaration never changes after this.
        self._events_from: dict[str, tuple[E, ...]] = {
            s.name: tuple(self._event(e) for e in self.library.get_triggers(str(s.name)))
            for s in self.states
        }
        self._data_keys: dict[str, frozenset[str]] = {  # asked on every event: answered once
            str(e): frozenset(k for t in self.of_event(e) for k in t.data_keys) for e in self.events
        }
        self.ranks: Mapping[S, int] = MappingProxyType(_ranks(self))
        self.state_labels: Mapping[S, str] = MappingProxyType(
            {s.name: s.label for s in self.states}
        )
        self.event_labels: Mapping[E, str] = MappingProxyType(
            {e: self.of_event(e)[0].label for e in self.events}
        )
        self.open_states: tuple[S, ...] = tuple(s.name for s in self.states if s.kind is Kind.OPEN)
        self.terminal_states: frozenset[S] = frozenset(  # every end, aided or not
            s.name for s in self.states if s.kind is not Kind.OPEN
        )
        self.ended_without_aid: frozenset[S] = frozenset(
            s.name for s in self.states if s.kind is Kind.ENDED_WITHOUT_AID
        )
        self.level_states: tuple[S, ...] = tuple(s.name for s in self.states if s.levels)
        self.forward_events: frozenset[E] = frozenset(
            t.event for t in self.transitions for s in t.sources if self.forward(t, s)
        )
        # Who a case in each state waits for: the permissions of its forward transitions.
        self.permissions_by_state: Mapping[S, frozenset[str]] = MappingProxyType(
            {s.name: frozenset(t.permission for t in self.work(s.name)) for s in self.states}
        )
        self.bulk_events_by_state: Mapping[S, tuple[E, ...]] = MappingProxyType(
            {
                s.name: tuple(self.bulk_events(s.name))
                for s in self.states
                if self.bulk_events(s.name)
            }
        )

    # -- the library ------------------------------------------------------------------------
    def _build_library(self) -> _LibraryMachine:
        machine = _LibraryMachine(
            model=None,
            states=[
                {
                    "name": str(s.name),
                    "label": s.label,
                    "kind": s.kind.value,
                    "final": s.kind is not Kind.OPEN,
                }
                for s in self.states
            ],
            initial=str(self.initial),
            auto_transitions=False,
            graph_engine="mermaid",
            show_conditions=True,
            title=self.label,
        )
        # Added event by event in the declared event order, so the library's answers
        # (get_triggers) come in the order people see the buttons; within an event, in
        # declaration order, which is the order routes are tried.
        order = {e: i for i, e in enumerate(self.events)}
        for t in sorted(self.transitions, key=lambda t: order[t.event]):
            machine.add_transition(
                str(t.event),
                [str(s) for s in t.sources],
                str(t.dest),
                conditions=[t.route] if t.route is not None else None,
                declaration=t,
                label=_edge_label(t),
            )
        return machine

    def _event(self, name: str) -> E:
        return next(e for e in self.events if e == name)

    # -- states -----------------------------------------------------------------------------
    def state(self, name: str) -> State[S]:
        return self._by_name[name]

    @property
    def state_names(self) -> tuple[S, ...]:
        return tuple(s.name for s in self.states)

    # -- events and transitions -------------------------------------------------------------

    def of_event(self, event: str) -> tuple[Transition[S, E, F], ...]:
        return tuple(t for t in self.transitions if t.event == event)

    def events_from(self, state: str) -> list[E]:
        """Events the lifecycle allows from a state, in the declared event order (before roles,
        levels and guards)."""
        return list(self._events_from.get(state, ()))

    def candidates(self, state: str, event: str) -> tuple[Transition[S, E, F], ...]:
        """Every transition `event` may take from `state`, routes not yet decided."""
        library_event = self.library.events.get(str(event))
        found = library_event.transitions.get(str(state), ()) if library_event else ()
        return tuple(_declared(t) for t in found)

    def select(self, state: str, event: str, facts: F) -> Transition[S, E, F] | None:
        """The transition `event` takes from `state`, or None when the lifecycle does not
        allow it. The library evaluates each candidate's route condition with `facts`."""
        library_event = self.library.events.get(str(event))
        if library_event is None:
            return None
        found = library_event.transitions.get(str(state))
        if not found:
            return None
        event_data = EventData(None, library_event, self.library, None, (facts,), {})
        for candidate in found:
            if all(condition.check(event_data) for condition in candidate.conditions):
                declared: Transition[S, E, F] = _declared(candidate)
                return declared
        return None

    def data_keys(self, event: str) -> frozenset[str]:
        return self._data_keys.get(event, frozenset())

    def level_bound(self, transition: Transition[S, E, F], state: str) -> bool:
        """Only a unit acting at the case's current approval level may fire it from `state`."""
        return self.state(state).levels and not transition.any_level

    def forward(self, transition: Transition[S, E, F], source: str) -> bool:
        """It moves the case on: not back to an earlier state, not to an end without aid."""
        return (
            transition.dest not in self.ended_without_aid
            and self.ranks[transition.dest] >= self.ranks[self.state(source).name]
        )

    def work(self, state: str) -> tuple[Transition[S, E, F], ...]:
        """The forward transitions out of `state`: what a case in it waits for."""
        return tuple(t for t in self.transitions if state in t.sources and self.forward(t, state))

    def waiting_for(self, permissions: Collection[str], *, at_level: bool) -> tuple[S, ...]:
        """The states whose cases wait for a holder of `permissions`: one of the state's forward
        transitions needs one of them. Level-bound ones count only `at_level` (the holder's unit
        acts at one of the levels; which cases wait at that level is the caller's filter)."""
        return tuple(
            s.name
            for s in self.states
            if any(
                t.permission in permissions and (at_level or not self.level_bound(t, s.name))
                for t in self.work(s.name)
            )
        )

    def bulk_events(self, state: str) -> list[E]:
        """Events offered on many cases in `state` at once, in the declared event order."""
        return [
            e for e in self.events_from(state) if any(t.bulk for t in self.candidates(state, e))
        ]

    def path_to(self, state: str) -> list[Transition[S, E, F]]:
        """The shortest way from the initial state (first declared wins): a new case's history
        up to `state`, one transition per step (routes not applied)."""
        back: dict[str, tuple[str, Transition[S, E, F]]] = {}
        seen, queue = {str(self.initial)}, deque([str(self.initial)])
        while queue:
            current = queue.popleft()
            for t in self.transitions:
                if current in t.sources and str(t.dest) not in seen:
                    seen.add(str(t.dest))
                    back[str(t.dest)] = (current, t)
                    queue.append(str(t.dest))
        path: list[Transition[S, E, F]] = []
        at = str(state)
        while at != self.initial:
            at, step = back[at]
            path.append(step)
        return path[::-1]

    # -- drawing ----------------------------------------------------------------------------
    def to_mermaid(self) -> str:
        """The machine as a Mermaid state diagram, drawn by the library from its own graph."""
        graph = self.library.graph_cls(self.library)
        for s in self.states:
            if s.kind is not Kind.OPEN:
                graph.set_node_style(str(s.name), s.kind.value)
        source = graph.get_graph(title=self.label).draw(None)
        return f"{source}\n"


def _declared(transition: LibraryTransition) -> Any:
    return cast(_LibraryTransition, transition).declaration


def _edge_label(t: Transition[Any, Any, Any]) -> str:
    label = f"{t.event} {t.label}"
    if t.guards:
        label += " / " + ", ".join(t.guards)
    if t.effects:
        label += " → " + ", ".join(t.effects)
    return label


def _ranks(machine: Machine[Any, Any, Any]) -> dict[Any, int]:
    """Each state's distance from the initial state: its column in the drawing."""
    ranks = {machine.initial: 0}
    queue = deque([machine.initial])
    while queue:
        current = queue.popleft()
        for t in machine.transitions:
            if current in t.sources and t.dest not in ranks:
                ranks[t.dest] = ranks[current] + 1
                queue.append(t.dest)
    return ranks


def _check(machine: Machine[Any, Any, Any]) -> None:
    """Refuses a declaration that cannot be right, naming what is wrong."""
    problems: list[str] = []
    names = [s.name for s in machine.states]
    if len(set(names)) != len(names):
        problems.append("a state is declared twice")
    if machine.initial not in names:
        problems.append(f"the initial state {str(machine.initial)!r} is not declared")
    elif machine.state(machine.initial).kind is not Kind.OPEN:
        problems.append("the initial state must be open")
    if isinstance(machine.initial, Enum) and set(type(machine.initial)) != set(names):
        problems.append(f"every {type(machine.initial).__name__} needs a declared State")
    events = list(machine.events)
    if events and isinstance(events[0], Enum) and set(type(events[0])) != set(events):
        problems.append(f"every {type(events[0]).__name__} must be declared as an event")
    used = {t.event for t in machine.transitions}
    for e in events:
        if e not in used:
            problems.append(f"event {str(e)!r} has no transition")
    for t in machine.transitions:
        if t.event not in events:
            problems.append(f"event {str(t.event)!r} is not declared")
        for s in (*t.sources, t.dest):
            if s not in names:
                problems.append(f"{str(t.event)!r}: state {str(s)!r} is not declared")
        if not set(t.overridable) <= set(t.guards):
            problems.append(f"{str(t.event)!r}: only guards it runs can be overridable")
        if t.route is not None and getattr(t.route, "__name__", "<lambda>") == "<lambda>":
            problems.append(
                f"{str(t.event)!r}: a route condition needs a name (the diagram shows it)"
            )
    for e in events:
        declared = machine.of_event(e)
        if len({t.label for t in declared}) > 1 or len({t.data_keys for t in declared}) > 1:
            problems.append(f"event {str(e)!r}: its transitions must share one label and data keys")
    if not problems:
        leaving = {s for t in machine.transitions for s in t.sources}
        for s in machine.states:
            if s.kind is Kind.OPEN and s.name not in leaving:
                problems.append(f"open state {str(s.name)!r} has no transition out")
            if s.kind is not Kind.OPEN and s.name in leaving:
                problems.append(f"{s.kind.value} state {str(s.name)!r} has a transition out")
        unreachable = set(names) - _ranks(machine).keys()
        if unreachable:
            problems.append(
                f"unreachable from {str(machine.initial)!r}: {sorted(map(str, unreachable))}"
            )
    if problems:
        raise MachineError(f"machine {machine.name!r}: " + "; ".join(problems))
