"""Every publicity list's audit chain checked against the head its row keeps (`jinqiu audit
verify`, after the cases')."""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import Connection, select

from jinqiu.workflow.audit.chain import BrokenChain, verify_chains
from jinqiu.workflow.publicity_lists.engine import list_audit_t, list_t


def verify_list_chains(conn: Connection) -> Iterator[BrokenChain]:
    """The first break of every broken list chain, in list order."""
    heads = {
        row.id: (row.audit_seq, row.audit_head)
        for row in conn.execute(select(list_t.c.id, list_t.c.audit_seq, list_t.c.audit_head))
    }
    return verify_chains(
        conn, heads, table=list_audit_t, subject_column="list_id", noun="publicity list"
    )
