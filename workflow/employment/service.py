"""What people do with employment records and work-study posts, each inside the caller's
transaction: register a graduate, record help, open and close posts, add and remove
participants. The record's events go through the engine (`engine.RECORDS`); everything else is
here, and every change of a record is an entry on its chain (version bumped, head moved).

Who may be registered or take part: a case of the campaign, in the caller's subtree, whose aid
was paid (`paid_on` set: in follow-up or closed). The notices speak of graduates and students
of aided families (帮扶 "困难职工家庭"); a case never approved, rejected or still waiting is not
one yet, and counting it would make the statistics say more than was done. Refused with 422
naming `case_id`.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.exc import IntegrityError

from jinqiu.states.employment_record import MACHINE, RecordState
from jinqiu.workflow.audit.chain import append_entries, chain_entry
from jinqiu.workflow.clock import Clock
from jinqiu.workflow.employment.engine import (
    case_t,
    help_t,
    participant_t,
    post_t,
    record_audit_t,
    record_t,
    unit_t,
)
from jinqiu.workflow.errors import Conflict, NotFound, ValidationFailed, VersionConflict
from jinqiu.workflow.roles import Actor
from jinqiu.workflow.units.models import in_subtree

CREATE_EVENT = "create"  # the first entry of a record's chain, as for cases and lists
HELP_EVENT = "help"  # an entry that records help: no transition


@dataclass(frozen=True)
class HelpKind:
    label: str
    text_required: bool = False  # a 一人一策 plan is its text
    amount_required: bool = False  # a loan or a subsidy is its amount


# The help the notices list (Dalian 附件3 07–14, Qingpu 附件1 02–09; 一人一策 from issue 10).
HELP_KINDS: dict[str, HelpKind] = {
    "training": HelpKind("就业技能培训"),
    "internship": HelpKind("实习见习"),
    "referral": HelpKind("推荐岗位"),
    "plan": HelpKind("一人一策帮扶计划", text_required=True),
    "certificate": HelpKind("帮助取得职业资格证书"),
    "startup_guidance": HelpKind("创业指导"),
    "startup_training": HelpKind("创业培训"),
    "loan": HelpKind("小额担保贷款", amount_required=True),
    "policy": HelpKind("落实就业扶持政策"),
    "subsidy": HelpKind("求职补贴", amount_required=True),
}
POST_KINDS: dict[str, str] = {
    "campus": "校内岗位",
    "enterprise": "企业岗位",
    "community": "社区公益岗位",
    "other": "其他",
}
MAX_HOURS_PER_WEEK = 40
MAX_HOURLY_PAY_FEN = 100_000  # 1,000 yuan an hour: far above any post, below any overflow
MAX_HELP_FEN = 100_000_000  # 1,000,000 yuan: a loan or subsidy larger is a typing error
GRADUATION_YEARS_BACK = 10  # 往届: graduates up to ten years before the campaign
HELP_DAYS_BACK = 3 * 366  # help entered late, but not from before a graduate's last years


class RecordEnded(Conflict):
    code = "record_ended"


class PostClosed(Conflict):
    code = "post_closed"


class AlreadyRegistered(Conflict):
    code = "already_registered"


class AlreadyParticipating(Conflict):
    code = "already_participating"


def _words(exc: IntegrityError) -> set[str]:
    """The names in a unique violation's message (the constraint's, or the columns')."""
    return set(re.findall(r"[a-z_]+(?:\.[a-z_]+)?", str(exc.orig)))


def _invalid(field: str, code: str, message: str) -> ValidationFailed:
    return ValidationFailed(message, [{"field": field, "code": code, "message": message}])


def aided_case(conn: Connection, campaign_id: int, case_id: int, path: str) -> Any:
    """The case (id, unit), if it is of the campaign, under `path` and its aid was paid."""
    row = conn.execute(
        select(case_t.c.id, case_t.c.unit_id, case_t.c.campaign_id, case_t.c.paid_on)
        .join(unit_t, unit_t.c.id == case_t.c.unit_id)
        .where(case_t.c.id == case_id, in_subtree(unit_t.c.path, path))
    ).first()
    if row is None or row.campaign_id != campaign_id:
        raise _invalid("case_id", "unknown_case", "案件不存在或不在该活动、该单位范围内")
    if row.paid_on is None:
        raise _invalid("case_id", "not_aided", "案件的助学金尚未发放，不能登记")
    return row


# -- employment records -----------------------------------------------------------------------


