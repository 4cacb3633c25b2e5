"""The case noun: how the engine (`workflow.engine`) loads a case's facts, who may act on it at
which approval level, its guards and effects, the money its transitions move, its counters and
the messages its transitions send. `apply_event` fires one event on one case.

The machine is the declaration of `states.case_lifecycle`; everything else a transition does
(version check, guards with all reasons, the audit chain, the outbox) is the engine's.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import operator
from collections.abc import Hashable, Mapping, Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import CTE, Connection, Select, bindparam, select

from jinqiu.notifications.models import Channel
from jinqiu.notifications.outbox import InboxItem, Outgoing
from jinqiu.notifications.render import render
from jinqiu.states import MACHINE, ApprovalProgress, CaseEvent, CaseState, CaseTransition
from jinqiu.workflow.audit.models import AuditEntry
from jinqiu.workflow.campaigns.models import Campaign
from jinqiu.workflow.campaigns.rules import RULES, CampaignRules
from jinqiu.workflow.campaigns.schema import AidRule
from jinqiu.workflow.cases import funds, priority
from jinqiu.workflow.cases.counters import count_state_change, count_state_changes, counted_with
from jinqiu.workflow.cases.effects import EFFECTS, Pay, Release, Reserve
from jinqiu.workflow.cases.facts import (
    CaseFacts,
    GuardContext,
    StudentFacts,
    WorkerFacts,
)
from jinqiu.workflow.cases.guards import GUARDS
from jinqiu.workflow.cases.models import Attachment, Case, Student, Worker
from jinqiu.workflow.clock import Clock
from jinqiu.workflow.config import get_settings
from jinqiu.workflow.donors.intent import Intent, is_donor_fund
from jinqiu.workflow.donors.service import intent_of_fund
from jinqiu.workflow.driver import driver_first_read_ahead, driver_rows, id_in, plain_rows
from jinqiu.workflow.engine import Fired, Loaded, Noun, Outcome, Plan, fire
from jinqiu.workflow.engine.bulk import Item, fire_many
from jinqiu.workflow.errors import InsufficientFunds, ItemFailed, NotFound
from jinqiu.workflow.money import format_yuan
from jinqiu.workflow.roles import SCHEDULER, Actor
from jinqiu.workflow.units.models import ACTS_AS, Unit
from jinqiu.workflow.units.service import acting_levels_on_path

case_t = Case.__table__  # type: ignore[attr-defined]
worker_t = Worker.__table__  # type: ignore[attr-defined]
student_t = Student.__table__  # type: ignore[attr-defined]
unit_t = Unit.__table__  # type: ignore[attr-defined]
campaign_t = Campaign.__table__  # type: ignore[attr-defined]
audit_t = AuditEntry.__table__  # type: ignore[attr-defined]
attachment_t = Attachment.__table__  # type: ignore[attr-defined]
_kinds_attached = (
    select(attachment_t.c.kind).where(attachment_t.c.case_id == bindparam("id")).distinct()
)

# Where the approval chain (the campaign's levels on the case's unit path) is read: in the
# states that wait by level and in those a transition leaves for one.
_NEEDS_CHAIN = frozenset(MACHINE.level_states) | {
    s for t in MACHINE.transitions if t.dest in MACHINE.level_states for s in t.sources
}

_load_all = select(
    case_t.c.id,
    case_t.c.campaign_id,
    case_t.c.state,
    case_t.c.version,
    case_t.c.approval_step,
    case_t.c.objection_open,
    case_t.c.publicity_ends_on,
    case_t.c.approved_amount_fen,
    case_t.c.fund_source_id,
    case_t.c.payment_failures,
    case_t.c.payment_batch_id,
    case_t.c.follow_up_visits,
    case_t.c.application_type,
    case_t.c.form,
    case_t.c.audit_seq,
    case_t.c.audit_head,
    unit_t.c.path.label("unit_path"),
    campaign_t.c.rules_token,
    worker_t.c.id_number.label("worker_id_number"),
    worker_t.c.archive_status,
    worker_t.c.archived_on,
    worker_t.c.categories,
    student_t.c.id_number.label("student_id_number"),
    student_t.c.education_level,
    student_t.c.tier,
    student_t.c.tuition_invoice_fen,
    student_t.c.already_aided_by,
    student_t.c.enrollment_year,
).select_from(
    case_t.join(unit_t, unit_t.c.id == case_t.c.unit_id)
    .join(campaign_t, campaign_t.c.id == case_t.c.campaign_id)
    .join(worker_t, worker_t.c.id == case_t.c.worker_id)
    .join(student_t, student_t.c.id == case_t.c.student_id)
)
# Where `_loaded` finds its columns in a row (`_facts` unpacks the row in the select's order).
_AT = {column.name: i for i, column in enumerate(_load_all.selected_columns)}
_load = _load_all.where(case_t.c.id == bindparam("case_id"))
_load_many = {
    dialect: _load_all.where(id_in(case_t.c.id, "case_ids", dialect))
    for dialect in ("sqlite", "postgresql")
}
# Bulk on PostgreSQL: the cases' rows held from the read to the commit, so the versions read are
# the versions written over (SQLite's writer holds the whole database already).
_load_many_locked = _load_many["postgresql"].order_by(case_t.c.id).with_for_update(of=case_t)
# Enum lookups by value, asked for every case a bulk event reads (the Enum call is slower).
_STATES: dict[str, CaseState] = {s.value: s for s in CaseState}
_ACTS_AS: dict[str, str] = {level.value: ACTS_AS[level] for level in ACTS_AS}
# The events whose transitions write side records to fund rows (a bulk locks those rows first).
_MOVES_MONEY = frozenset(
    t.event
    for t in MACHINE.transitions
    if {"reserve_aid", "record_payment", "release_reservation"} & set(t.effects)
)

TransitionResult = Fired  # what apply_event returns (states and events as strings)


def _facts(
    conn: Connection,
    row: Sequence[Any],
    today: dt.date,
    data: Mapping[str, Any],
    chains: dict[tuple[int, str], tuple[int, ...]] | None = None,
    intents: dict[tuple[int, str], Intent | None] | None = None,
) -> GuardContext:
    """A row of `_load_all` (by position: a bulk reads thousands) as the guards' facts.
    `chains`: the approval chains of (campaign, unit path) already worked out (bulk: once per
    unit); `intents`: the donor intents already read (bulk: once per campaign and fund)."""
    (
        case_id,
        campaign_id,
        state_value,
        version,
        approval_step,
        objection_open,
        publicity_ends_on,
        approved_amount_fen,
        fund_source_id,
        payment_failures,
        payment_batch_id,
        follow_up_visits,
        application_type,
        form,
        _audit_seq,
        _audit_head,
        unit_path,
        rules_token,
        worker_id_number,
        archive_status,
        archived_on,
        categories,
        student_id_number,
        education_level,
        tier,
        tuition_invoice_fen,
        already_aided_by,
        enrollment_year,
    ) = row
    rules = RULES.get(conn, campaign_id, rules_token)
    state = _STATES[state_value]
    chain: tuple[int, ...] = ()
    if state in _NEEDS_CHAIN:  # one small query, only where needed
        known = None if chains is None else chains.get((campaign_id, unit_path))
        if known is None:
            on_path = acting_levels_on_path(conn, unit_path)
            known = tuple(i for i, level in enumerate(rules.approval_levels) if level in on_path)
            if chains is not None:
                chains[(campaign_id, unit_path)] = known
        chain = known
    donor: Intent | None = None
    fund_source = data.get("fund_source")
    if isinstance(fund_source, str) and is_donor_fund(fund_source):  # only when one is chosen
        key = (campaign_id, fund_source)
        if intents is not None and key in intents:
            donor = intents[key]
        else:
            donor = intent_of_fund(conn, campaign_id, fund_source)
            if intents is not None:
                intents[key] = donor
    attached: frozenset[str] = frozenset()
    if state is CaseState.SURVEY and rules.application_types:  # what submit requires
        # on the driver: an event's connection waiting for its first write reads it alone
        attached = frozenset(
            kind for (kind,) in driver_rows(conn, _kinds_attached, {"id": case_id})
        )
    return GuardContext(
        case=CaseFacts(
            id=case_id,
            state=state,
            version=version,
            approval_step=approval_step,
            objection_open=bool(objection_open),
            publicity_ends_on=publicity_ends_on,
            approved_amount_fen=approved_amount_fen,
            fund_source_id=fund_source_id,
            payment_failures=payment_failures,
            unit_path=unit_path,
            payment_batch_id=payment_batch_id,
            follow_up_visits=follow_up_visits,
            approval_chain=chain,
            application_type=application_type,
            form=form or {},
            attached_kinds=attached,
        ),
        worker=WorkerFacts(
            id_number=worker_id_number,
            archive_status=archive_status,
            archived_on=archived_on,
            categories=tuple(categories or ()),
        ),
        student=StudentFacts(
            id_number=student_id_number,
            education_level=education_level,
            tier=tier,
            tuition_invoice_fen=tuition_invoice_fen,
            already_aided_by=already_aided_by,
            enrollment_year=enrollment_year,
        ),
        campaign=rules,
        today=today,
        data=data if isinstance(data, dict) else dict(data),  # never changed: shared by a bulk
        donor=donor,
    )


def load_context(conn: Connection, case_id: int, *, today: Any) -> tuple[GuardContext, Any]:
    """A case's facts and its row (NotFound when there is none): for reads and the engine."""
    row = conn.execute(_load, {"case_id": case_id}).first()
    if row is None:
        raise NotFound(f"案件 {case_id} 不存在")
    return _facts(conn, row, today, {}), row


