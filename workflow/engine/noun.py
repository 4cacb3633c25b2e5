"""What the engine needs to know of a noun (a case, a payment batch, a publicity list …): its
machine, its tables, how to load its facts, who may act on it, and what its guards and effects are.

A noun is a small adapter: the engine does the rest (select → authorise → guards → effects →
version-checked write → audit → outbox) the same way for every noun. Its row has the columns
`id`, `state`, `version`, `audit_seq`, `audit_head` and `updated_at`; its audit table has the
columns of `workflow.audit.models.AuditEntry` with the subject's id in `audit_subject`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from sqlalchemy import CTE, Connection, Select, Table, select

from jinqiu.notifications.outbox import InboxItem, Outgoing
from jinqiu.states.machine import Machine, Transition
from jinqiu.workflow.driver import any_of
from jinqiu.workflow.errors import DomainError, Reason
from jinqiu.workflow.readonly import readonly
from jinqiu.workflow.roles import Actor

F = TypeVar("F")  # the facts a noun's guards and effects read

# Columns only the engine writes: an effect that names one is a programming error, refused.
ENGINE_COLUMNS = frozenset({"id", "state", "version", "audit_seq", "audit_head", "updated_at"})


@readonly()
class Loaded(Generic[F]):
    """A subject as read at the start of a transition: what the engine checks and chains on,
    and the noun's own facts for its guards and effects."""

    id: int
    state: str
    version: int
    audit_seq: int
    audit_head: str | None
    facts: F


@readonly()
class Outcome:
    """What an effect computes, without doing it: columns of the subject's row to change, what
    the audit entry should say, and side records for the noun to write (a fund reservation)."""

    changes: Mapping[str, Any] = field(default_factory=dict)
    audit: Mapping[str, Any] = field(default_factory=dict)
    records: tuple[object, ...] = ()


NOTHING = Outcome()


@dataclass
class Plan:
    """A noun's side records for many items at once (bulk): per item its outcome (more changes
    and audit notes) or its refusal, and `write` for those of the items whose rows were won."""

    outcomes: list[Outcome | DomainError]
    write: Callable[[Connection, list[int]], None] = lambda _conn, _won: None


Guard = Callable[[F], list[Reason]]
Effect = Callable[[F, "str | None"], Outcome]  # (facts, opinion) → outcome; pure


