"""Loading a campaign file: read, checked, written with its phases, deadlines and funds
(the compiled rules the engine reads are in campaigns/rules.py)."""

from __future__ import annotations

import codecs
import datetime as dt
import json
import uuid
from pathlib import Path

from sqlalchemy import Connection, insert, select

from jinqiu.workflow.campaigns.checks import campaign_problems
from jinqiu.workflow.campaigns.models import (
    Campaign,
    CampaignDeadline,
    CampaignPhase,
    CampaignStateDeadline,
    FundSource,
)
from jinqiu.workflow.campaigns.schema import CampaignFile
from jinqiu.workflow.clock import Clock
from jinqiu.workflow.errors import DuplicateCampaign, ValidationFailed
from jinqiu.workflow.money import yuan_to_fen
from jinqiu.workflow.units.models import Unit, in_subtree
from jinqiu.workflow.validation import parse

campaign_table = Campaign.__table__  # type: ignore[attr-defined]
phase_table = CampaignPhase.__table__  # type: ignore[attr-defined]
deadline_table = CampaignDeadline.__table__  # type: ignore[attr-defined]
fund_table = FundSource.__table__  # type: ignore[attr-defined]
leave_table = CampaignStateDeadline.__table__  # type: ignore[attr-defined]
unit_table = Unit.__table__  # type: ignore[attr-defined]


MAX_FILE_BYTES = 5 * 1024 * 1024  # a campaign file is a few kilobytes


def read_campaign_file(path: Path) -> CampaignFile:
    """A campaign file as people save it: UTF-8 (with or without the BOM Notepad writes) or
    GB18030/GBK (what Chinese Windows and Excel write); anything else is refused, saying so."""
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise _bad_file(
                f"活动文件 {path} 过大（上限 {MAX_FILE_BYTES // 1024 // 1024} MB）", "too_large"
            )
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise _bad_file(f"活动文件 {path} 不存在", "not_found") from exc
    except IsADirectoryError as exc:
        raise _bad_file(f"{path} 是目录，不是活动文件", "not_a_file") from exc
    except OSError as exc:
        raise _bad_file(f"无法读取活动文件 {path}：{exc.strerror}", "unreadable") from exc
    return campaign_from_bytes(data)


def campaign_from_bytes(data: bytes) -> CampaignFile:
    """A campaign file's content (read from disk, or uploaded on the campaigns page), checked:
    its encoding, its JSON, then the schema; every refusal a ValidationFailed in Chinese."""
    if len(data) > MAX_FILE_BYTES:
        raise _bad_file(f"活动文件过大（上限 {MAX_FILE_BYTES // 1024 // 1024} MB）", "too_large")
    text = decode_campaign_text(data)
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"第{exc.lineno}行第{exc.colno}列"  # the parser's own words are English
        raise ValidationFailed(
            f"活动文件不是有效的 JSON（{where}有误）",
            [{"field": "body", "code": "invalid_json", "message": f"不是有效的 JSON：{where}有误"}],
        ) from exc
    except RecursionError as exc:
        raise _bad_file("活动文件嵌套过深，不是有效的活动文件", "too_deep") from exc
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise _bad_file(f"活动文件不是有效的 JSON：{exc}", "invalid_json") from exc
    return parse(CampaignFile, raw)


def decode_campaign_text(data: bytes) -> str:
    utf8_again = "请用“另存为”选择 UTF-8 编码后再导入"
    if data.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        raise _bad_file(f"活动文件是 UTF-32 编码，{utf8_again}", "unsupported_encoding")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise _bad_file(f"活动文件是 UTF-16（Unicode）编码，{utf8_again}", "unsupported_encoding")
    for encoding in ("utf-8-sig", "gb18030"):  # utf-8-sig: with or without the BOM
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if "\x00" in text:  # UTF-16 without its BOM decodes to text full of NULs
            raise _bad_file(
                f"活动文件含有 NUL 字符（可能是 UTF-16 编码），{utf8_again}", "unsupported_encoding"
            )
        return text
    raise _bad_file(
        f"无法识别活动文件的编码（支持 UTF-8 和 GB18030/GBK），{utf8_again}", "unsupported_encoding"
    )


def _bad_file(message: str, code: str) -> ValidationFailed:
    return ValidationFailed(message, [{"field": "file", "code": code, "message": message}])


