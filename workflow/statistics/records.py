"""The statistics items counted from the employment and work-study registers
(`workflow.employment`) instead of typed-in report figures: one query per register, for a
campaign and a unit's subtree.

What each count means (the tables' items name these keys through `compute.METRICS`):

* `graduates`, `graduates_fresh` (应届: graduated in the campaign's year), `graduates_previous`
  (往届: before it) — the records;
* `help:<kind>` — pieces of help of that kind (人次: a graduate trained twice counts twice),
  `help_fen:<kind>` their amounts (loans, subsidies);
* `employed_helped` — records ended in employment after at least one piece of help (实际帮助
  实现就业); `employed_self` — ended in employment with none (已自谋职业); `needs_help` — every
  other record (需要就业帮扶);
* `fresh_local_unplaced` — fresh graduates studying locally whose record is still open (尚未签约);
  `previous_unplaced` — earlier graduates whose record is still open (往届未就业). Open: not
  employed and not in further study (`states.employment_record`: registered, seeking,
  interviewing or not employed);
* `posts` (勤工俭学岗位, open or closed: each was offered), `post_employers` (distinct employers
  of those posts: 联系单位), `participants` (active participants: 人次, one student on two posts
  counts twice). Posts and participants count under the post's unit.

With a cut-off date (the campaign's `statistics.cutoff`) each register counts as it stood at the
end of that day in China: records registered by then, in the state their trail gave them then;
help given on or before the day; posts opened by then; participants added by then and not yet
removed.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, case, exists, func, or_, select

from jinqiu.states.employment_record import MACHINE, RecordState
from jinqiu.workflow.clock import CHINA
from jinqiu.workflow.employment.models import (
    EmploymentHelp,
    EmploymentRecord,
    EmploymentRecordAudit,
    WorkStudyParticipant,
    WorkStudyPost,
)
from jinqiu.workflow.units.models import Unit, in_subtree

record_t = EmploymentRecord.__table__  # type: ignore[attr-defined]
help_t = EmploymentHelp.__table__  # type: ignore[attr-defined]
post_t = WorkStudyPost.__table__  # type: ignore[attr-defined]
participant_t = WorkStudyParticipant.__table__  # type: ignore[attr-defined]
record_audit_t = EmploymentRecordAudit.__table__  # type: ignore[attr-defined]
unit_t = Unit.__table__  # type: ignore[attr-defined]

OPEN = tuple(str(s) for s in MACHINE.open_states)


def _count(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def end_of(cutoff: dt.date | None) -> dt.datetime | None:
    """The first instant after the cut-off day in China: what was recorded before it counts."""
    if cutoff is None:
        return None
    return dt.datetime.combine(cutoff + dt.timedelta(days=1), dt.time(), tzinfo=CHINA)


def count_records(
    conn: Connection, campaign_id: int, year: int, path: str, cutoff: dt.date | None = None
) -> Counter[str]:
    """Every key above, for the campaign's records, help and posts under `path`, as they stood
    at the end of `cutoff` (None: as they stand)."""
    out: Counter[str] = Counter()
    until = end_of(cutoff)
    in_scope = and_(record_t.c.campaign_id == campaign_id, in_subtree(unit_t.c.path, path))
    given = help_t.c.record_id == record_t.c.id
    state: Any = record_t.c.state
    if until is not None:
        in_scope = and_(in_scope, record_t.c.created_at < until)
        given = and_(given, help_t.c.given_on <= cutoff)
        # The state the trail gave the record last before the end of the day — read only for
        # a record changed since (every change moves updated_at): the others are as they were.
        state = case(
            (record_t.c.updated_at < until, record_t.c.state),
            else_=select(record_audit_t.c.to_state)
            .where(record_audit_t.c.record_id == record_t.c.id, record_audit_t.c.at < until)
            .order_by(record_audit_t.c.seq.desc())
            .limit(1)
            .scalar_subquery(),
        )
    helped = exists().where(given)
    employed = state == RecordState.EMPLOYED.value
    still_open = state.in_(OPEN)
    row = conn.execute(
        select(
            func.count().label("graduates"),
            _count(record_t.c.graduation_year == year).label("graduates_fresh"),
            _count(record_t.c.graduation_year < year).label("graduates_previous"),
            _count(and_(employed, helped)).label("employed_helped"),
            _count(and_(employed, ~helped)).label("employed_self"),
            _count(
                and_(still_open, record_t.c.graduation_year == year, record_t.c.studies_locally)
            ).label("fresh_local_unplaced"),
            _count(and_(still_open, record_t.c.graduation_year < year)).label("previous_unplaced"),
        )
        .select_from(record_t.join(unit_t, unit_t.c.id == record_t.c.unit_id))
        .where(in_scope)
    ).one()
    out.update({key: int(value) for key, value in row._mapping.items()})
    out["needs_help"] = out["graduates"] - out["employed_self"]
    for kind, pieces, fen in conn.execute(
        select(help_t.c.kind, func.count(), func.coalesce(func.sum(help_t.c.amount_fen), 0))
        .select_from(
            help_t.join(record_t, record_t.c.id == help_t.c.record_id).join(
                unit_t, unit_t.c.id == record_t.c.unit_id
            )
        )
        .where(in_scope, given)
        .group_by(help_t.c.kind)
    ):
        out[f"help:{kind}"] = int(pieces)
        out[f"help_fen:{kind}"] = int(fen)
    posts_in_scope = and_(post_t.c.campaign_id == campaign_id, in_subtree(unit_t.c.path, path))
    taking_part: ColumnElement[bool] = participant_t.c.active
    if until is not None:
        posts_in_scope = and_(posts_in_scope, post_t.c.created_at < until)
        taking_part = and_(
            participant_t.c.added_at < until,
            or_(participant_t.c.active, participant_t.c.removed_at >= until),
        )
    posts = conn.execute(
        select(func.count(), func.count(func.distinct(post_t.c.employer)))
        .select_from(post_t.join(unit_t, unit_t.c.id == post_t.c.unit_id))
        .where(posts_in_scope)
    ).one()
    out["posts"], out["post_employers"] = int(posts[0]), int(posts[1])
    out["participants"] = int(
        conn.execute(
            select(func.count())
            .select_from(
                participant_t.join(post_t, post_t.c.id == participant_t.c.post_id).join(
                    unit_t, unit_t.c.id == post_t.c.unit_id
                )
            )
            .where(posts_in_scope, taking_part)
        ).scalar_one()
    )
    return out