class Noun(Generic[F]):
    """Override `load`; the rest has defaults a simple noun can keep."""

    machine: Machine[Any, Any, Any]
    table: Table
    audit_table: Table
    audit_subject: str  # the audit table's column naming the subject
    label: str  # Chinese, in messages: "案件 12 不存在"
    guards: Mapping[str, Guard[F]] = {}
    effects: Mapping[str, Effect[F]] = {}

    def check_declaration(self) -> None:
        """Every guard and effect the machine names is implemented (call once, at import)."""
        named_guards = {g for t in self.machine.transitions for g in t.guards}
        named_effects = {e for t in self.machine.transitions for e in t.effects}
        missing = sorted(named_guards - self.guards.keys()) + sorted(
            named_effects - self.effects.keys()
        )
        if missing:
            raise ImportError(
                f"{self.machine.name}: named in states/ but not implemented: {missing}"
            )
        if type(self).moved is not Noun.moved and type(self).moved_with is Noun.moved_with:
            # A transition written alone would skip what `moved` writes.
            raise ImportError(f"{self.machine.name}: `moved` overridden without `moved_with`")

    def load(
        self, conn: Connection, subject_id: int, *, today: dt.date, data: Mapping[str, Any]
    ) -> Loaded[F] | None:
        """The subject and its facts (None: no such subject)."""
        raise NotImplementedError

    def read_ahead(self, subject_id: int) -> tuple[Select[Any], dict[str, Any]] | None:
        """The statement and parameters whose row `load` reads first, through
        `driver_first_read_ahead`: a caller about to fire on the subject may read that row ahead
        with a row of its own, in one statement (`driver_first_reading_ahead`; the API does so
        with the caller's row). None: `load` reads none so."""
        return None

    def load_many(
        self,
        conn: Connection,
        subject_ids: Sequence[int],
        *,
        today: dt.date,
        data: Mapping[str, Any],
        lock: bool,
    ) -> dict[int, Loaded[F]]:
        """Several subjects at once (bulk); `lock`: hold their rows until the transaction ends
        (PostgreSQL `FOR UPDATE`). The default loads one by one, unlocked on SQLite, whose writer
        already holds the database."""
        found = {}
        for subject_id in subject_ids:
            loaded = self.load(conn, subject_id, today=today, data=data)
            if loaded is not None:
                found[subject_id] = loaded
        return found

    def lock(self, conn: Connection, subject_ids: Sequence[int], event: str) -> None:
        """PostgreSQL, before a bulk event reads anything: take every row its transitions may
        write or wait for, in the order a single transition takes them (the subjects' rows by
        id; a noun that moves money adds its fund rows). A bulk that locked as it went would hold
        the counters of its first chunk while waiting for a row a single request holds — which
        waits for those counters: a deadlock."""
        conn.execute(
            select(self.table.c.id)
            .where(any_of(self.table.c.id, subject_ids))
            .order_by(self.table.c.id)
            .with_for_update()
        ).all()

    def visible(self, actor: Actor, loaded: Loaded[F]) -> bool:
        """Whether the actor may know the subject exists (otherwise: not found)."""
        return True

    def select(self, loaded: Loaded[F], event: str) -> Transition[Any, Any, Any] | None:
        return self.machine.select(loaded.state, event, loaded.facts)

    def route_key(self, loaded: Loaded[F]) -> Hashable | None:
        """What `select` and `refusal` read of a subject, as a key: a bulk event asks them once
        per distinct key (for one actor and event) instead of once per subject. None (the
        default): asked for every subject."""
        return None

    def refusal(
        self, actor: Actor, transition: Transition[Any, Any, Any], loaded: Loaded[F]
    ) -> str | None:
        """Why this actor may not fire this transition on this subject (None: they may)."""
        return None if actor.may(transition.permission) else "当前角色无权执行该操作"

    def opinion_asked(self, transition: Transition[Any, Any, Any], loaded: Loaded[F]) -> str | None:
        """What opinion this transition must carry on this subject (its label, e.g. 审批意见),
        or None when it may go without: the declaration's, unless the noun knows more."""
        return "意见或理由" if transition.opinion_required else None

    def allowed_events(self, actor: Actor, loaded: Loaded[F]) -> list[str]:
        """The events this actor may fire now (before guards): the buttons to draw."""
        out: list[str] = []
        for event in self.machine.events_from(loaded.state):
            t = self.select(loaded, event)
            if t is not None and self.refusal(actor, t, loaded) is None:
                out.append(str(event))
        return out

    def write_records(
        self, conn: Connection, loaded: Loaded[F], records: tuple[object, ...]
    ) -> Outcome:
        """Writes an outcome's side records; may refuse (a DomainError) and may return more
        changes and audit notes (which fund the money came from)."""
        if records:
            raise NotImplementedError(f"{self.machine.name} has no side records")
        return NOTHING

    def plan_records(
        self, conn: Connection, items: Sequence[tuple[Loaded[F], tuple[object, ...]]]
    ) -> Plan:
        """`write_records` for many items (bulk): decide every item's side records first (e.g.
        share out a fund's free money in item order), write only the winners' afterwards."""
        if any(records for _, records in items):
            raise NotImplementedError(f"{self.machine.name} has no side records")
        return Plan([NOTHING] * len(items))

    def moved(
        self, conn: Connection, loaded: Loaded[F], transition: Transition[Any, Any, Any]
    ) -> None:
        """After the version-checked write, in the same transaction (counters)."""

    def moved_with(
        self, moved: CTE, loaded: Loaded[F], transition: Transition[Any, Any, Any]
    ) -> tuple[CTE, dict[str, Any]] | None:
        """What `moved` writes, as a part of the one statement that writes the subject's row, for
        a transition written alone (PostgreSQL, workflow.engine.core): a data-modifying CTE that
        writes only if `moved` — the version-checked UPDATE … RETURNING, as a CTE — wrote the
        row, and its parameters; None: nothing. A noun overriding `moved` overrides this too."""
        return None

    def fires_after(self, loaded: Loaded[F], transition: Transition[Any, Any, Any]) -> bool:
        """Whether the noun's own service goes on to fire more in the same unit of work after
        this transition (a case verified in a campaign without publicity): the transition is
        then never written alone, as if it were all its request writes."""
        return False

    def moved_many(
        self,
        conn: Connection,
        moves: Sequence[tuple[Loaded[F], Transition[Any, Any, Any]]],
    ) -> None:
        """`moved` for many subjects (bulk): override to write them together."""
        for loaded, transition in moves:
            self.moved(conn, loaded, transition)

    def messages(
        self,
        conn: Connection,
        loaded: Loaded[F],
        transition: Transition[Any, Any, Any],
        notification: str,
        *,
        key: str,
        opinion: str | None,
        at: dt.datetime,
    ) -> tuple[list[Outgoing], list[InboxItem]]:
        """The messages a declared notification sends (templates in notifications/templates/);
        `key` is unique to this transition and notification (the outbox's idempotency key)."""
        raise NotImplementedError(f"{self.machine.name}: notification {notification!r}")
