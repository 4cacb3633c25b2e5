"""Payment batches as finance works them: build one per fund source from the cases whose
approval is complete, export the bank's 代发 file, apply the bank's result (paid cases to
follow-up, set-based through the engine; failed ones stay payable), correct a card, and put the
failed cases into a retry batch. Each call runs in the caller's transaction: a refusal leaves
nothing written."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, bindparam, insert, literal, select, update

from jinqiu.states import CaseEvent, CaseState
from jinqiu.states.payment_batch import BatchEvent, BatchState
from jinqiu.workflow.audit.chain import append_entries, chain_entry
from jinqiu.workflow.audit.models import AuditEntry, PiiAccess
from jinqiu.workflow.banks import bank_of
from jinqiu.workflow.campaigns.models import Campaign, FundSource
from jinqiu.workflow.cases.engine import CASES
from jinqiu.workflow.cases.guards.payment_batch import BATCH_KEY
from jinqiu.workflow.cases.models import Case, Student, Worker
from jinqiu.workflow.cases.service import AMEND_EVENT, append_case_entry
from jinqiu.workflow.clock import Clock
from jinqiu.workflow.engine import fire
from jinqiu.workflow.engine.bulk import Item, fire_many
from jinqiu.workflow.errors import (
    Conflict,
    NotFound,
    PermissionDenied,
    ValidationFailed,
    VersionConflict,
)
from jinqiu.workflow.money import format_yuan
from jinqiu.workflow.payments import bankfile
from jinqiu.workflow.payments.cards import Names, card_reasons
from jinqiu.workflow.payments.engine import BATCHES, FILE_FORMATS, batch_audit_t, batch_t
from jinqiu.workflow.payments.models import MAX_BATCH_CASES, PaymentBatchItem
from jinqiu.workflow.roles import Actor
from jinqiu.workflow.units.models import Unit, in_subtree

item_t = PaymentBatchItem.__table__  # type: ignore[attr-defined]
case_t = Case.__table__  # type: ignore[attr-defined]
worker_t = Worker.__table__  # type: ignore[attr-defined]
student_t = Student.__table__  # type: ignore[attr-defined]
unit_t = Unit.__table__  # type: ignore[attr-defined]
fund_t = FundSource.__table__  # type: ignore[attr-defined]
campaign_t = Campaign.__table__  # type: ignore[attr-defined]
audit_t = AuditEntry.__table__  # type: ignore[attr-defined]
pii_t = PiiAccess.__table__  # type: ignore[attr-defined]

CREATE_EVENT = "create"  # the batch's first audit entry (not a transition of its machine)
PAID, FAILED = "paid", "failed"  # payment_batch_item.outcome


def _pay_permission() -> str:
    (transition,) = CASES.machine.of_event(CaseEvent.PAY)
    return str(transition.permission)


def may_pay(actor: Actor) -> bool:
    return actor.may(_pay_permission())


def _require_finance(actor: Actor) -> None:
    if not may_pay(actor):
        raise PermissionDenied("只有财务人员可以办理发放", {"permission": _pay_permission()})


@dataclass
class BatchBuilt:
    id: int
    state: str
    case_ids: list[int]
    total_fen: int
    skipped: list[dict[str, Any]] = field(default_factory=list)


# -- building a batch -----------------------------------------------------------------------------

_payable = (
    select(
        case_t.c.id,
        case_t.c.version,
        case_t.c.approved_amount_fen,
        unit_t.c.path,
        worker_t.c.name.label("worker_name"),
        worker_t.c.bank_card_number,
        worker_t.c.bank_card_holder,
        student_t.c.name.label("student_name"),
        student_t.c.guardian_name,
    )
    .select_from(
        case_t.join(unit_t, unit_t.c.id == case_t.c.unit_id)
        .join(worker_t, worker_t.c.id == case_t.c.worker_id)
        .join(student_t, student_t.c.id == case_t.c.student_id)
    )
    .order_by(case_t.c.id)
)


def build_batch(
    conn: Connection,
    *,
    campaign_id: int,
    fund_source: str,
    unit_code: str | None,
    case_ids: Sequence[int] | None,
    actor: Actor,
    clock: Clock,
    retry_of: int | None = None,
) -> BatchBuilt:
    """A draft batch of the campaign's cases waiting for payment from `fund_source`, in the
    unit's subtree (default: the caller's unit), not in another batch's bank file. Named cases
    (`case_ids`) must all be payable with a valid card (422 naming each that is not); without
    them every payable case is taken and those with an invalid card are listed as skipped."""
    _require_finance(actor)
    unit = conn.execute(
        select(unit_t.c.id, unit_t.c.path).where(unit_t.c.code == (unit_code or actor.unit_code))
    ).first()
    if unit is None or not actor.sees(unit.path):
        raise ValidationFailed(
            f"单位 {unit_code} 不存在",
            [{"field": "unit", "code": "unknown_unit", "message": "单位不存在"}],
        )
    fund = conn.execute(
        select(fund_t.c.id, fund_t.c.source).where(
            fund_t.c.campaign_id == campaign_id, fund_t.c.source == fund_source
        )
    ).first()
    if fund is None:
        raise ValidationFailed(
            f"本活动没有资金来源 {fund_source}",
            [{"field": "fund_source", "code": "unknown_fund_source", "message": "资金来源不存在"}],
        )
    if case_ids is not None and len(case_ids) > MAX_BATCH_CASES:
        raise ValidationFailed(
            f"一个批次至多 {MAX_BATCH_CASES} 个案件",
            [{"field": "case_ids", "code": "too_many", "message": "案件过多"}],
        )
    query = _payable.where(
        case_t.c.campaign_id == campaign_id,
        case_t.c.state == CaseState.DISBURSEMENT.value,
        case_t.c.fund_source_id == fund.id,
        case_t.c.payment_batch_id.is_(None),
        in_subtree(unit_t.c.path, unit.path),
    )
    if case_ids is not None:
        query = query.where(case_t.c.id.in_(sorted(set(case_ids))))
    if conn.dialect.name == "postgresql":  # held until the commit: no transition moves them
        query = query.with_for_update(of=case_t)
    rows = list(conn.execute(query))
    taken, refused = [], []
    for r in rows:
        reasons = card_reasons(
            r.bank_card_number,
            r.bank_card_holder,
            Names(r.worker_name, r.student_name, r.guardian_name),
        )
        if reasons:
            refused.append((r.id, reasons))
        else:
            taken.append(r)
    if case_ids is not None:
        found = {r.id for r in rows}
        problems = [
            {
                "field": "case_ids",
                "code": "not_payable",
                "message": f"案件 {c}：不在待发放状态、不属于该资金来源或已在其他批次中",
            }
            for c in dict.fromkeys(case_ids)
            if c not in found
        ] + [
            {"field": "case_ids", "code": reason.code, "message": f"案件 {c}：{reason.message}"}
            for c, reasons in refused
            for reason in reasons
        ]
        if problems:
            raise ValidationFailed(f"有 {len(problems)} 处问题，批次未建立", problems)
    if not taken:
        raise ValidationFailed(
            "没有可以发放的案件",
            [{"field": "case_ids", "code": "nothing_payable", "message": "没有可以发放的案件"}],
        )
    if len(taken) > MAX_BATCH_CASES:
        taken = taken[:MAX_BATCH_CASES]  # the rest wait for the next batch
    now = clock.now()
    year = conn.execute(
        select(campaign_t.c.year).where(campaign_t.c.id == campaign_id)
    ).scalar_one()
    total = sum(int(r.approved_amount_fen) for r in taken)
    batch_id = int(
        conn.execute(
            insert(batch_t)
            .values(
                campaign_id=campaign_id,
                unit_id=unit.id,
                fund_source_id=fund.id,
                retry_of=retry_of,
                state=BatchState.DRAFT.value,
                version=1,
                rows=len(taken),
                total_fen=total,
                purpose=f"{year}年金秋助学金",
                audit_seq=0,
                audit_head="",
                created_by=actor.username,
                created_at=now,
                updated_at=now,
            )
            .returning(batch_t.c.id)
        ).scalar_one()
    )
    conn.execute(
        insert(item_t),
        [
            {
                "batch_id": batch_id,
                "position": n,
                "case_id": r.id,
                "holder": r.bank_card_holder or r.worker_name,
                "card_number": r.bank_card_number,
                "bank_name": bank_of(r.bank_card_number),
                "amount_fen": r.approved_amount_fen,
            }
            for n, r in enumerate(taken, start=1)
        ],
    )
    # The cases join the batch: a new version each, so a single `pay` decided on the old one
    # loses its race (version check) instead of paying a case the bank is about to pay. One
    # statement: the rows read above are held (PostgreSQL FOR UPDATE; SQLite's writer holds the
    # database), so their versions are the ones read.
    joined = conn.execute(
        update(case_t)
        .where(
            case_t.c.id.in_(select(item_t.c.case_id).where(item_t.c.batch_id == batch_id)),
            case_t.c.payment_batch_id.is_(None),
            case_t.c.state == CaseState.DISBURSEMENT.value,
        )
        .values(payment_batch_id=batch_id, version=case_t.c.version + 1, updated_at=now)
    )
    if joined.rowcount != len(taken):
        raise VersionConflict("有案件刚被他人办理，请重新建立批次")
    link = chain_entry(
        subject_column="batch_id",
        subject_id=batch_id,
        head_seq=0,
        head_hash=None,
        actor=actor.username,
        actor_unit=actor.unit_code,
        event=CREATE_EVENT,
        from_state=None,
        to_state=BatchState.DRAFT.value,
        opinion=None,
        data={
            "fund_source": fund.source,
            "rows": len(taken),
            "total": format_yuan(total),
            **({"retry_of": retry_of} if retry_of is not None else {}),
        },
        at=now,
    )
    append_entries(conn, batch_audit_t, [link])
    conn.execute(
        update(batch_t)
        .where(batch_t.c.id == batch_id)
        .values(audit_seq=link.seq, audit_head=link.hash)
    )
    skipped = [{"case_id": c, "reasons": [r.as_dict() for r in reasons]} for c, reasons in refused]
    return BatchBuilt(batch_id, BatchState.DRAFT.value, [r.id for r in taken], total, skipped)


# -- reading a batch ------------------------------------------------------------------------------


def batch_in_scope(conn: Connection, batch_id: int, actor: Actor, *, lock: bool = False) -> Any:
    query = (
        select(
            batch_t,
            unit_t.c.code.label("unit_code"),
            unit_t.c.path.label("unit_path"),
            fund_t.c.source.label("fund_source"),
        )
        .join(unit_t, unit_t.c.id == batch_t.c.unit_id)
        .join(fund_t, fund_t.c.id == batch_t.c.fund_source_id)
        .where(batch_t.c.id == batch_id)
    )
    if lock and conn.dialect.name == "postgresql":
        query = query.with_for_update(of=batch_t)
    row = conn.execute(query).first()
    if row is None or not actor.sees(row.unit_path):
        raise NotFound(f"发放批次 {batch_id} 不存在")
    return row


def batch_items(conn: Connection, batch_id: int) -> list[Any]:
    return list(
        conn.execute(
            select(item_t).where(item_t.c.batch_id == batch_id).order_by(item_t.c.position)
        )
    )


def file_rows(items: Sequence[Any]) -> list[bankfile.FileRow]:
    return [
        bankfile.FileRow(i.position, i.holder, i.card_number, i.bank_name, i.amount_fen)
        for i in items
    ]


# -- the bank file --------------------------------------------------------------------------------


@dataclass(frozen=True)
class BankFile:
    content: bytes
    filename: str
    media_type: str
    sha256: str


MEDIA_TYPES = {
    "csv": "text/csv; charset=gb18030",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def export_file(
    conn: Connection, batch_id: int, file_format: str, *, actor: Actor, clock: Clock, purpose: str
) -> BankFile:
    """The bank's 代发 file; the batch becomes (or stays) exported and keeps the file's hash.
    Its card numbers are in full: every case's read is logged (pii_access), as any full read."""
    _require_finance(actor)
    if file_format not in FILE_FORMATS:
        raise ValidationFailed(
            "格式须为 csv 或 xlsx",
            [{"field": "format", "code": "invalid", "message": "格式须为 csv 或 xlsx"}],
        )
    batch = batch_in_scope(conn, batch_id, actor, lock=True)
    items = batch_items(conn, batch_id)
    rows = file_rows(items)
    if file_format == "csv":
        content = bankfile.export_csv(rows, batch.purpose)
    else:
        content = bankfile.export_xlsx(rows, batch.purpose, f"发放批次{batch_id}")
    sha256 = hashlib.sha256(content).hexdigest()
    fire(
        conn,
        BATCHES,
        subject_id=batch_id,
        event=BatchEvent.EXPORT,
        expected_version=batch.version,
        actor=actor,
        clock=clock,
        data={"format": file_format, "sha256": sha256},
    )
    # Each case's full card number read, logged as every full read is (one statement).
    conn.execute(
        insert(pii_t).from_select(
            ["case_id", "actor", "actor_unit", "fields", "purpose", "at"],
            select(
                item_t.c.case_id,
                literal(actor.username, pii_t.c.actor.type),
                literal(actor.unit_code, pii_t.c.actor_unit.type),
                literal(["worker.bank_card_number"], pii_t.c.fields.type),
                literal(purpose[:64], pii_t.c.purpose.type),
                literal(clock.now(), pii_t.c.at.type),
            ).where(item_t.c.batch_id == batch_id),
        )
    )
    return BankFile(content, f"batch-{batch_id}.{file_format}", MEDIA_TYPES[file_format], sha256)


