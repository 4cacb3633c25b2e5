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
"""

from __future__ import annotations

from collections import Counter

from sqlalchemy import ColumnElement, Connection, and_, case, exists, func, select

from jinqiu.states.employment_record import MACHINE, RecordState
from jinqiu.workflow.employment.models import (
    EmploymentHelp,
    EmploymentRecord,
    WorkStudyParticipant,
    WorkStudyPost,
)
from jinqiu.workflow.units.models import Unit, in_subtree

record_t = EmploymentRecord.__table__  # type: ignore[attr-defined]
help_t = EmploymentHelp.__table__  # type: ignore[attr-defined]
post_t = WorkStudyPost.__table__  # type: ignore[attr-defined]
participant_t = WorkStudyParticipant.__table__  # type: ignore[attr-defined]
unit_t = Unit.__table__  # type: ignore[attr-defined]

OPEN = tuple(str(s) for s in MACHINE.open_states)


def _count(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def count_records(conn: Connection, campaign_id: int, year: int, path: str) -> Counter[str]:
    """Every key above, for the campaign's records, help and posts under `path`."""
    out: Counter[str] = Counter()
    in_scope = and_(record_t.c.campaign_id == campaign_id, in_subtree(unit_t.c.path, path))
    helped = exists().where(help_t.c.record_id == record_t.c.id)
    employed = record_t.c.state == RecordState.EMPLOYED.value
    still_open = record_t.c.state.in_(OPEN)
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
        .where(in_scope)
        .group_by(help_t.c.kind)
    ):
        out[f"help:{kind}"] = int(pieces)
        out[f"help_fen:{kind}"] = int(fen)
    posts_in_scope = and_(post_t.c.campaign_id == campaign_id, in_subtree(unit_t.c.path, path))
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
            .where(posts_in_scope, participant_t.c.active)
        ).scalar_one()
    )
    return out
