"""The audit hash chain on both databases: three cases with a few transitions each, then someone
with database access edits, deletes, re-dates or forges entries directly in SQL, and
`verify_chains` must name the case, the seq and the entry where each chain breaks."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import Engine, select, text

from jinqiu.workflow.audit.chain import BrokenChain, entry_hash
from jinqiu.workflow.audit.models import AuditEntry
from jinqiu.workflow.cases.trail import verify_case_chains
from jinqiu.workflow.clock import ManualClock
from jinqiu.workflow.db import transaction
from jinqiu.workflow.roles import SCHEDULER
from tests.factories import actor_of, case_row, new_case, weihai
from tests.workflow.cases.test_engine import DISTRICT, GRASSROOTS, fire

audit_t = AuditEntry.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Cases:
    approved: int  # create, submit, verify, publish, end_publicity, approve: 6 entries
    returned: int  # create, submit, return: 3 entries
    submitted: int  # create, submit: 2 entries


@pytest.fixture
def cases(db: Engine, clock: ManualClock) -> Cases:
    _tree, campaign = weihai(db, clock)
    clerk = actor_of(db, GRASSROOTS, "clerk")
    reviewer = actor_of(db, DISTRICT, "reviewer")
    approved, returned, submitted = (new_case(db, clock, campaign, GRASSROOTS) for _ in range(3))
    for case_id in (approved, returned, submitted):
        fire(db, clock, case_id, "submit", clerk)
    clock.set(dt.datetime(2024, 7, 22, 15, 30))
    fire(db, clock, returned, "return", reviewer, opinion="缺少录取通知书复印件")
    clock.set(dt.datetime(2024, 8, 1, 10))
    fire(db, clock, approved, "verify", reviewer, opinion="档案核查无误")
    fire(db, clock, approved, "publish", SCHEDULER)  # as a publicity list fires it
    clock.set(dt.datetime(2024, 8, 9, 10))
    fire(db, clock, approved, "end_publicity", SCHEDULER)
    fire(db, clock, approved, "approve", actor_of(db, GRASSROOTS, "approver"), opinion="情况属实")
    made = Cases(approved, returned, submitted)
    assert [len(entries(db, c)) for c in (approved, returned, submitted)] == [6, 3, 2]
    return made


def entries(db: Engine, case_id: int) -> list[Any]:
    with db.connect() as conn:
        return list(
            conn.execute(
                select(audit_t).where(audit_t.c.case_id == case_id).order_by(audit_t.c.seq)
            )
        )


def entry(db: Engine, case_id: int, seq: int) -> Any:
    (row,) = [e for e in entries(db, case_id) if e.seq == seq]
    return row


def broken(db: Engine) -> list[BrokenChain]:
    with db.connect() as conn:
        return list(verify_case_chains(conn))


def where(db: Engine) -> list[tuple[int, int, int | None]]:
    return [(b.case_id, b.seq, b.entry_id) for b in broken(db)]


def tamper(db: Engine, sql: str, **params: Any) -> None:
    """Direct SQL, as someone with database access would write it: no engine, no hashes."""
    with transaction(db) as conn:
        assert conn.execute(text(sql), params).rowcount == 1


def stored_time(at: dt.datetime) -> str:
    """How the columns keep time: naive UTC with microseconds."""
    return at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def test_a_clean_database_verifies_with_nothing_broken(db: Engine, cases: Cases) -> None:
    assert broken(db) == []
    for case_id in (cases.approved, cases.returned, cases.submitted):
        chain = entries(db, case_id)
        row = case_row(db, case_id)
        assert (row.audit_seq, row.audit_head) == (len(chain), chain[-1].hash)
        assert [e.prev_hash for e in chain[1:]] == [e.hash for e in chain[:-1]]


def test_an_empty_database_verifies_with_nothing_broken(db: Engine) -> None:
    assert broken(db) == []


def test_an_edited_opinion_in_the_middle_is_named(db: Engine, cases: Cases) -> None:
    verify = entry(db, cases.approved, 3)
    assert (verify.event, verify.opinion) == ("verify", "档案核查无误")
    tamper(
        db,
        "UPDATE audit_entry SET opinion = :o WHERE id = :id",
        o="档案核查无误，同意",
        id=verify.id,
    )
    (only,) = broken(db)
    assert (only.case_id, only.seq, only.entry_id) == (cases.approved, 3, verify.id)
    assert "altered" in only.problem
    assert only.describe().startswith(f"case {cases.approved}, seq 3, audit entry #{verify.id}")


def test_a_removed_opinion_is_named(db: Engine, cases: Cases) -> None:
    returned = entry(db, cases.returned, 3)
    tamper(db, "UPDATE audit_entry SET opinion = NULL WHERE id = :id", id=returned.id)
    assert where(db) == [(cases.returned, 3, returned.id)]


def test_edited_data_json_is_named(db: Engine, cases: Cases) -> None:
    verify = entry(db, cases.approved, 4)  # publish: the period
    assert verify.data == {"publicity_ends_on": "2024-08-08"}
    tamper(
        db,
        "UPDATE audit_entry SET data = :d WHERE id = :id",
        d=json.dumps({"publicity_ends_on": "2024-08-20"}),
        id=verify.id,
    )
    (only,) = broken(db)
    assert (only.case_id, only.seq, only.entry_id) == (cases.approved, 4, verify.id)
    assert "altered" in only.problem


def test_the_same_data_written_differently_is_not_a_break(db: Engine, cases: Cases) -> None:
    """The hash covers the JSON value, not its spelling: a dump and restore must still verify."""
    verify = entry(db, cases.approved, 4)
    tamper(
        db,
        "UPDATE audit_entry SET data = :d WHERE id = :id",
        d='{ "publicity_ends_on" :  "2024-08-08" }',
        id=verify.id,
    )
    assert broken(db) == []


def test_a_deleted_last_entry_is_named(db: Engine, cases: Cases) -> None:
    last = entry(db, cases.approved, 6)
    tamper(db, "DELETE FROM audit_entry WHERE id = :id", id=last.id)
    (only,) = broken(db)
    assert (only.case_id, only.seq, only.entry_id) == (cases.approved, 6, None)
    assert "deleted" in only.problem
    assert only.describe().startswith(f"case {cases.approved}, seq 6, (missing entry)")


def test_a_deleted_middle_entry_is_named_where_the_gap_is(db: Engine, cases: Cases) -> None:
    middle, after = entry(db, cases.approved, 3), entry(db, cases.approved, 4)
    tamper(db, "DELETE FROM audit_entry WHERE id = :id", id=middle.id)
    (only,) = broken(db)
    # seq 3 is missing; the entry found in its place (seq 4) is the one named.
    assert (only.case_id, only.seq, only.entry_id) == (cases.approved, 3, after.id)
    assert "missing" in only.problem


def test_a_case_whose_entries_were_all_deleted_is_named(db: Engine, cases: Cases) -> None:
    with transaction(db) as conn:
        conn.execute(text("DELETE FROM audit_entry WHERE case_id = :c"), {"c": cases.returned})
    assert where(db) == [(cases.returned, 1, None)]


def test_a_redated_entry_is_named(db: Engine, cases: Cases) -> None:
    returned = entry(db, cases.returned, 3)
    one_second_earlier = stored_time(returned.at - dt.timedelta(seconds=1))
    tamper(
        db, "UPDATE audit_entry SET at = :at WHERE id = :id", at=one_second_earlier, id=returned.id
    )
    assert entry(db, cases.returned, 3).at == returned.at - dt.timedelta(seconds=1)
    (only,) = broken(db)
    assert (only.case_id, only.seq, only.entry_id) == (cases.returned, 3, returned.id)
    assert "altered" in only.problem


def forge(db: Engine, case_id: int, seq: int, prev_hash: str, *, well_formed: bool) -> int:
    """Writes an approval nobody gave: with a made-up hash, or one computed as the engine does
    (the algorithm is no secret). The case row and its recorded head are left alone."""
    at = dt.datetime(2024, 8, 9, 3, 0, tzinfo=dt.UTC)
    fields: dict[str, Any] = {
        "case_id": case_id,
        "seq": seq,
        "actor": "approver@WH",
        "actor_unit": "WH",
        "event": "approve",
        "from_state": "approval",
        "to_state": "disbursement",
        "opinion": "同意资助",
        "data": {"amount": "3000.00", "fund_source": "government"},
    }
    digest = entry_hash(prev_hash=prev_hash, at=at, **fields) if well_formed else "f" * 64
    with transaction(db) as conn:
        return int(
            conn.execute(
                text(
                    "INSERT INTO audit_entry (case_id, seq, actor, actor_unit, event, from_state,"
                    " to_state, opinion, data, at, prev_hash, hash) VALUES (:case_id, :seq, :actor,"
                    " :actor_unit, :event, :from_state, :to_state, :opinion, :data, :at,"
                    " :prev_hash, :hash) RETURNING id"
                ),
                {
                    **fields,
                    "data": json.dumps(fields["data"]),
                    "at": stored_time(at),
                    "prev_hash": prev_hash,
                    "hash": digest,
                },
            ).scalar_one()
        )


def test_a_forged_entry_with_a_made_up_hash_is_named(db: Engine, cases: Cases) -> None:
    last = entry(db, cases.submitted, 2)
    forged = forge(db, cases.submitted, 3, last.hash, well_formed=False)
    assert where(db) == [(cases.submitted, 3, forged)]


def test_a_forged_entry_with_a_recomputed_hash_is_named(db: Engine, cases: Cases) -> None:
    """Chained correctly, but beyond the head the case row records: the forged entry (seq 3)
    is the one to name, not a seq 4 that does not exist."""
    last = entry(db, cases.submitted, 2)
    forged = forge(db, cases.submitted, 3, last.hash, well_formed=True)
    (only,) = broken(db)
    assert (only.case_id, only.seq, only.entry_id) == (cases.submitted, 3, forged)


def test_a_replaced_last_entry_with_a_recomputed_hash_is_named(db: Engine, cases: Cases) -> None:
    """The last decision deleted and rewritten, chained correctly; only the head recorded on the
    case row gives it away, and the rewritten entry (same seq) is the one to name."""
    last, before = entry(db, cases.submitted, 2), entry(db, cases.submitted, 1)
    tamper(db, "DELETE FROM audit_entry WHERE id = :id", id=last.id)
    forged = forge(db, cases.submitted, 2, before.hash, well_formed=True)
    (only,) = broken(db)
    assert (only.case_id, only.seq, only.entry_id) == (cases.submitted, 2, forged)


def test_each_broken_case_is_named_once_and_intact_cases_are_not(db: Engine, cases: Cases) -> None:
    first, later = entry(db, cases.approved, 2), entry(db, cases.approved, 4)
    returned = entry(db, cases.returned, 2)
    for changed in (first, later):
        tamper(db, "UPDATE audit_entry SET actor = 'someone' WHERE id = :id", id=changed.id)
    tamper(db, "UPDATE audit_entry SET to_state = 'publicity' WHERE id = :id", id=returned.id)
    # The first break of each chain, in case order; the untouched case is not mentioned.
    assert where(db) == sorted([(cases.approved, 2, first.id), (cases.returned, 2, returned.id)])
