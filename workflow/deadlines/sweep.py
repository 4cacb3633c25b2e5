"""One scheduler sweep as of `now`: publicity endings, follow-up closed where the campaign has
ended (workflow/followup/campaign_end.py), then reminders, overdue notices and escalations for
every deadline that has something due today.

Exactly once: each reminder is claimed by inserting its ledger row (unique on deadline, unit,
kind, occurrence) with ON CONFLICT DO NOTHING, and only the rows this sweep inserted get their
outbox messages — in the same transaction. Two sweeps at once, a crash halfway (committed
chunks stay, the rest is redone next time) or a catch-up after downtime all end with one
ledger row and one set of messages per reminder.

Isolated per campaign: a deadline or a publicity ending that fails (a campaign whose calendar
is unknown, a row edited by hand) is caught, logged and reported (`SweepReport.failures`, the
`sweep_error` table, a daily notice to its organizer); the other campaigns go on."""

from __future__ import annotations

import datetime as dt
import gc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from jinja2 import Template
from sqlalchemy import Connection, Engine, select, text
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from jinqiu.notifications.channels import robot_payload
from jinqiu.notifications.models import Channel
from jinqiu.notifications.outbox import InboxItem, Outgoing, enqueue, post_to_inbox
from jinqiu.notifications.render import environment
from jinqiu.workflow.campaigns.models import Campaign, CampaignDeadline
from jinqiu.workflow.campaigns.rules import RULES
from jinqiu.workflow.campaigns.schema import LOOKBACK
from jinqiu.workflow.clock import Clock
from jinqiu.workflow.db import transaction
from jinqiu.workflow.deadlines.messages import TEMPLATES, Composer
from jinqiu.workflow.deadlines.models import ReminderLedger
from jinqiu.workflow.deadlines.pending import PendingUnit, Responsibility, pending_units
from jinqiu.workflow.deadlines.reminder_counts import count_reminders
from jinqiu.workflow.deadlines.schedule import Occurrence, ReminderKind, due_occurrences
from jinqiu.workflow.errors import NotFound
from jinqiu.workflow.failures import CampaignFailure, failed, record_failures
from jinqiu.workflow.followup.campaign_end import FollowUpEnded, close_ended_follow_ups
from jinqiu.workflow.publicity import PublicityOutcome, end_due_publicity
from jinqiu.workflow.units.models import Unit, in_subtree

ledger_t = ReminderLedger.__table__  # type: ignore[attr-defined]
deadline_t = CampaignDeadline.__table__  # type: ignore[attr-defined]
campaign_t = Campaign.__table__  # type: ignore[attr-defined]
unit_t = Unit.__table__  # type: ignore[attr-defined]

# Reminders per transaction. PostgreSQL locks only the ledger rows a chunk inserts, so larger
# chunks cost nobody and save a commit and a round trip of each statement per 500 (the 10,000-
# reminder sweep of `bench sweep`: 2.44 s in chunks of 500, 2.03 s in chunks of 2,000). SQLite
# has one writer at a time: a chunk's transaction holds every other write (a clerk's submit)
# for its length, so chunks stay small there.
CHUNK = {"postgresql": 2000, "sqlite": 500}


@dataclass(frozen=True)
class SentReminder:
    campaign_id: int
    deadline_key: str
    unit_code: str
    notified_unit_code: str
    kind: str
    occurrence: int
    pending_total: int


@dataclass
class SweepReport:
    now: dt.datetime
    publicity: PublicityOutcome = field(default_factory=PublicityOutcome)
    follow_up: FollowUpEnded = field(default_factory=FollowUpEnded)  # closed: the campaign ended
    reminders: list[SentReminder] = field(default_factory=list)
    already_sent: int = 0  # claimed by an earlier or concurrent sweep
    failures: list[CampaignFailure] = field(default_factory=list)  # campaigns that failed

    @property
    def failed_campaigns(self) -> list[int | None]:
        """Each failing campaign once (None: the sweep as a whole), in the order they failed."""
        return list(dict.fromkeys(f.campaign_id for f in self.failures))

    def count(self, kind: ReminderKind) -> int:
        return sum(1 for r in self.reminders if r.kind == kind.value)