# -- the bank's result ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Applied:
    paid: int
    failed: int


def import_result(
    conn: Connection, batch_id: int, content: bytes, filename: str, *, actor: Actor, clock: Clock
) -> Applied:
    """Validates the whole result file against the batch, then applies it in this transaction:
    paid cases → follow-up and failed ones stay payable (each set at once through the engine),
    the batch → result imported (closed when nothing failed). The same file again is answered
    with what it did the first time, and applied once: the batch row is held while deciding."""
    _require_finance(actor)
    batch = batch_in_scope(conn, batch_id, actor, lock=True)
    sha256 = hashlib.sha256(content).hexdigest()
    if batch.result_sha256 == sha256:
        return Applied(int(batch.paid), int(batch.failed))
    if batch.state != BatchState.EXPORTED.value:
        label = BATCHES.machine.state_labels[batch.state]
        raise Conflict(f"发放批次处于“{label}”，不能导入回盘", {"state": batch.state})
    items = batch_items(conn, batch_id)
    table = bankfile.read_table(content, filename)
    results = bankfile.validate_result(table, file_rows(items), int(batch.total_fen))
    by_position = {i.position: i for i in items}
    paid = [by_position[r.position] for r in results if r.paid]
    failed = [(by_position[r.position], r.reason or "银行退票") for r in results if not r.paid]
    fired = fire(
        conn,
        BATCHES,
        subject_id=batch_id,
        event=BatchEvent.IMPORT_RESULT,
        expected_version=batch.version,
        actor=actor,
        clock=clock,
        data={"sha256": sha256, "paid": len(paid), "failed": len(failed)},
    )
    versions = _versions(conn, batch_id)
    _fire_all(
        conn, CaseEvent.PAY, [i.case_id for i in paid], versions, batch_id, actor, clock, None
    )
    by_reason: dict[str, list[int]] = {}
    for item, reason in failed:
        by_reason.setdefault(reason, []).append(item.case_id)
    for reason, case_ids in by_reason.items():
        _fire_all(
            conn, CaseEvent.PAYMENT_FAILED, case_ids, versions, batch_id, actor, clock, reason
        )
    conn.execute(update(item_t).where(item_t.c.batch_id == batch_id).values(outcome=PAID))
    if failed:
        conn.execute(
            update(item_t)
            .where(item_t.c.id == bindparam("b_id"))
            .values(outcome=FAILED, failure_reason=bindparam("reason")),
            [{"b_id": i.id, "reason": reason} for i, reason in failed],
        )
    if not failed:  # nothing left to do with this batch
        fire(
            conn,
            BATCHES,
            subject_id=batch_id,
            event=BatchEvent.CLOSE,
            expected_version=fired.version,
            actor=actor,
            clock=clock,
        )
    return Applied(len(paid), len(failed))


