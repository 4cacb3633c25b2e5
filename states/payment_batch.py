"""The life of one payment batch (发放批次), as data.

    draft → exported (the bank's 代发 file downloaded; again for each download, hash kept)
          → result_imported (the bank's result file applied: paid cases to follow-up,
            failed ones back to payable) → closed (everything paid, or the failures taken
            into a retry batch)

Pure: no database, no HTTP. The noun that drives it is `workflow.payments.engine`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from jinqiu.states.case_lifecycle import Permission
from jinqiu.states.machine import Kind, Machine, State, Transition


class BatchState(StrEnum):
    DRAFT = "draft"  # 草稿: built, its file not yet given to the bank
    EXPORTED = "exported"  # 已导出: the 代发 file is with the bank
    RESULT_IMPORTED = "result_imported"  # 已回盘: the bank's result applied
    CLOSED = "closed"  # 已关闭


class BatchEvent(StrEnum):
    EXPORT = "export"
    IMPORT_RESULT = "import_result"
    CLOSE = "close"


S = BatchState
E = BatchEvent
P = Permission

MACHINE: Machine[BatchState, BatchEvent, Any] = Machine(
    name="payment_batch",
    label="发放批次状态机",
    states=(
        State(S.DRAFT, "草稿"),
        State(S.EXPORTED, "已导出代发文件"),
        State(S.RESULT_IMPORTED, "已导入银行回盘"),
        State(S.CLOSED, "已关闭", Kind.TERMINAL),
    ),
    events=BatchEvent,
    transitions=(
        # Each download is audited; the same format always hashes the same (guard).
        Transition(
            E.EXPORT,
            (S.DRAFT, S.EXPORTED),
            S.EXPORTED,
            P.PAY_CASE,
            "导出代发文件",
            guards=("file_unchanged",),
            effects=("record_file",),
            data_keys=("format", "sha256"),
        ),
        Transition(
            E.IMPORT_RESULT,
            (S.EXPORTED,),
            S.RESULT_IMPORTED,
            P.PAY_CASE,
            "导入银行回盘",
            effects=("record_result",),
            data_keys=("sha256", "paid", "failed"),
        ),
        Transition(
            E.CLOSE,
            (S.RESULT_IMPORTED,),
            S.CLOSED,
            P.PAY_CASE,
            "关闭批次",
            effects=("note_retry_batch",),
            data_keys=("retry_batch",),
        ),
    ),
    initial=S.DRAFT,
)

STATE_NAMES = MACHINE.state_labels
