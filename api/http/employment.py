"""阳光就业 and 勤工俭学: employment records (register a graduate of an aided family, list,
read, record help; events through the generic route `POST /api/employment-records/{id}/events`)
and work-study posts (open, list, read, close; add and remove participants)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import Depends, Query, Response
from pydantic import BaseModel, Field, field_validator

from jinqiu.api.deps import (
    CampaignInScope,
    CaseInScope,
    Conn,
    CurrentActor,
    EmploymentRecordInScope,
    QueriedUnit,
    ServicesDep,
    WorkStudyPostInScope,
    api_router,
    campaign_in_scope,
    employment_record_in_scope,
    in_handler,
    require,
    unit_named,
    work_study_post_in_scope,
)
from jinqiu.api.errors import ERROR_RESPONSES
from jinqiu.api.http.schemas import Strict
from jinqiu.states import Permission
from jinqiu.states.employment_record import RecordState
from jinqiu.workflow.employment import reads, service
from jinqiu.workflow.employment.engine import RECORDS  # registers the generic event route
from jinqiu.workflow.errors import NotFound, ValidationFailed
from jinqiu.workflow.money import InvalidAmount, yuan_to_fen
from jinqiu.workflow.roles import Actor
from jinqiu.workflow.validation import DbId

router = api_router(tags=["employment and work-study"], responses=ERROR_RESPONSES)
Recorders = Annotated[
    Actor, Depends(require(Permission.RECORD_EMPLOYMENT, "当前角色无权登记阳光就业和勤工俭学"))
]
assert RECORDS.machine.name == "employment_record"

HelpKind = Literal[tuple(service.HELP_KINDS)]  # type: ignore[valid-type]
PostKind = Literal[tuple(service.POST_KINDS)]  # type: ignore[valid-type]
Text = Annotated[str, Field(min_length=1, max_length=200)]


def _yuan(value: object, max_fen: int) -> object:
    """Yuan as an integer or a decimal string (never a float), bounded."""
    if value is None:
        return value
    if isinstance(value, (float, bool)):
        raise ValueError("金额须写成整数或字符串，不能是浮点数")
    if not isinstance(value, (int, str, Decimal)):
        raise ValueError("金额须写成整数或字符串")
    try:
        yuan_to_fen(value, max_fen=max_fen)
    except InvalidAmount as exc:
        raise ValueError(str(exc)) from exc
    return value


class RecordIn(Strict):
    case_id: DbId
    graduation_year: int = Field(ge=1990, le=2100, description="毕业年份")
    school: Text = Field(description="毕业院校")
    major: Text | None = None
    studies_locally: bool = Field(default=False, description="在本地就读")


class RecordRow(BaseModel):
    id: int
    case_id: int
    unit: str
    student: str = Field(description="given name masked (张*明) without pii.read")
    state: RecordState
    state_label: str
    version: int
    graduation_year: int
    school: str
    major: str | None
    studies_locally: bool
    destination: str | None = Field(description="employer or school, once the record ended")
    help_count: int


class RecordPage(BaseModel):
    total: int
    items: list[RecordRow]


class HelpOut(BaseModel):
    id: int
    kind: str
    label: str
    given_on: dt.date
    text: str | None
    amount: str | None = Field(description="yuan")
    recorded_by: str


class EventOption(BaseModel):
    event: str
    label: str


class HistoryEntry(BaseModel):
    seq: int
    event: str
    from_: str | None = Field(alias="from")
    to: str
    actor: str
    opinion: str | None
    data: dict[str, Any]
    at: dt.datetime


class RecordDetail(RecordRow):
    campaign_id: int
    allowed_events: list[EventOption]
    help: list[HelpOut]
    history: list[HistoryEntry]


class HelpIn(Strict):
    kind: HelpKind  # type: ignore[valid-type]
    given_on: dt.date | None = Field(default=None, description="default: today")
    text: str | None = Field(default=None, max_length=2000, description="a plan's text")
    amount: str | int | None = Field(default=None, description="yuan: a loan or a subsidy")

    _amount = field_validator("amount", mode="before")(lambda v: _yuan(v, service.MAX_HELP_FEN))


class HelpCreated(BaseModel):
    id: int
    record: RecordDetail


class PostIn(Strict):
    unit: str = Field(min_length=1, max_length=64)
    title: str = Field(min_length=1, max_length=100)
    employer: Text
    kind: PostKind  # type: ignore[valid-type]
    hours_per_week: int = Field(ge=1, le=service.MAX_HOURS_PER_WEEK)
    hourly_pay: str | int = Field(description="yuan per hour")

    _pay = field_validator("hourly_pay", mode="before")(
        lambda v: _yuan(v, service.MAX_HOURLY_PAY_FEN)
    )


class PostRow(BaseModel):
    id: int
    campaign_id: int
    unit: str
    title: str
    employer: str
    kind: str
    kind_label: str
    hours_per_week: int
    hourly_pay: str = Field(description="yuan per hour")
    open: bool
    participants: int


class PostPage(BaseModel):
    total: int
    items: list[PostRow]


class Member(BaseModel):
    case_id: int
    student: str
    unit: str
    added_by: str
    added_at: dt.datetime


class PostDetail(PostRow):
    members: list[Member]


class ParticipantIn(Strict):
    case_id: DbId


Offset = Annotated[int, Query(ge=0, le=1_000_000)]
Limit = Annotated[int, Query(ge=1, le=reads.MAX_LIST)]


# -- employment records -------------------------------------------------------------------------


@router.post(
    "/api/campaigns/{campaign_id}/employment-records",
    status_code=201,
    response_model=RecordDetail,
    response_model_by_alias=True,
)
def register(
    actor: Recorders,
    campaign: Annotated[Any, Depends(in_handler(campaign_in_scope))],
    body: RecordIn,
    svc: ServicesDep,
    conn: Conn,
) -> Any:
    """Registers a graduate of an aided family (a case of the campaign whose aid was paid)."""
    record_id = service.register(
        conn,
        campaign=campaign,
        case_id=body.case_id,
        graduation_year=body.graduation_year,
        school=body.school,
        major=body.major,
        studies_locally=body.studies_locally,
        actor=actor,
        clock=svc.clock,
    )
    return reads.record_view(conn, record_id, actor=actor)


@router.get("/api/campaigns/{campaign_id}/employment-records", response_model=RecordPage)
def list_records(
    actor: CurrentActor,
    campaign: CampaignInScope,
    unit: QueriedUnit,
    conn: Conn,
    state: RecordState | None = None,
    offset: Offset = 0,
    limit: Limit = reads.MAX_LIST,
) -> Any:
    """The records of `?unit=`'s subtree (default: the caller's unit), by id."""
    return reads.list_records(
        conn,
        campaign_id=campaign.id,
        unit=unit,
        actor=actor,
        state=None if state is None else state.value,
        offset=offset,
        limit=limit,
    )


@router.get(
    "/api/employment-records/{record_id}",
    response_model=RecordDetail,
    response_model_by_alias=True,
)
def read_record(record_id: EmploymentRecordInScope, actor: CurrentActor, conn: Conn) -> Any:
    return reads.record_view(conn, record_id, actor=actor)


@router.post(
    "/api/employment-records/{record_id}/help",
    status_code=201,
    response_model=HelpCreated,
    response_model_by_alias=True,
)
def record_help(
    actor: Recorders,
    record_id: Annotated[int, Depends(in_handler(employment_record_in_scope))],
    body: HelpIn,
    svc: ServicesDep,
    conn: Conn,
) -> Any:
    """Help offered to the graduate: an entry on the record's chain (its version moves on)."""
    help_id = service.record_help(
        conn,
        record_id,
        kind=str(body.kind),
        given_on=body.given_on,
        text=body.text,
        amount_fen=None if body.amount is None else yuan_to_fen(body.amount),
        actor=actor,
        clock=svc.clock,
    )
    return {"id": help_id, "record": reads.record_view(conn, record_id, actor=actor)}


