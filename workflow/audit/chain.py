"""Hash chain of audit entries: each entry's hash covers its fields and the previous hash,
and the case row keeps the head (hash and length), so an edited, deleted or inserted entry
breaks the chain at a place `verify_chains` names.

The audit knows entries, not the rows that keep their heads: the caller passes the heads
(`cases.trail.verify_case_chains` for the cases), so the audit sits below every writer."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, Table, insert, select

from jinqiu.workflow.audit.models import AuditEntry
from jinqiu.workflow.driver import canonical_json, driver_write, processed_rows, unnest
from jinqiu.workflow.readonly import readonly

GENESIS = "0" * 64

audit_table = AuditEntry.__table__  # type: ignore[attr-defined]


@lru_cache(maxsize=256)  # a bulk transition hashes thousands of entries made at one instant
def canonical_time(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def entry_hash(
    *,
    prev_hash: str,
    case_id: int,  # the subject's id (for the case's trail, the case)
    seq: int,
    actor: str,
    actor_unit: str | None,
    event: str,
    from_state: str | None,
    to_state: str,
    opinion: str | None,
    data: dict[str, Any],
    at: dt.datetime,
    data_json: str | None = None,
) -> str:
    """SHA-256 of the previous hash followed by the canonical JSON of [case_id, seq, actor,
    actor_unit, event, from_state, to_state, opinion, data, at]. `data_json`: `data` already
    encoded canonically (a bulk shares one data object among thousands of entries)."""
    # A JSON list is its elements' encodings joined by commas, so the part after the two
    # numbers — the same for every entry of one bulk event — is encoded once.
    if data_json is None:
        data_json = canonical_json(data)
    tail = _tail(actor, actor_unit, event, from_state, to_state, opinion, data_json, at)
    body = f"[{int(case_id)},{int(seq)},{tail}"
    return hashlib.sha256((prev_hash + body).encode("utf-8")).hexdigest()


@lru_cache(maxsize=256)
def _tail(
    actor: str,
    actor_unit: str | None,
    event: str,
    from_state: str | None,
    to_state: str,
    opinion: str | None,
    data_json: str,
    at: dt.datetime,
) -> str:
    head = canonical_json([actor, actor_unit, event, from_state, to_state, opinion])
    return f"{head[1:-1]},{data_json},{canonical_json(canonical_time(at))}]"


@readonly()
class Link:
    """One audit entry chained to its subject's head: the row to insert and the new head."""

    row: dict[str, Any]
    seq: int
    hash: str


def chain_entry(
    *,
    subject_column: str,
    subject_id: int,
    head_seq: int,
    head_hash: str | None,
    actor: str,
    actor_unit: str | None,
    event: str,
    from_state: str | None,
    to_state: str,
    opinion: str | None,
    data: dict[str, Any],
    at: dt.datetime,
    data_json: str | None = None,
) -> Link:
    """The next entry of a subject's chain, given the head its row records (length and hash;
    an empty hash before the first entry). The one way every writer makes an audit entry: the
    engine, case creation and correction, bulk transitions and the test factories."""
    prev_hash = head_hash or GENESIS
    seq = head_seq + 1
    digest = entry_hash(
        prev_hash=prev_hash,
        case_id=subject_id,
        seq=seq,
        actor=actor,
        actor_unit=actor_unit,
        event=event,
        from_state=from_state,
        to_state=to_state,
        opinion=opinion,
        data=data,
        at=at,
        data_json=data_json,
    )
    row = {
        subject_column: subject_id,
        "seq": seq,
        "actor": actor,
        "actor_unit": actor_unit,
        "event": event,
        "from_state": from_state,
        "to_state": to_state,
        "opinion": opinion,
        "data": data,
        "at": at,
        "prev_hash": prev_hash,
        "hash": digest,
    }
    return Link(row, seq, digest)


def append_entries(conn: Connection, table: Table, links: Sequence[Link]) -> None:
    """Inserts chained entries (one statement, many rows); the caller writes the heads onto the
    subjects' rows in the same transaction. On SQLite the entries go to the driver's executemany
    with the columns' own bind processing (SQLAlchemy's per-statement work costs more there than
    the insert); on PostgreSQL many entries go as one INSERT … SELECT FROM unnest."""
    if not links:
        return
    keys = tuple(links[0].row)
    rows = [link.row for link in links]
    preparer = conn.dialect.identifier_preparer
    into = f"INSERT INTO {preparer.format_table(table)} ({', '.join(map(preparer.quote, keys))})"
    if conn.dialect.name != "sqlite":
        if len(links) == 1:  # one transition: SQLAlchemy's statement, compiled once per table
            statement = _inserts.get(table)
            if statement is None:
                statement = _inserts[table] = insert(table).inline()
            driver_write(conn, statement, rows[0])
            return
        # A bulk: one statement over one typed array per column (not one execution per row).
        source, arrays = unnest(conn, table, keys, rows)
        conn.exec_driver_sql(f"{into} SELECT * FROM {source}", arrays)
        return
    values = ", ".join(["?"] * len(keys))
    conn.exec_driver_sql(f"{into} VALUES ({values})", processed_rows(conn, table, keys, rows))