def current_approval_level(case: CaseFacts, rules: CampaignRules) -> str | None:
    """The level an approval case waits at: the next of the campaign's levels on its path."""
    if case.state not in MACHINE.level_states:
        return None
    step = case.pending_step()
    return None if step is None else rules.approval_levels[step]


def transition_for(
    case: CaseFacts, event: CaseEvent | str, rules: CampaignRules
) -> CaseTransition | None:
    """The lifecycle's transition, the approval route counted along the case's own chain: a
    市直 union's grassroots approval is followed by the city's, the last one."""
    step, levels = case.approval_step, len(rules.approval_levels)
    pending = case.pending_step() if case.state in MACHINE.level_states else None
    if pending is not None:
        step, levels = case.approval_chain.index(pending), len(case.approval_chain)
    return _select(case.state, event, step, levels)


@lru_cache(maxsize=4096)
def _select(state: str, event: str, step: int, levels: int) -> CaseTransition | None:
    """The machine's answer for these route facts: the declaration never changes, so it is
    asked once per (state, event, progress) — a bulk of 10,000 approvals asks it a few times."""
    return MACHINE.select(state, event, ApprovalProgress(step, levels))


def refusal_by_role(
    actor: Actor, transition: CaseTransition, case: CaseFacts, rules: CampaignRules
) -> str | None:
    """Why this actor may not fire this transition on this case (None: they may)."""
    if not actor.may(transition.permission):
        return "当前角色无权执行该操作"
    if MACHINE.level_bound(transition, case.state):
        level = current_approval_level(case, rules)
        if level is None:  # no unit on the path acts at any of the campaign's levels
            return "该案件所在单位的上级中没有本活动的审批层级，只能撤回"
        acts_as = _ACTS_AS.get(actor.unit_level) if actor.unit_level else None
        if acts_as != level:
            return f"该案件正处于“{level}”层级审批，须由该层级的单位办理"
    return None