def register(
    conn: Connection,
    *,
    campaign: Any,
    case_id: int,
    graduation_year: int,
    school: str,
    major: str | None,
    studies_locally: bool,
    actor: Actor,
    clock: Clock,
) -> int:
    """A graduate of an aided family registered (已登记); one record per case and campaign."""
    if not campaign.year - GRADUATION_YEARS_BACK <= graduation_year <= campaign.year:
        raise _invalid(
            "graduation_year",
            "out_of_range",
            f"毕业年份须在 {campaign.year - GRADUATION_YEARS_BACK}–{campaign.year} 之间",
        )
    case = aided_case(conn, campaign.id, case_id, actor.unit_path)
    now = clock.now()
    initial = RecordState(MACHINE.initial).value
    try:
        with conn.begin_nested():  # a lost race on the unique constraint must not abort the caller
            record_id = int(
                conn.execute(
                    record_t.insert()
                    .values(
                        campaign_id=campaign.id,
                        case_id=case_id,
                        unit_id=case.unit_id,
                        state=initial,
                        version=1,
                        audit_seq=1,
                        audit_head="",
                        graduation_year=graduation_year,
                        school=school,
                        major=major,
                        studies_locally=studies_locally,
                        created_by=actor.username,
                        created_at=now,
                        updated_at=now,
                    )
                    .returning(record_t.c.id)
                ).scalar_one()
            )
    except IntegrityError as exc:
        # PostgreSQL names the constraint, SQLite its columns.
        if not {"uq_employment_record_campaign_case", "employment_record.case_id"} & _words(exc):
            raise
        taken = conn.execute(
            select(record_t.c.id).where(
                record_t.c.campaign_id == campaign.id, record_t.c.case_id == case_id
            )
        ).scalar_one()
        raise AlreadyRegistered(f"案件 {case_id} 已有就业记录 {taken}", {"record": taken}) from exc
    link = chain_entry(
        subject_column="record_id",
        subject_id=record_id,
        head_seq=0,
        head_hash=None,
        actor=actor.username,
        actor_unit=actor.unit_code,
        event=CREATE_EVENT,
        from_state=None,
        to_state=initial,
        opinion=None,
        data={"case": case_id, "graduation_year": graduation_year, "school": school},
        at=now,
    )
    append_entries(conn, record_audit_t, [link])
    conn.execute(record_t.update().where(record_t.c.id == record_id).values(audit_head=link.hash))
    return record_id