_inserts: dict[Table, Any] = {}


@dataclass(frozen=True, slots=True)
class BrokenChain:
    case_id: int  # the subject's id (a case's, or another noun's: `noun`)
    seq: int
    entry_id: int | None
    problem: str
    noun: str = "case"

    def describe(self) -> str:
        where = f"audit entry #{self.entry_id}" if self.entry_id is not None else "(missing entry)"
        return f"{self.noun} {self.case_id}, seq {self.seq}, {where}: {self.problem}"


def verify_chains(
    conn: Connection,
    heads: Mapping[int, tuple[int, str]],
    *,
    table: Table | None = None,
    subject_column: str = "case_id",
    noun: str = "case",
) -> Iterator[BrokenChain]:
    """Yields the first break of every broken chain, in subject order. `heads`: for each
    subject, the length of its chain and the hash of its last entry, as its row records them.
    By default the cases' chains; another noun names its audit table and subject column."""
    for broken in _verify(conn, heads, table if table is not None else audit_table, subject_column):
        yield BrokenChain(broken.case_id, broken.seq, broken.entry_id, broken.problem, noun)


def _verify(
    conn: Connection, heads: Mapping[int, tuple[int, str]], table: Table, subject_column: str
) -> Iterator[BrokenChain]:
    subject = table.c[subject_column]
    # Rows read as `case_id` whatever the subject's column is called.
    columns = [table] if subject_column == "case_id" else [table, subject.label("case_id")]
    rows = conn.execution_options(yield_per=5000).execute(
        select(*columns).order_by(subject, table.c.seq)
    )
    current: int | None = None
    prev_hash, expected_seq, broken = GENESIS, 1, False
    seen: set[int] = set()
    ids_by_seq: dict[int, int] = {}  # of the current case's intact chain

    def close(case_id: int) -> Iterator[BrokenChain]:
        """The chain is intact entry by entry; does it end where the case row says it does?"""
        if broken:
            return
        length, head = heads.get(case_id, (0, ""))
        found = expected_seq - 1
        if found > length:
            yield BrokenChain(
                case_id,
                length + 1,
                ids_by_seq.get(length + 1),
                f"the case records {length} entries but the chain goes on to seq "
                f"{found} (an entry was added)",
            )
        elif found < length:
            yield BrokenChain(
                case_id,
                found + 1,
                None,
                f"the case records {length} entries but the chain ends at seq "
                f"{found} (an entry was deleted)",
            )
        elif prev_hash != head:
            yield BrokenChain(
                case_id,
                found,
                ids_by_seq.get(found),
                "the last entry is not the one the case row recorded (replaced)",
            )

    for row in rows:
        if row.case_id != current:
            if current is not None:
                yield from close(current)
            current, prev_hash, expected_seq, broken = row.case_id, GENESIS, 1, False
            seen.add(row.case_id)
            ids_by_seq = {}
        if broken:
            continue
        if row.seq != expected_seq:
            broken = True
            yield BrokenChain(
                row.case_id,
                expected_seq,
                row.id,
                f"expected seq {expected_seq}, found {row.seq} (an entry is missing)",
            )
            continue
        if row.prev_hash != prev_hash:
            broken = True
            yield BrokenChain(
                row.case_id, row.seq, row.id, "prev_hash does not match the entry before"
            )
            continue
        recomputed = entry_hash(
            prev_hash=row.prev_hash,
            case_id=row.case_id,
            seq=row.seq,
            actor=row.actor,
            actor_unit=row.actor_unit,
            event=row.event,
            from_state=row.from_state,
            to_state=row.to_state,
            opinion=row.opinion,
            data=row.data,
            at=row.at,
        )
        if recomputed != row.hash:
            broken = True
            yield BrokenChain(row.case_id, row.seq, row.id, "contents were altered (hash mismatch)")
            continue
        ids_by_seq[row.seq] = row.id
        prev_hash, expected_seq = row.hash, expected_seq + 1
    if current is not None:
        yield from close(current)
    for case_id, (length, _head) in heads.items():
        if length > 0 and case_id not in seen:
            yield BrokenChain(case_id, 1, None, f"the case records {length} entries but none exist")