def allowed_events(actor: Actor, case: CaseFacts, rules: CampaignRules) -> list[CaseEvent]:
    """The events this actor may fire on this case now (before guards): the buttons to draw."""
    out: list[CaseEvent] = []
    for event in MACHINE.events_from(case.state):
        t = transition_for(case, event, rules)
        if t is not None and refusal_by_role(actor, t, case, rules) is None:
            out.append(event)
    return out


_unit_of_case = (
    select(
        unit_t.c.code,
        unit_t.c.name,
        unit_t.c.contact_email,
        student_t.c.name.label("student_name"),
    )
    .select_from(
        case_t.join(unit_t, unit_t.c.id == case_t.c.unit_id).join(
            student_t, student_t.c.id == case_t.c.student_id
        )
    )
    .where(case_t.c.id == bindparam("case_id"))
)


class CaseNoun(Noun[GuardContext]):
    machine = MACHINE
    table = case_t
    audit_table = audit_t
    audit_subject = "case_id"
    label = "案件"
    guards = GUARDS
    effects = EFFECTS

    def load(
        self, conn: Connection, subject_id: int, *, today: dt.date, data: Mapping[str, Any]
    ) -> Loaded[GuardContext] | None:
        row = driver_first_read_ahead(conn, _load, {"case_id": subject_id})
        if row is None:
            return None
        return _loaded(row, _facts(conn, row, today, data))

    def read_ahead(self, subject_id: int) -> tuple[Select[Any], dict[str, Any]]:
        return _load, {"case_id": subject_id}

    def load_many(
        self,
        conn: Connection,
        subject_ids: Sequence[int],
        *,
        today: dt.date,
        data: Mapping[str, Any],
        lock: bool,
    ) -> dict[int, Loaded[GuardContext]]:
        dialect = conn.dialect.name
        statement = _load_many_locked if lock and dialect == "postgresql" else _load_many[dialect]
        chains: dict[tuple[int, str], tuple[int, ...]] = {}
        intents: dict[tuple[int, str], Intent | None] = {}
        return {
            row[0]: _loaded(row, _facts(conn, row, today, data, chains, intents))
            for row in plain_rows(conn, statement, {"case_ids": list(subject_ids)})
        }

    def lock(self, conn: Connection, subject_ids: Sequence[int], event: str) -> None:
        """The cases' rows, then — for an event that can move money — their campaigns' funds:
        the order a single transition takes them (case row, then fund)."""
        super().lock(conn, subject_ids, event)
        if event in _MOVES_MONEY:
            funds.lock_of_cases(conn, subject_ids)

    def visible(self, actor: Actor, loaded: Loaded[GuardContext]) -> bool:
        return actor.sees(loaded.facts.case.unit_path)

    def opinion_asked(self, transition: CaseTransition, loaded: Loaded[GuardContext]) -> str | None:
        """The declaration's, the campaign's (Dalian: 审查意见 / 审核意见 / 审批意见, one per
        level), and at the final approval the reason for an amount the approver sets."""
        facts = loaded.facts
        case, rules = facts.case, facts.campaign
        fixes_amount = "reserve_aid" in transition.effects
        if not rules.opinions and not fixes_amount:  # most events of most campaigns: at once
            return super().opinion_asked(transition, loaded)
        level = (
            current_approval_level(case, rules)
            if rules.opinions and MACHINE.level_bound(transition, case.state)
            else None
        )
        asked = rules.opinion_at(str(transition.event), level) if rules.opinions else None
        if asked is not None and asked[1]:
            return asked[0]
        if fixes_amount and (
            "amount" in facts.data
            or (isinstance(facts.aid_rule, AidRule) and facts.aid_rule.approver_sets_amount)
        ):
            return f"{asked[0] if asked else '审批意见'}（说明确定金额的理由）"
        return super().opinion_asked(transition, loaded)

    def route_key(self, loaded: Loaded[GuardContext]) -> Hashable:
        """`transition_for` and `refusal_by_role` read the state, the level progress and the
        campaign's levels, nothing else of the case."""
        case, rules = loaded.facts.case, loaded.facts.campaign
        return (case.state, case.approval_step, case.approval_chain, rules.id, rules.token)

    def select(self, loaded: Loaded[GuardContext], event: str) -> CaseTransition | None:
        return transition_for(loaded.facts.case, event, loaded.facts.campaign)

    def refusal(
        self, actor: Actor, transition: CaseTransition, loaded: Loaded[GuardContext]
    ) -> str | None:
        return refusal_by_role(actor, transition, loaded.facts.case, loaded.facts.campaign)

    def write_records(
        self, conn: Connection, loaded: Loaded[GuardContext], records: tuple[object, ...]
    ) -> Outcome:
        changes: dict[str, Any] = {}
        audit: dict[str, Any] = {}
        for record in records:
            if isinstance(record, Reserve):
                campaign_id = loaded.facts.campaign.id
                chosen = priority.check_single_approval(
                    conn,
                    loaded.facts.campaign,
                    loaded.id,
                    loaded.facts.applicant,
                    record.amount_fen,
                    record.source,
                )
                fund_id, source = funds.reserve(
                    conn, campaign_id, record.amount_fen, record.source, chosen
                )
                changes.update(approved_amount_fen=record.amount_fen, fund_source_id=fund_id)
                audit.update(amount=format_yuan(record.amount_fen), fund_source=source)
            elif isinstance(record, Pay):
                funds.pay(conn, record.fund_id, record.amount_fen)
            elif isinstance(record, Release):
                funds.release(conn, record.fund_id, record.amount_fen)
            else:
                raise TypeError(f"no writer for {record!r}")
        return Outcome(changes, audit)

    def plan_records(
        self,
        conn: Connection,
        items: Sequence[tuple[Loaded[GuardContext], tuple[object, ...]]],
    ) -> Plan:
        """The funds shared out in item order — or, where a campaign puts some cases first when
        money runs short (同等条件优先考虑新入学), in that order, equal cases in item order, and
        the campaign's cases waiting at the last level outside the call keeping their amount
        (funds.Claim) before the items they come before: the single approval's rule
        (priority.check_single_approval)."""
        if not any(
            loaded.facts.campaign.aid_priority is not None and records for loaded, records in items
        ):
            return funds.plan(conn, [(loaded.facts.campaign.id, recs) for loaded, recs in items])
        # (priority key, 0 for an item / 1 for a case outside the call, index): a case outside
        # keeps money only from the items after it in the order, never from its equals.
        entries: list[tuple[tuple[int, ...], int, int]] = []
        for i, (loaded, _records) in enumerate(items):
            entries.append(
                (
                    priority.priority_key(
                        loaded.facts.applicant, loaded.facts.campaign.aid_priority
                    ),
                    0,
                    i,
                )
            )
        outside: list[tuple[int, tuple[object, ...]]] = []
        waiting_outside: list[priority.Waiting] = []
        reserving = {
            loaded.facts.campaign.id: loaded.facts.campaign
            for loaded, records in items
            if loaded.facts.campaign.aid_priority is not None
            and any(isinstance(r, Reserve) for r in records)
        }
        in_call = {loaded.id for loaded, _records in items}
        for campaign_id, rules in sorted(reserving.items()):
            for waiting in priority.waiting_at_last(conn, rules, in_call):
                entries.append((waiting.key, 1, len(items) + len(outside)))
                outside.append((campaign_id, (funds.Claim(waiting.keeps_fen),)))
                waiting_outside.append(waiting)
        entries.sort()
        order = [k for _key, _outside, k in entries]
        every = [(loaded.facts.campaign.id, records) for loaded, records in items] + outside
        planned = funds.plan(conn, [every[k] for k in order])
        position = {item: k for k, item in enumerate(order)}
        outcomes = [planned.outcomes[position[i]] for i in range(len(items))]
        for i, outcome in enumerate(outcomes):
            # Refused for money: say so as the single path does when the cases before kept it.
            rules = items[i][0].facts.campaign
            if isinstance(outcome, InsufficientFunds) and rules.id in reserving:
                before = [
                    waiting_outside[k - len(items)]
                    for k in order[: position[i]]
                    if k >= len(items) and outside[k - len(items)][0] == rules.id
                ]
                outcomes[i] = priority.held_for(conn, rules, before, items[i][1]) or outcome
        return Plan(outcomes, lambda conn, won: planned.write(conn, [position[k] for k in won]))

    def moved_many(
        self, conn: Connection, moves: Sequence[tuple[Loaded[GuardContext], CaseTransition]]
    ) -> None:
        count_state_changes(
            conn,
            (
                (case.facts.campaign.id, case.facts.case.unit_path, case.state, str(t.dest))
                for case, t in moves
            ),
        )

    def moved(
        self, conn: Connection, loaded: Loaded[GuardContext], transition: CaseTransition
    ) -> None:
        """Dashboard counters of every unit on the case's path, in this same transaction."""
        case = loaded.facts.case
        count_state_change(
            conn, loaded.facts.campaign.id, case.unit_path, loaded.state, str(transition.dest)
        )

    def moved_with(
        self, moved: CTE, loaded: Loaded[GuardContext], transition: CaseTransition
    ) -> tuple[CTE, dict[str, Any]] | None:
        """The same counters, in the statement that writes the case's row."""
        case = loaded.facts.case
        return counted_with(
            moved, loaded.facts.campaign.id, case.unit_path, loaded.state, str(transition.dest)
        )

    def fires_after(self, loaded: Loaded[GuardContext], transition: CaseTransition) -> bool:
        return skips_publicity(transition.event, transition.dest, loaded.facts)

    def messages(
        self,
        conn: Connection,
        loaded: Loaded[GuardContext],
        transition: CaseTransition,
        notification: str,
        *,
        key: str,
        opinion: str | None,
        at: dt.datetime,
    ) -> tuple[list[Outgoing], list[InboxItem]]:
        """The unit that filed the case is told, by e-mail (when it has an address) and in its
        inbox: templates `<notification>.txt` and `<notification>_subject.txt`."""
        unit = conn.execute(_unit_of_case, {"case_id": loaded.id}).one()
        link = f"{get_settings().base_url.rstrip('/')}/cases/{loaded.id}"
        context = {
            "unit_name": unit.name,
            "case_id": loaded.id,
            "student_name": unit.student_name,
            "event_label": transition.label,
            "state_label": MACHINE.state_labels[transition.dest],
            "opinion": opinion or "",
            "link": link,
        }
        subject = render(f"{notification}_subject.txt", **context).strip()
        text = render(f"{notification}.txt", **context)
        outgoing = (
            [
                Outgoing(
                    f"{key}:email",
                    Channel.EMAIL.value,
                    unit.contact_email,
                    subject,
                    text,
                    unit_code=unit.code,
                )
            ]
            if unit.contact_email
            else []
        )
        return outgoing, [InboxItem(f"{key}:inbox", unit.code, subject, text, link)]