def _lock_record(conn: Connection, record_id: int, actor: Actor) -> Any:
    query = (
        select(record_t, unit_t.c.path.label("unit_path"))
        .join(unit_t, unit_t.c.id == record_t.c.unit_id)
        .where(record_t.c.id == record_id)
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(of=record_t)
    row = conn.execute(query).first()
    if row is None or not actor.sees(row.unit_path):
        raise NotFound(f"就业记录 {record_id} 不存在")
    return row


def record_help(
    conn: Connection,
    record_id: int,
    *,
    kind: str,
    given_on: dt.date | None,
    text: str | None,
    amount_fen: int | None,
    actor: Actor,
    clock: Clock,
) -> int:
    """Help given to the graduate: a row, and an entry on the record's chain (version bumped).
    Refused once the record has ended (employed or in further study). Returns the help's id."""
    found = HELP_KINDS.get(kind)
    if found is None:
        raise _invalid("kind", "unknown_kind", f"未知的帮扶类型：{kind[:32]}")
    text = text.strip() if text else None
    if found.text_required and not text:
        raise _invalid("text", "missing", f"“{found.label}”须填写内容")
    if found.amount_required and not amount_fen:
        raise _invalid("amount", "missing", f"“{found.label}”须填写金额")
    if not found.amount_required and amount_fen is not None:
        raise _invalid("amount", "not_applicable", f"“{found.label}”没有金额")
    if amount_fen is not None and not 0 < amount_fen <= MAX_HELP_FEN:
        raise _invalid("amount", "out_of_range", "金额须大于 0，不超过 1000000 元")
    now = clock.now()
    today = now.date()
    given_on = given_on or today
    if given_on > today:
        raise _invalid("given_on", "in_future", "帮扶日期不能晚于今天")
    if given_on < today - dt.timedelta(days=HELP_DAYS_BACK):
        raise _invalid("given_on", "too_old", "帮扶日期不能早于三年前")
    row = _lock_record(conn, record_id, actor)
    if row.state not in MACHINE.open_states:
        raise RecordEnded(
            f"就业记录已结束（{MACHINE.state_labels[row.state]}），不再登记帮扶",
            {"state": row.state},
        )
    help_id = int(
        conn.execute(
            help_t.insert()
            .values(
                record_id=record_id,
                kind=kind,
                given_on=given_on,
                text=text,
                amount_fen=amount_fen,
                recorded_by=actor.username,
                recorded_at=now,
            )
            .returning(help_t.c.id)
        ).scalar_one()
    )
    data: dict[str, Any] = {"help": help_id, "kind": kind, "given_on": given_on.isoformat()}
    if text:
        data["text"] = text
    if amount_fen is not None:
        data["amount_fen"] = amount_fen
    link = chain_entry(
        subject_column="record_id",
        subject_id=record_id,
        head_seq=row.audit_seq,
        head_hash=row.audit_head,
        actor=actor.username,
        actor_unit=actor.unit_code,
        event=HELP_EVENT,
        from_state=row.state,
        to_state=row.state,
        opinion=None,
        data=data,
        at=now,
    )
    written = conn.execute(
        record_t.update()
        .where(record_t.c.id == record_id, record_t.c.version == row.version)
        .values(version=row.version + 1, audit_seq=link.seq, audit_head=link.hash, updated_at=now)
    )
    if written.rowcount != 1:
        raise VersionConflict(
            "就业记录已被他人修改，请刷新后重试", {"expected_version": row.version}
        )
    append_entries(conn, record_audit_t, [link])
    return help_id


# -- work-study posts -------------------------------------------------------------------------


def open_post(
    conn: Connection,
    *,
    campaign_id: int,
    unit: Any,
    title: str,
    employer: str,
    kind: str,
    hours_per_week: int,
    hourly_pay_fen: int,
    actor: Actor,
    clock: Clock,
) -> int:
    if kind not in POST_KINDS:
        raise _invalid("kind", "unknown_kind", f"未知的岗位类型：{kind[:20]}")
    if not 1 <= hours_per_week <= MAX_HOURS_PER_WEEK:
        raise _invalid("hours_per_week", "out_of_range", f"每周工时须为 1–{MAX_HOURS_PER_WEEK}")
    if not 0 < hourly_pay_fen <= MAX_HOURLY_PAY_FEN:
        raise _invalid("hourly_pay", "out_of_range", "每小时报酬须大于 0，不超过 1000 元")
    return int(
        conn.execute(
            post_t.insert()
            .values(
                campaign_id=campaign_id,
                unit_id=unit.id,
                title=title,
                employer=employer,
                kind=kind,
                hours_per_week=hours_per_week,
                hourly_pay_fen=hourly_pay_fen,
                is_open=True,
                created_by=actor.username,
                created_at=clock.now(),
            )
            .returning(post_t.c.id)
        ).scalar_one()
    )


def _lock_post(conn: Connection, post_id: int, actor: Actor) -> Any:
    query = (
        select(post_t, unit_t.c.path.label("unit_path"))
        .join(unit_t, unit_t.c.id == post_t.c.unit_id)
        .where(post_t.c.id == post_id)
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(of=post_t)
    row = conn.execute(query).first()
    if row is None or not actor.sees(row.unit_path):
        raise NotFound(f"勤工俭学岗位 {post_id} 不存在")
    return row


def close_post(conn: Connection, post_id: int, *, actor: Actor, clock: Clock) -> None:
    """A closed post takes no more participants; those on it stay (they took part)."""
    post = _lock_post(conn, post_id, actor)
    if not post.is_open:
        raise PostClosed("岗位已关闭")
    conn.execute(
        post_t.update()
        .where(post_t.c.id == post_id)
        .values(is_open=False, closed_by=actor.username, closed_at=clock.now())
    )


def add_participant(
    conn: Connection, post_id: int, *, case_id: int, actor: Actor, clock: Clock
) -> int:
    """A student of an aided family of the post's subtree takes part (once while active)."""
    post = _lock_post(conn, post_id, actor)
    if not post.is_open:
        raise PostClosed("岗位已关闭，不能再添加参加人员")
    aided_case(conn, post.campaign_id, case_id, post.unit_path)
    try:
        with conn.begin_nested():  # one active place per case and post, also under a race
            return int(
                conn.execute(
                    participant_t.insert()
                    .values(
                        post_id=post_id,
                        case_id=case_id,
                        active=True,
                        added_by=actor.username,
                        added_at=clock.now(),
                    )
                    .returning(participant_t.c.id)
                ).scalar_one()
            )
    except IntegrityError as exc:
        if not {"uq_work_study_participant_active", "work_study_participant.case_id"} & _words(exc):
            raise
        raise AlreadyParticipating(f"案件 {case_id} 已在该岗位上") from exc


def remove_participant(
    conn: Connection, post_id: int, *, case_id: int, actor: Actor, clock: Clock
) -> None:
    """Taken off the post (entered by mistake, or never came): kept, marked inactive, with who
    and when; the statistics count active participants only."""
    _lock_post(conn, post_id, actor)
    removed = conn.execute(
        participant_t.update()
        .where(
            participant_t.c.post_id == post_id,
            participant_t.c.case_id == case_id,
            participant_t.c.active,
        )
        .values(active=False, removed_by=actor.username, removed_at=clock.now())
    )
    if removed.rowcount != 1:
        raise NotFound(f"案件 {case_id} 不在该岗位上")