def campaigns_within(engine: Engine, code: str) -> list[int]:
    """The campaigns organised by the unit `code` or a unit below it."""
    with engine.connect() as conn:
        path = conn.execute(select(unit_t.c.path).where(unit_t.c.code == code)).scalar()
        if path is None:
            raise NotFound(f"单位 {code} 不存在")
        return list(
            conn.execute(
                select(campaign_t.c.id)
                .join(unit_t, unit_t.c.id == campaign_t.c.organizer_unit_id)
                .where(in_subtree(unit_t.c.path, path))
                .order_by(campaign_t.c.id)
            ).scalars()
        )


def sweep(
    engine: Engine,
    clock: Clock,
    *,
    base_url: str,
    chunk: int | None = None,
    within: str | None = None,
) -> SweepReport:
    """Publicity endings, follow-up closed at the campaign's end, then the reminders due today,
    for every campaign — or, `within` a unit's code, for the campaigns organised by that unit or
    below it (one sweeper per group of provinces; NotFound for an unknown code). Overlapping
    sweepers are harmless: the ledger keeps each reminder once. `chunk`: reminders per
    transaction (default: CHUNK for the database)."""
    chunk = chunk or CHUNK.get(engine.dialect.name, min(CHUNK.values()))
    campaigns = None if within is None else campaigns_within(engine, within)
    now = clock.now()
    report = SweepReport(now=now)
    report.publicity = end_due_publicity(engine, clock, base_url=base_url, campaigns=campaigns)
    # Before the reminders: a follow-up deadline does not chase the cases the campaign's end closed.
    report.follow_up = close_ended_follow_ups(engine, clock, campaigns=campaigns)
    today = now.date()
    query = (
        select(
            deadline_t,
            campaign_t.c.name.label("campaign_name"),
            campaign_t.c.rules_token,
            campaign_t.c.reminders,
            unit_t.c.path.label("organizer_path"),
        )
        .join(campaign_t, campaign_t.c.id == deadline_t.c.campaign_id)
        .join(unit_t, unit_t.c.id == campaign_t.c.organizer_unit_id)
        .where(deadline_t.c.due >= today - LOOKBACK, deadline_t.c.due <= today + LOOKBACK)
        .order_by(deadline_t.c.due, deadline_t.c.id)
    )
    if campaigns is not None:
        query = query.where(deadline_t.c.campaign_id.in_(campaigns))
    with engine.connect() as conn:
        deadlines = conn.execute(query).all()
    # Looked up once per sweep, not once per message: get_template stats the file on every call
    # (Jinja's auto_reload), a tenth of the rendering time of a 10,000-reminder sweep.
    templates = {name: environment().get_template(name) for name in TEMPLATES}
    with _older_objects_frozen():
        for deadline in deadlines:
            try:
                _sweep_deadline(engine, deadline, today, now, base_url, chunk, report, templates)
            except Exception as exc:  # this campaign's trouble: the others go on
                report.failures.append(
                    failed(
                        deadline.campaign_id,
                        deadline.campaign_name,
                        f"截止事项 {deadline.key}",
                        exc,
                    )
                )
    report.failures[:0] = [*report.publicity.failures, *report.follow_up.failures]
    record_failures(engine, report.failures, now, base_url)
    return report