_LOADED_AT = operator.itemgetter(*(_AT[k] for k in ("id", "state", "version", "audit_seq")))
_HEAD_AT = _AT["audit_head"]


def _loaded(row: Sequence[Any], facts: GuardContext) -> Loaded[GuardContext]:
    case_id, state, version, audit_seq = _LOADED_AT(row)
    return Loaded(case_id, state, version, audit_seq, row[_HEAD_AT], facts)


CASES = CaseNoun()
CASES.check_declaration()


def apply_event(
    conn: Connection,
    *,
    case_id: int,
    event: CaseEvent | str,
    expected_version: int,
    actor: Actor,
    clock: Clock,
    opinion: str | None = None,
    data: dict[str, Any] | None = None,
) -> Fired:
    """Fires `event` on the case, or raises (NotFound, VersionConflict, EventNotAllowed,
    PermissionDenied, ValidationFailed, GuardFailed, InsufficientFunds). Does not commit."""
    fired = fire(
        conn,
        CASES,
        subject_id=case_id,
        event=str(event),
        expected_version=expected_version,
        actor=actor,
        clock=clock,
        opinion=opinion,
        data=data,
    )
    if skips_publicity(fired.event, fired.state, _facts_of(fired)):
        return pass_publicity_at_once(conn, [fired], clock).get(fired.id, fired)
    return fired


