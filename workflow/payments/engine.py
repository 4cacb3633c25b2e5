"""The payment batch noun: how the engine (`workflow.engine`) loads a batch, who sees it (the
units of its subtree), its guard and effects. Its machine is `states.payment_batch`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from sqlalchemy import Connection, bindparam, select

from jinqiu.states.payment_batch import MACHINE
from jinqiu.workflow.engine import Effect, Guard, Loaded, Noun, Outcome
from jinqiu.workflow.errors import Reason
from jinqiu.workflow.payments.models import PaymentBatch, PaymentBatchAudit
from jinqiu.workflow.roles import Actor
from jinqiu.workflow.units.models import Unit

batch_t = PaymentBatch.__table__  # type: ignore[attr-defined]
batch_audit_t = PaymentBatchAudit.__table__  # type: ignore[attr-defined]
unit_t = Unit.__table__  # type: ignore[attr-defined]

FILE_FORMATS = ("csv", "xlsx")


@dataclass(frozen=True, slots=True)
class BatchFacts:
    id: int
    campaign_id: int
    unit_path: str
    hashes: Mapping[str, str | None]  # file format → the SHA-256 recorded for it
    data: Mapping[str, Any]


def file_unchanged(facts: BatchFacts) -> list[Reason]:
    """A bank file downloaded again is the same file, byte for byte (the rows are fixed)."""
    recorded = facts.hashes.get(str(facts.data.get("format")))
    if recorded is not None and recorded != facts.data.get("sha256"):
        return [Reason("file_changed", "代发文件与首次导出的不一致，请联系管理员核查")]
    return []


def record_file(facts: BatchFacts, opinion: str | None) -> Outcome:
    file_format, sha256 = str(facts.data["format"]), str(facts.data["sha256"])
    return Outcome(
        changes={f"{file_format}_sha256": sha256},
        audit={"format": file_format, "sha256": sha256},
    )


def record_result(facts: BatchFacts, opinion: str | None) -> Outcome:
    result = {k: facts.data[k] for k in ("sha256", "paid", "failed")}
    return Outcome(
        changes={
            "result_sha256": result["sha256"],
            "paid": result["paid"],
            "failed": result["failed"],
        },
        audit=result,
    )


def note_retry_batch(facts: BatchFacts, opinion: str | None) -> Outcome:
    retry = facts.data.get("retry_batch")
    return Outcome(audit={} if retry is None else {"retry_batch": retry})


_load = (
    select(batch_t, unit_t.c.path.label("unit_path"))
    .join(unit_t, unit_t.c.id == batch_t.c.unit_id)
    .where(batch_t.c.id == bindparam("batch_id"))
)


class BatchNoun(Noun[BatchFacts]):
    machine = MACHINE
    table = batch_t
    audit_table = batch_audit_t
    audit_subject = "batch_id"
    label = "发放批次"
    guards: Mapping[str, Guard[BatchFacts]] = MappingProxyType({"file_unchanged": file_unchanged})
    effects: Mapping[str, Effect[BatchFacts]] = MappingProxyType(
        {
            "record_file": record_file,
            "record_result": record_result,
            "note_retry_batch": note_retry_batch,
        }
    )

    def load(
        self, conn: Connection, subject_id: int, *, today: dt.date, data: Mapping[str, Any]
    ) -> Loaded[BatchFacts] | None:
        row = conn.execute(_load, {"batch_id": subject_id}).first()
        if row is None:
            return None
        facts = BatchFacts(
            id=row.id,
            campaign_id=row.campaign_id,
            unit_path=row.unit_path,
            hashes={"csv": row.csv_sha256, "xlsx": row.xlsx_sha256},
            data=data,
        )
        return Loaded(row.id, row.state, row.version, row.audit_seq, row.audit_head, facts)

    def visible(self, actor: Actor, loaded: Loaded[BatchFacts]) -> bool:
        return actor.sees(loaded.facts.unit_path)


BATCHES = BatchNoun()
BATCHES.check_declaration()
