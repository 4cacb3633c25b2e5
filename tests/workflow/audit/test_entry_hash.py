"""The entry hash is defined, independently of how it is computed, as SHA-256 of the previous
hash followed by the canonical JSON (sorted keys, no spaces, UTF-8 as is) of the list
[subject id, seq, actor, actor unit, event, from, to, opinion, data, time as
YYYY-MM-DDTHH:MM:SS.ffffffZ]. Anyone can recompute a chain from that sentence; the service's
faster composition (the part shared by a bulk's entries encoded once) must agree with it."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from jinqiu.workflow.audit.chain import entry_hash


def defined_hash(prev_hash: str, fields: dict[str, Any], at: dt.datetime) -> str:
    body = json.dumps(
        [
            fields["case_id"],
            fields["seq"],
            fields["actor"],
            fields["actor_unit"],
            fields["event"],
            fields["from_state"],
            fields["to_state"],
            fields["opinion"],
            fields["data"],
            at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        ],
        ensure_ascii=False,
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256((prev_hash + body).encode("utf-8")).hexdigest()


text = st.text(max_size=20)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(
    case_id=st.integers(min_value=1, max_value=2**62),
    seq=st.integers(min_value=1, max_value=10**6),
    actor=text,
    actor_unit=st.none() | text,
    event=text,
    from_state=st.none() | text,
    to_state=text,
    opinion=st.none() | text,
    data=st.dictionaries(text, json_values, max_size=4),
    at=st.datetimes(
        min_value=dt.datetime(2000, 1, 1),
        max_value=dt.datetime(2100, 1, 1),
        timezones=st.just(dt.UTC),
    ),
    prev_hash=st.sampled_from(["0" * 64, hashlib.sha256(b"x").hexdigest()]),
)
def test_entry_hash_is_the_defined_one(prev_hash: str, at: dt.datetime, **fields: Any) -> None:
    assert entry_hash(prev_hash=prev_hash, at=at, **fields) == defined_hash(prev_hash, fields, at)


def test_entries_sharing_everything_but_the_subject_hash_apart() -> None:
    """A bulk's entries differ only in subject, seq and previous hash (the shared part is
    encoded once): each must still hash as its own definition says."""
    at = dt.datetime(2024, 8, 12, 9, 0, tzinfo=dt.UTC)
    shared: dict[str, Any] = {
        "actor": "approver@WH-HC",
        "actor_unit": "WH-HC",
        "event": "approve",
        "from_state": "approval",
        "to_state": "approval",
        "opinion": "同意",
        "data": {"approval_level": "district"},
    }
    hashes = set()
    for case_id, seq, prev in [
        (1, 6, "a" * 64),
        (2, 6, "a" * 64),
        (1, 7, "a" * 64),
        (1, 6, "b" * 64),
    ]:
        fields = {"case_id": case_id, "seq": seq, **shared}
        got = entry_hash(prev_hash=prev, at=at, **fields)
        assert got == defined_hash(prev, fields, at)
        hashes.add(got)
    assert len(hashes) == 4