def skips_publicity(event: str, state: str, facts: GuardContext) -> bool:
    """A verify that left the case ready for publicity, in a campaign whose notice asks for
    none (publicity_working_days 0, Dalian 2011): `pass_publicity_at_once` moves it on."""
    return (
        event == CaseEvent.VERIFY
        and state == CaseState.READY_FOR_PUBLICITY
        and facts.campaign.publicity_working_days == 0
    )


def pass_publicity_at_once(
    conn: Connection, verified: Sequence[Fired], clock: Clock
) -> dict[int, Fired]:
    """A campaign whose notice asks for no publicity (publicity_working_days 0, Dalian 2011):
    its verified cases enter publicity and leave it in the verify's own transaction, fired by
    the system (`schedule.run`) as a list and the sweep would, so the trail says what happened
    — 核查通过, 公示 (0 working days), 公示期满 — and every reader of states sees the one path.
    (A second `verify` route straight to approval would move approval's rank in the machine
    and the factories' path for every campaign.) Which campaign asks none is in the facts the
    verify was decided on: no statement for the others. Returns the cases moved on; a refusal
    here is a broken assumption and is raised, taking the whole transaction back."""
    without = {f.id for f in verified if skips_publicity(f.event, f.state, _facts_of(f))}
    if not without:
        return {}
    moved = {f.id: f for f in verified if f.id in without}
    for event in (CaseEvent.PUBLISH, CaseEvent.END_PUBLICITY):
        items = [Item(f.id, f.version) for f in moved.values()]
        for result in fire_many(
            conn, CASES, items=items, event=str(event), actor=SCHEDULER, clock=clock
        ):
            if result.fired is None:
                raise result.error or ItemFailed()
            # What the caller fired (verify), where the case now is and its version.
            moved[result.id] = dataclasses.replace(
                moved[result.id],
                state=result.fired.state,
                version=result.fired.version,
                audit_seq=result.fired.audit_seq,
            )
    return moved


def _facts_of(fired: Fired) -> GuardContext:
    facts = fired.facts
    assert isinstance(facts, GuardContext), "a case's transition carries its facts"
    return facts