@contextmanager
def _older_objects_frozen() -> Iterator[None]:
    """The objects alive before the reminders (modules, SQLAlchemy's metadata, …) kept out of
    the garbage collector's full passes while they are written: a chunk's thousands of rows and
    messages set off full passes, and each went through the whole process — a quarter of a
    10,000-reminder sweep's CPU. Nothing is done when something else froze them (a forking
    server does, once, before it forks): unfreezing would undo it."""
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _sweep_deadline(
    engine: Engine,
    deadline: Any,
    today: dt.date,
    now: dt.datetime,
    base_url: str,
    chunk: int,
    report: SweepReport,
    templates: dict[str, Template],
) -> None:
    with engine.connect() as conn:
        rules = RULES.get(conn, deadline.campaign_id, deadline.rules_token)
    settings = deadline.reminders
    occurrences = due_occurrences(
        today,
        deadline.due,
        before_working_days=list(settings.get("before_working_days", [3, 1, 0])),
        overdue_every=int(settings.get("overdue_every_working_days", 1)),
        escalate_after=int(settings.get("escalate_after_working_days", 2)),
        calendar=rules.calendar,
    )
    if not occurrences:
        return  # nothing due for this deadline today: no query over its units
    with engine.connect() as conn:
        owing = pending_units(
            conn,
            campaign_id=deadline.campaign_id,
            organizer_path=deadline.organizer_path,
            responsible=Responsibility.of(deadline.responsible_level, deadline.responsible),
            done_when=deadline.done_when,
        )
    # The deadline's messages from stencils: each shape's parts rendered once, not per reminder.
    composer = Composer(deadline, base_url, templates)
    for start in range(0, len(owing), chunk):
        with transaction(engine) as conn:
            _remind(
                conn, deadline, owing[start : start + chunk], occurrences, now, report, composer
            )


_LEDGER_COLUMNS = (
    "campaign_id",
    "deadline_id",
    "unit_id",
    "kind",
    "occurrence",
    "notified_unit_id",
    "pending_total",
    "created_at",
)
# PostgreSQL: the chunk as one array per column that varies (the deadline's and the instant as
# one value each), one short statement. The executemany with RETURNING it replaces became one
# INSERT with thousands of placeholders per chunk, which psycopg parses anew each time: a
# 10,000-reminder sweep spent a third of its time claiming.
_PG_CLAIM = text(
    f"INSERT INTO reminder_ledger ({', '.join(_LEDGER_COLUMNS)}) "
    "SELECT CAST(:campaign_id AS integer), CAST(:deadline_id AS integer), r.unit_id, r.kind, "
    "r.occurrence, r.notified_unit_id, r.pending_total, CAST(:created_at AS timestamp) "
    "FROM unnest(CAST(:unit_id AS integer[]), CAST(:kind AS varchar[]), "
    "CAST(:occurrence AS integer[]), CAST(:notified_unit_id AS integer[]), "
    "CAST(:pending_total AS integer[])) "
    "AS r(unit_id, kind, occurrence, notified_unit_id, pending_total) "
    "ON CONFLICT (deadline_id, unit_id, kind, occurrence) DO NOTHING "
    "RETURNING unit_id, kind"
)

# A reminder to claim: the unit that owes, the occurrence, the unit notified (itself or its
# parent's row).
_Plan = tuple[PendingUnit, Occurrence, Any]


def _notified_id(notified: Any) -> int:
    return int(notified.unit_id if isinstance(notified, PendingUnit) else notified.id)


def _insert_ledger(
    conn: Connection, deadline: Any, plans: list[_Plan], now: dt.datetime
) -> list[tuple[int, str]]:
    """Inserts what is not there yet; returns the (unit, kind) of each row this call claimed."""
    if not plans:
        return []
    if conn.dialect.name == "postgresql":
        stamp = ledger_t.c.created_at.type.process_bind_param  # aware → naive UTC, as stored
        arrays = {
            "campaign_id": deadline.campaign_id,
            "deadline_id": deadline.id,
            "created_at": stamp(now, conn.dialect),
            "unit_id": [unit.unit_id for unit, _occ, _n in plans],
            "kind": [occ.kind.value for _u, occ, _n in plans],
            "occurrence": [occ.occurrence for _u, occ, _n in plans],
            "notified_unit_id": [_notified_id(notified) for _u, _o, notified in plans],
            "pending_total": [unit.total for unit, _occ, _n in plans],
        }
        return [(r.unit_id, r.kind) for r in conn.execute(_PG_CLAIM, arrays).all()]
    statement = (
        sqlite_insert(ledger_t)
        .on_conflict_do_nothing(index_elements=["deadline_id", "unit_id", "kind", "occurrence"])
        .returning(ledger_t.c.unit_id, ledger_t.c.kind)
    )
    rows = [
        {
            "campaign_id": deadline.campaign_id,
            "deadline_id": deadline.id,
            "unit_id": unit.unit_id,
            "kind": occ.kind.value,
            "occurrence": occ.occurrence,
            "notified_unit_id": _notified_id(notified),
            "pending_total": unit.total,
            "created_at": now,
        }
        for unit, occ, notified in plans
    ]
    return [(r.unit_id, r.kind) for r in conn.execute(statement, rows).all()]