def _versions(conn: Connection, batch_id: int) -> dict[int, int]:
    """The current version of every case of the batch (held: the batch row is locked, and the
    cases cannot leave the batch but through it)."""
    return dict(
        conn.execute(
            select(case_t.c.id, case_t.c.version)
            .join(item_t, item_t.c.case_id == case_t.c.id)
            .where(item_t.c.batch_id == batch_id)
        ).all()
    )


def case_versions(conn: Connection, case_ids: Sequence[int]) -> dict[int, int]:
    """The cases' current versions (what a correction form sends back)."""
    if not case_ids:
        return {}
    rows = conn.execute(select(case_t.c.id, case_t.c.version).where(case_t.c.id.in_(case_ids)))
    return {r.id: r.version for r in rows}


def _fire_all(
    conn: Connection,
    event: CaseEvent,
    case_ids: list[int],
    versions: dict[int, int],
    batch_id: int,
    actor: Actor,
    clock: Clock,
    opinion: str | None,
) -> None:
    """One event on every case named, set-based; any refusal takes the whole import back."""
    if not case_ids:
        return
    results = fire_many(
        conn,
        CASES,
        items=[Item(c, versions[c]) for c in case_ids],
        event=event,
        actor=actor,
        clock=clock,
        opinion=opinion,
        data={BATCH_KEY: batch_id},
    )
    for result in results:
        if result.error is not None:
            raise result.error