# -- work-study posts ---------------------------------------------------------------------------


@router.post(
    "/api/campaigns/{campaign_id}/work-study-posts", status_code=201, response_model=PostDetail
)
def open_post(
    actor: Recorders,
    campaign: Annotated[Any, Depends(in_handler(campaign_in_scope))],
    body: PostIn,
    svc: ServicesDep,
    conn: Conn,
) -> Any:
    """A work-study post offered through `unit` (the caller's or below it)."""
    try:
        unit = unit_named(conn, body.unit, actor)
    except NotFound:  # named in the body of a create: 422 naming the field, as everywhere
        raise ValidationFailed(
            f"单位 {body.unit} 不存在",
            [{"field": "unit", "code": "unknown_unit", "message": "单位不存在"}],
        ) from None
    post_id = service.open_post(
        conn,
        campaign_id=campaign.id,
        unit=unit,
        title=body.title,
        employer=body.employer,
        kind=str(body.kind),
        hours_per_week=body.hours_per_week,
        hourly_pay_fen=yuan_to_fen(body.hourly_pay),
        actor=actor,
        clock=svc.clock,
    )
    return reads.post_view(conn, post_id, actor=actor)


@router.get("/api/campaigns/{campaign_id}/work-study-posts", response_model=PostPage)
def list_posts(
    campaign: CampaignInScope,
    unit: QueriedUnit,
    conn: Conn,
    offset: Offset = 0,
    limit: Limit = reads.MAX_LIST,
) -> Any:
    """The posts of `?unit=`'s subtree (default: the caller's unit), by id."""
    return reads.list_posts(conn, campaign_id=campaign.id, unit=unit, offset=offset, limit=limit)


@router.get("/api/work-study-posts/{post_id}", response_model=PostDetail)
def read_post(post_id: WorkStudyPostInScope, actor: CurrentActor, conn: Conn) -> Any:
    return reads.post_view(conn, post_id, actor=actor)


@router.post("/api/work-study-posts/{post_id}/close", response_model=PostDetail)
def close_post(
    actor: Recorders, post_id: WorkStudyPostInScope, svc: ServicesDep, conn: Conn
) -> Any:
    """No more participants; those on it stay counted."""
    service.close_post(conn, post_id, actor=actor, clock=svc.clock)
    return reads.post_view(conn, post_id, actor=actor)


@router.post(
    "/api/work-study-posts/{post_id}/participants", status_code=201, response_model=PostDetail
)
def add_participant(
    actor: Recorders,
    post_id: Annotated[int, Depends(in_handler(work_study_post_in_scope))],
    body: ParticipantIn,
    svc: ServicesDep,
    conn: Conn,
) -> Any:
    """A student of an aided family (a paid case of the post's subtree) takes part."""
    service.add_participant(conn, post_id, case_id=body.case_id, actor=actor, clock=svc.clock)
    return reads.post_view(conn, post_id, actor=actor)


@router.delete("/api/work-study-posts/{post_id}/participants/{case_id}", status_code=204)
def remove_participant(
    actor: Recorders,
    post_id: WorkStudyPostInScope,
    case_id: CaseInScope,
    svc: ServicesDep,
    conn: Conn,
) -> Response:
    service.remove_participant(conn, post_id, case_id=case_id, actor=actor, clock=svc.clock)
    return Response(status_code=204)