def _remind(
    conn: Connection,
    deadline: Any,
    owing: list[PendingUnit],
    occurrences: list[Occurrence],
    now: dt.datetime,
    report: SweepReport,
    composer: Composer,
) -> None:
    escalating = any(occ.kind is ReminderKind.ESCALATION for occ in occurrences)
    parent_ids = {u.parent_id for u in owing if u.parent_id is not None} if escalating else set()
    parents = (
        {r.id: r for r in conn.execute(select(unit_t).where(unit_t.c.id.in_(sorted(parent_ids))))}
        if parent_ids
        else {}
    )
    plans: list[_Plan] = []
    for unit in owing:
        for occ in occurrences:
            notified: Any = unit
            if occ.kind is ReminderKind.ESCALATION:
                notified = parents.get(unit.parent_id) if unit.parent_id is not None else None
                if notified is None:
                    continue  # the root owes nobody an explanation
            plans.append((unit, occ, notified))
    inserted = _insert_ledger(conn, deadline, plans, now)
    claimed = set(inserted)
    report.already_sent += len(plans) - len(claimed)
    # The dashboard's reminder counts, in the transaction that claims the rows.
    path_of = {u.unit_id: u.path for u in owing}
    count_reminders(conn, deadline.campaign_id, (path_of[unit_id] for unit_id, _kind in inserted))
    outgoing: list[Outgoing] = []
    inbox: list[InboxItem] = []
    for unit, occ, notified in plans:
        if (unit.unit_id, occ.kind.value) not in claimed:
            continue
        key = f"reminder:{deadline.id}:{unit.unit_id}:{occ.kind.value}:{occ.occurrence}"
        email, webhook = notified.contact_email, notified.webhook_url
        # Each part is rendered only for a channel that carries it: HTML for e-mail, markdown
        # for the robot webhook (most grassroots unions have no webhook).
        message = composer.compose(unit, occ, notified, html=bool(email), markdown=bool(webhook))
        if email:
            outgoing.append(
                Outgoing(
                    f"{key}:email",
                    Channel.EMAIL.value,
                    email,
                    message["subject"],
                    message["text"],
                    message["html"],
                    unit_code=notified.code,
                )
            )
        if webhook:
            outgoing.append(
                Outgoing(
                    f"{key}:webhook",
                    Channel.WEBHOOK.value,
                    webhook,
                    message["subject"],
                    message["text"],
                    payload=robot_payload(message["subject"], message["markdown"], message["data"]),
                    unit_code=notified.code,
                )
            )
        inbox.append(
            InboxItem(
                f"{key}:inbox", notified.code, message["subject"], message["text"], message["link"]
            )
        )
        report.reminders.append(
            SentReminder(
                campaign_id=deadline.campaign_id,
                deadline_key=deadline.key,
                unit_code=unit.code,
                notified_unit_code=notified.code,
                kind=occ.kind.value,
                occurrence=occ.occurrence,
                pending_total=unit.total,
            )
        )
    enqueue(conn, outgoing, now)
    post_to_inbox(conn, inbox, now)
