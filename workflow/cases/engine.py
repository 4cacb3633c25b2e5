"""The engine: applies one event to one case, inside the caller's transaction.

    load the case (one joined SELECT) → is the event allowed from this state, for this actor?
    → run every guard, keep every reason → run the effects → write the state with
    `version = version + 1 WHERE version = :expected` → append the audit entry, chained by hash.

Any refusal raises a typed error before or instead of the write, and the caller's transaction
(`with engine.begin()`) rolls back whatever was written: nothing half-happens. The machine is
the declaration of `states.case_lifecycle` (selection by its `transitions` machine, which has
no model: none is attached per case).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update

from jinqiu.states import MACHINE, ApprovalProgress, CaseEvent, CaseState, CaseTransition
from jinqiu.workflow.audit.chain import GENESIS, entry_hash
from jinqiu.workflow.audit.models import AuditEntry
from jinqiu.workflow.campaigns.models import Campaign
from jinqiu.workflow.campaigns.rules import RULES, CampaignRules
from jinqiu.workflow.cases.counters import count_state_change
from jinqiu.workflow.cases.effects import EFFECTS, EffectContext
from jinqiu.workflow.cases.facts import (
    CaseFacts,
    GuardContext,
    StudentFacts,
    WorkerFacts,
)
from jinqiu.workflow.cases.guards import run_guards
from jinqiu.workflow.cases.models import Case, Student, Worker
from jinqiu.workflow.clock import Clock
from jinqiu.workflow.errors import (
    EventNotAllowed,
    GuardFailed,
    NotFound,
    PermissionDenied,
    ValidationFailed,
    VersionConflict,
)
from jinqiu.workflow.roles import Actor, Grant
from jinqiu.workflow.units.models import ACTS_AS, Unit, UnitLevel
from jinqiu.workflow.units.service import acting_levels_on_path

case_t = Case.__table__  # type: ignore[attr-defined]
worker_t = Worker.__table__  # type: ignore[attr-defined]
student_t = Student.__table__  # type: ignore[attr-defined]
unit_t = Unit.__table__  # type: ignore[attr-defined]
campaign_t = Campaign.__table__  # type: ignore[attr-defined]
audit_t = AuditEntry.__table__  # type: ignore[attr-defined]

# Keys clients may put in an event's `data` (declared per transition in states/); anything
# else is refused, never ignored. `override` goes with every event (a manager's override).
EVENT_DATA_KEYS: dict[CaseEvent, frozenset[str]] = {e: MACHINE.data_keys(e) for e in CaseEvent}
COMMON_DATA_KEYS = frozenset({"override"})

# Where the approval chain (the campaign's levels on the case's unit path) is read: in the
# states that wait by level and in those a transition leaves for one.
_NEEDS_CHAIN = frozenset(MACHINE.level_states) | {
    s for t in MACHINE.transitions if t.dest in MACHINE.level_states for s in t.sources
}

_load = (
    select(
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
    )
    .select_from(
        case_t.join(unit_t, unit_t.c.id == case_t.c.unit_id)
        .join(campaign_t, campaign_t.c.id == case_t.c.campaign_id)
        .join(worker_t, worker_t.c.id == case_t.c.worker_id)
        .join(student_t, student_t.c.id == case_t.c.student_id)
    )
    .where(case_t.c.id == bindparam("case_id"))
)

# Built once: the SET clause comes from the parameters' keys (the fixed ones below plus the
# effects' changes), so each combination is compiled once and then found in the compiled cache,
# instead of building, coercing and cache-keying a new UPDATE on every transition.
_write_case = update(case_t).where(
    case_t.c.id == bindparam("b_case_id"), case_t.c.version == bindparam("b_expected_version")
)
# inline(): the new entry's id is not needed, so PostgreSQL gets no `RETURNING audit_entry.id`
# (a result set to send, fetch and process on every transition).
_insert_audit = insert(audit_t).inline()


@dataclass(frozen=True, slots=True)
class TransitionResult:
    id: int
    event: CaseEvent
    from_state: CaseState
    state: CaseState
    version: int
    audit_seq: int


def load_context(conn: Connection, case_id: int, *, today: Any) -> tuple[GuardContext, Any]:
    row = conn.execute(_load, {"case_id": case_id}).first()
    if row is None:
        raise NotFound(f"案件 {case_id} 不存在")
    rules = RULES.get(conn, row.campaign_id, row.rules_token)
    state = CaseState(row.state)
    chain: tuple[int, ...] = ()
    if state in _NEEDS_CHAIN:  # one small query, only where needed
        on_path = acting_levels_on_path(conn, row.unit_path)
        chain = tuple(i for i, level in enumerate(rules.approval_levels) if level in on_path)
    facts = GuardContext(
        case=CaseFacts(
            id=row.id,
            state=state,
            version=row.version,
            approval_step=row.approval_step,
            objection_open=bool(row.objection_open),
            publicity_ends_on=row.publicity_ends_on,
            approved_amount_fen=row.approved_amount_fen,
            fund_source_id=row.fund_source_id,
            payment_failures=row.payment_failures,
            unit_path=row.unit_path,
            approval_chain=chain,
        ),
        worker=WorkerFacts(
            id_number=row.worker_id_number,
            archive_status=row.archive_status,
            archived_on=row.archived_on,
            categories=tuple(row.categories or ()),
        ),
        student=StudentFacts(
            id_number=row.student_id_number,
            education_level=row.education_level,
            tier=row.tier,
            tuition_invoice_fen=row.tuition_invoice_fen,
            already_aided_by=row.already_aided_by,
        ),
        campaign=rules,
        today=today,
    )
    return facts, row


def current_approval_level(case: CaseFacts, rules: CampaignRules) -> str | None:
    """The level an approval case waits at: the next of the campaign's levels on its path."""
    if case.state not in MACHINE.level_states:
        return None
    step = case.pending_step()
    return None if step is None else rules.approval_levels[step]