# -- after a failure ------------------------------------------------------------------------------


def retry_batch(conn: Connection, batch_id: int, *, actor: Actor, clock: Clock) -> BatchBuilt:
    """A new batch of the failed rows' cases still waiting for payment (their cards corrected),
    from the same fund and unit; the failed batch is closed, naming its retry."""
    _require_finance(actor)
    batch = batch_in_scope(conn, batch_id, actor, lock=True)
    if batch.state != BatchState.RESULT_IMPORTED.value:
        label = BATCHES.machine.state_labels[batch.state]
        raise Conflict(f"发放批次处于“{label}”，没有待重发的失败笔", {"state": batch.state})
    failed = [
        r.case_id
        for r in conn.execute(
            select(item_t.c.case_id)
            .join(case_t, case_t.c.id == item_t.c.case_id)
            .where(
                item_t.c.batch_id == batch_id,
                item_t.c.outcome == FAILED,
                case_t.c.state == CaseState.DISBURSEMENT.value,
            )
            .order_by(item_t.c.position)
        )
    ]
    built = build_batch(
        conn,
        campaign_id=batch.campaign_id,
        fund_source=batch.fund_source,
        unit_code=batch.unit_code,
        case_ids=failed,
        actor=actor,
        clock=clock,
        retry_of=batch_id,
    )
    fire(
        conn,
        BATCHES,
        subject_id=batch_id,
        event=BatchEvent.CLOSE,
        expected_version=batch.version,
        actor=actor,
        clock=clock,
        data={"retry_batch": built.id},
    )
    return built


