"""Every employment record's audit chain checked against the head its row keeps (`jinqiu audit
verify`, after the cases' and the lists')."""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import Connection, select

from jinqiu.workflow.audit.chain import BrokenChain, verify_chains
from jinqiu.workflow.employment.engine import record_audit_t, record_t


def verify_record_chains(conn: Connection) -> Iterator[BrokenChain]:
    """The first break of every broken record chain, in record order."""
    heads = {
        row.id: (row.audit_seq, row.audit_head)
        for row in conn.execute(select(record_t.c.id, record_t.c.audit_seq, record_t.c.audit_head))
    }
    return verify_chains(
        conn, heads, table=record_audit_t, subject_column="record_id", noun="employment record"
    )
