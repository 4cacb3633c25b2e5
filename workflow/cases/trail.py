"""Every case's audit chain checked against the head its row keeps (`jinqiu audit verify`)."""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import Connection, select

from jinqiu.workflow.audit.chain import BrokenChain, verify_chains
from jinqiu.workflow.cases.models import Case

case_t = Case.__table__  # type: ignore[attr-defined]


def chain_heads(conn: Connection) -> dict[int, tuple[int, str]]:
    """Case id → (entries recorded, hash of the last one)."""
    rows = conn.execute(select(case_t.c.id, case_t.c.audit_seq, case_t.c.audit_head))
    return {row.id: (row.audit_seq, row.audit_head) for row in rows}


def verify_case_chains(conn: Connection) -> Iterator[BrokenChain]:
    """The first break of every broken case chain, in case order."""
    return verify_chains(conn, chain_heads(conn))