def correct_bank_card(
    conn: Connection,
    case_id: int,
    *,
    card_number: str,
    holder: str | None,
    reason: str,
    expected_version: int,
    actor: Actor,
    clock: Clock,
) -> int:
    """Finance corrects the card of a case waiting for payment (after a 退票): the new card is
    checked in full, and the change is an audited amendment on the case's chain (old and new
    numbers, masked wherever the history is shown without pii.read). Returns the new version."""
    _require_finance(actor)
    row = conn.execute(
        select(
            case_t,
            unit_t.c.path,
            worker_t.c.name.label("worker_name"),
            worker_t.c.bank_card_number,
            worker_t.c.bank_card_holder,
            worker_t.c.bank_name,
            student_t.c.name.label("student_name"),
            student_t.c.guardian_name,
        )
        .join(unit_t, unit_t.c.id == case_t.c.unit_id)
        .join(worker_t, worker_t.c.id == case_t.c.worker_id)
        .join(student_t, student_t.c.id == case_t.c.student_id)
        .where(case_t.c.id == case_id)
    ).first()
    if row is None or not actor.sees(row.path):
        raise NotFound(f"案件 {case_id} 不存在")
    if row.version != expected_version:
        raise VersionConflict(
            "案件已被他人修改，请刷新后重试",
            {"expected_version": expected_version, "current_version": row.version},
        )
    if row.state != CaseState.DISBURSEMENT.value:
        raise Conflict("只有待发放的案件可以更正银行卡", {"state": row.state})
    if row.payment_batch_id is not None:
        raise Conflict(
            f"该案件在发放批次 {row.payment_batch_id} 中，等待银行回盘，不能更正银行卡",
            {"payment_batch": row.payment_batch_id},
        )
    reasons = card_reasons(
        card_number, holder, Names(row.worker_name, row.student_name, row.guardian_name)
    )
    if reasons:
        raise ValidationFailed(
            "银行卡信息有误：" + "；".join(r.message for r in reasons),
            [
                {
                    "field": "bank_card_holder"
                    if r.code == "card_holder_mismatch"
                    else "bank_card_number",
                    "code": r.code,
                    "message": r.message,
                }
                for r in reasons
            ],
        )
    new = {
        "bank_card_number": card_number,
        "bank_card_holder": holder,
        "bank_name": bank_of(card_number),
    }
    old = {k: getattr(row, k) for k in new}
    changes = {f"worker.{k}": {"from": old[k], "to": v} for k, v in new.items() if old[k] != v}
    conn.execute(update(worker_t).where(worker_t.c.id == row.worker_id).values(**new))
    return append_case_entry(
        conn, row, actor=actor, event=AMEND_EVENT, opinion=reason, data={"changes": changes},
        at=clock.now(),
    )  # fmt: skip