def load_campaign(conn: Connection, spec: CampaignFile, clock: Clock) -> int:
    """Writes the campaign with its phases, deadlines and funds; all or nothing."""
    problems = campaign_problems(spec)
    if problems:
        first = problems[0]
        raise ValidationFailed(f"输入有误：{first['field']} {first['message']}", problems)
    # FOR UPDATE on the organizer (PostgreSQL): two loads of the same campaign queue here, so
    # the second sees the first and is refused; SQLite writers are serialised anyway.
    organizer = conn.execute(
        select(unit_table.c.id, unit_table.c.path)
        .where(unit_table.c.code == spec.organizer)
        .with_for_update()
    ).first()
    if organizer is None:
        raise ValidationFailed(
            f"主办单位 {spec.organizer} 不存在",
            [{"field": "organizer", "code": "unknown_unit", "message": "主办单位不存在"}],
        )
    _responsible_units_exist(conn, spec, organizer_path=organizer.path)
    existing = conn.execute(
        select(campaign_table.c.id).where(
            campaign_table.c.organizer_unit_id == organizer.id,
            campaign_table.c.name == spec.name,
            campaign_table.c.year == spec.year,
        )
    ).first()
    if existing is not None:
        raise DuplicateCampaign(
            f"主办单位 {spec.organizer} 已有 {spec.year} 年度的活动「{spec.name}」（编号 {existing.id}），"
            "不能重复创建；如需另建，请换一个名称",
            {"campaign": existing.id},
        )
    campaign_id = conn.execute(
        insert(campaign_table)
        .values(
            name=spec.name,
            year=spec.year,
            organizer_unit_id=organizer.id,
            revision=1,
            rules_token=uuid.uuid4().hex,
            publicity_working_days=spec.publicity_working_days,
            approval_levels=list(spec.approval_levels),
            reminders=spec.reminders.model_dump(mode="json"),
            eligibility=spec.eligibility.model_dump(mode="json"),
            aid_rules=[r.model_dump(mode="json", exclude_none=True) for r in spec.aid_rules],
            categories=[c.model_dump(mode="json", exclude_none=True) for c in spec.categories],
            application_types=[
                a.model_dump(mode="json", exclude_none=True) for a in spec.application_types
            ],
            opinions={
                str(event): o.model_dump(mode="json", exclude_none=True)
                for event, o in spec.opinions.items()
            }
            or None,
            aid_priority=None
            if spec.aid_priority is None
            else spec.aid_priority.model_dump(mode="json", exclude_none=True),
            calendar=spec.calendar.model_dump(mode="json"),
            follow_up=(
                None
                if spec.follow_up is None
                else spec.follow_up.model_dump(mode="json", exclude_none=True)
            ),
            forms=list(spec.forms),
            statistics=(
                None
                if spec.statistics is None
                else spec.statistics.model_dump(mode="json", exclude_none=True)
            ),
            created_at=clock.now(),
        )
        .returning(campaign_table.c.id)
    ).scalar_one()
    if spec.phases:
        conn.execute(
            insert(phase_table),
            [
                {
                    "campaign_id": campaign_id,
                    "position": i,
                    "key": p.key,
                    "name": p.name,
                    "starts": p.starts,
                    "ends": p.ends,
                    "cases_leave": [s.value for s in p.cases_leave],
                }
                for i, p in enumerate(spec.phases)
            ],
        )
    leave_by: dict[str, dt.date] = {}
    for phase in spec.phases:
        for state in phase.cases_leave:
            leave_by[state.value] = max(phase.ends, leave_by.get(state.value, phase.ends))
    if leave_by:
        conn.execute(
            insert(leave_table),
            [{"campaign_id": campaign_id, "state": s, "leave_by": d} for s, d in leave_by.items()],
        )
    if spec.deadlines:
        conn.execute(
            insert(deadline_table),
            [
                {
                    "campaign_id": campaign_id,
                    "key": d.key,
                    "title": d.title,
                    "due": d.due,
                    "responsible_level": (
                        None if d.responsible_level is None else d.responsible_level.value
                    ),
                    "responsible": (
                        None
                        if d.responsible is None
                        else d.responsible.model_dump(mode="json", exclude_none=True)
                    ),
                    "done_when": d.done_when.model_dump(mode="json", exclude_none=True),
                }
                for d in spec.deadlines
            ],
        )
    conn.execute(
        insert(fund_table),
        [
            {
                "campaign_id": campaign_id,
                "position": i,
                "source": f.source,
                "budget_fen": yuan_to_fen(f.budget),
                "reserved_fen": 0,
                "paid_fen": 0,
            }
            for i, f in enumerate(spec.funds)
        ],
    )
    return int(campaign_id)


def _responsible_units_exist(conn: Connection, spec: CampaignFile, *, organizer_path: str) -> None:
    """Every unit a deadline's responsibility names is in the organizer's tree."""
    details = []
    for i, deadline in enumerate(spec.deadlines):
        named = deadline.responsible
        if named is None:
            continue
        codes = {*(named.units or ()), *(() if named.parent is None else (named.parent,))}
        known = {
            code
            for (code,) in conn.execute(
                select(unit_table.c.code).where(
                    unit_table.c.code.in_(sorted(codes)),
                    in_subtree(unit_table.c.path, organizer_path),
                )
            )
        }
        for code in sorted(codes - known):
            details.append(
                {
                    "field": f"deadlines.{i}.responsible",
                    "code": "unknown_unit",
                    "message": f"截止事项「{deadline.title}」的责任单位 {code} 不在主办单位之下",
                }
            )
    if details:
        raise ValidationFailed(f"输入有误：{details[0]['message']}", details)