def transition_for(
    case: CaseFacts, event: CaseEvent, rules: CampaignRules
) -> CaseTransition | None:
    """The lifecycle's transition, the approval route counted along the case's own chain: a
    市直 union's grassroots approval is followed by the city's, the last one."""
    step, levels = case.approval_step, len(rules.approval_levels)
    pending = case.pending_step() if case.state in MACHINE.level_states else None
    if pending is not None:
        step, levels = case.approval_chain.index(pending), len(case.approval_chain)
    return MACHINE.select(case.state, event, ApprovalProgress(step, levels))


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
        acts_as = ACTS_AS.get(UnitLevel(actor.unit_level)) if actor.unit_level else None
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


def _overrides(
    actor: Actor, transition: CaseTransition, data: dict[str, Any]
) -> tuple[frozenset[str], str | None]:
    spec = data.get("override")
    if spec is None:
        return frozenset(), None
    if not isinstance(spec, dict) or set(spec) - {"guards", "reason"}:
        raise ValidationFailed(
            'override 须为 {guards: [...], reason: "..."}',
            [{"field": "data.override", "code": "invalid", "message": "格式不正确"}],
        )
    if not actor.may(Grant.OVERRIDE_GUARD):
        raise PermissionDenied("只有管理人员可以特批越过办理条件")
    guards = spec.get("guards")
    reason = spec.get("reason")
    if not isinstance(guards, list) or not guards or not all(isinstance(g, str) for g in guards):
        raise ValidationFailed(
            "须列出要特批越过的条件",
            [{"field": "data.override.guards", "code": "missing", "message": "必填项缺失"}],
        )
    not_overridable = [g for g in guards if g not in transition.overridable]
    if not_overridable:
        raise ValidationFailed(
            f"这些条件不可特批：{', '.join(not_overridable)}",
            [
                {
                    "field": "data.override.guards",
                    "code": "not_overridable",
                    "message": f"不可特批：{', '.join(not_overridable)}",
                }
            ],
        )
    if not isinstance(reason, str) or not reason.strip():
        raise ValidationFailed(
            "特批须说明理由",
            [{"field": "data.override.reason", "code": "missing", "message": "特批须说明理由"}],
        )
    return frozenset(guards), reason.strip()


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
) -> TransitionResult:
    """Fires `event` on the case, or raises (NotFound, VersionConflict, EventNotAllowed,
    PermissionDenied, ValidationFailed, GuardFailed, InsufficientFunds). Does not commit."""
    try:
        event = CaseEvent(event)
    except ValueError:
        raise ValidationFailed(
            f"未知的事件：{event}",
            [{"field": "event", "code": "unknown_event", "message": "未知的事件"}],
        ) from None
    data = dict(data or {})
    unknown = set(data) - COMMON_DATA_KEYS - EVENT_DATA_KEYS.get(event, frozenset())
    if unknown:
        field = sorted(unknown)[0]
        raise ValidationFailed(
            f"data.{field} 不允许用于事件 {event.value}",
            [
                {"field": f"data.{k}", "code": "extra_forbidden", "message": "不允许的字段"}
                for k in sorted(unknown)
            ],
        )
    now = clock.now()
    facts, row = load_context(conn, case_id, today=now.date())
    case, rules = facts.case, facts.campaign
    if not actor.sees(case.unit_path):
        raise NotFound(f"案件 {case_id} 不存在")  # outside the actor's subtree: not revealed
    if case.version != expected_version:
        raise VersionConflict(
            "案件已被他人修改，请刷新后重试",
            {"expected_version": expected_version, "current_version": case.version},
        )
    transition = transition_for(case, event, rules)
    if transition is None:
        allowed = [e.value for e in allowed_events(actor, case, rules)]
        raise EventNotAllowed(
            f"案件处于“{MACHINE.state_labels[case.state]}”环节，不能执行“{event.value}”",
            {"state": case.state.value, "allowed_events": allowed},
        )
    refusal = refusal_by_role(actor, transition, case, rules)
    if refusal is not None:
        raise PermissionDenied(refusal, {"event": event.value})
    opinion = opinion.strip() if opinion else None
    if transition.opinion_required and not opinion:
        raise ValidationFailed(
            "该操作须填写意见或理由",
            [{"field": "opinion", "code": "missing", "message": "该操作须填写意见或理由"}],
        )
    overridden, override_reason = _overrides(actor, transition, data)
    facts = GuardContext(facts.case, facts.worker, facts.student, rules, facts.today, data)
    reasons = run_guards(transition.guards, facts, skip=overridden)
    if reasons:
        raise GuardFailed(reasons)

    effect = EffectContext(conn=conn, facts=facts, opinion=opinion, data=data)
    for name in transition.effects:
        EFFECTS[name](effect)
    audit_data = effect.audit
    if overridden:
        audit_data["override"] = {"guards": sorted(overridden), "reason": override_reason}

    seq = row.audit_seq + 1
    prev_hash = row.audit_head or GENESIS
    digest = entry_hash(
        prev_hash=prev_hash,
        case_id=case.id,
        seq=seq,
        actor=actor.username,
        actor_unit=actor.unit_code,
        event=event.value,
        from_state=case.state.value,
        to_state=transition.dest.value,
        opinion=opinion,
        data=audit_data,
        at=now,
    )
    written = conn.execute(
        _write_case,
        {
            "b_case_id": case.id,
            "b_expected_version": expected_version,
            "state": transition.dest.value,
            "version": expected_version + 1,
            "audit_seq": seq,
            "audit_head": digest,
            "updated_at": now,
            **effect.changes,
        },
    )
    if written.rowcount != 1:  # a concurrent transition committed first
        raise VersionConflict(
            "案件已被他人修改，请刷新后重试", {"expected_version": expected_version}
        )
    # Dashboard counters of every unit on the case's path, in this same transaction.
    count_state_change(conn, rules.id, case.unit_path, case.state.value, transition.dest.value)
    conn.execute(
        _insert_audit,
        {
            "case_id": case.id,
            "seq": seq,
            "actor": actor.username,
            "actor_unit": actor.unit_code,
            "event": event.value,
            "from_state": case.state.value,
            "to_state": transition.dest.value,
            "opinion": opinion,
            "data": audit_data,
            "at": now,
            "prev_hash": prev_hash,
            "hash": digest,
        },
    )
    return TransitionResult(
        id=case.id,
        event=event,
        from_state=case.state,
        state=transition.dest,
        version=expected_version + 1,
        audit_seq=seq,
    )
