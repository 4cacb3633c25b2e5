"""A case whose bank file is out with the bank (in a payment batch) is paid, or found failed,
by that batch's result only; and it cannot be cancelled meanwhile (the bank may still pay it)."""

from __future__ import annotations

from jinqiu.workflow.cases.facts import GuardContext
from jinqiu.workflow.errors import Reason

BATCH_KEY = "payment_batch"  # the event's data key naming the batch whose result is applied


def paid_through_its_batch(ctx: GuardContext) -> list[Reason]:
    held_by, named = ctx.case.payment_batch_id, ctx.data.get(BATCH_KEY)
    if held_by is None and named is None:
        return []
    if held_by is None:
        return [Reason("not_in_payment_batch", f"该案件不在发放批次 {named} 中")]
    if named != held_by:
        return [
            Reason(
                "in_payment_batch",
                f"该案件在发放批次 {held_by} 中，须以该批次的银行回盘办理",
            )
        ]
    return []


def not_in_open_batch(ctx: GuardContext) -> list[Reason]:
    held_by = ctx.case.payment_batch_id
    if held_by is None:
        return []
    return [Reason("in_payment_batch", f"该案件在发放批次 {held_by} 中，等待银行回盘")]
