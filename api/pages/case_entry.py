"""Case entry for clerks: a new case in a form (GET/POST /cases/new) and the correction of a case
in survey (GET/POST /cases/{id}/edit, 补正). The form is read into the API's own input models
(CaseCreate, CaseAmendment) and goes through the same services (create_case, amend_case); every
refusal is shown next to its field, in Chinese, with what was typed kept. A stale correction
form says so and keeps what was typed; a case past survey cannot be corrected here."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, get_args

from fastapi import Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy import Connection, select

from jinqiu.api.deps import Conn, ServicesDep, api_router
from jinqiu.api.pages import (
    ARCHIVE_LABELS,
    EDUCATION_LABELS,
    TIER_LABELS,
    OptionalCampaign,
    PageCase,
    PageSession,
    Session,
    carried,
    check_csrf,
    form_int,
    page_records_full_reads,
    pick_campaign,
    render,
)
from jinqiu.states import CaseState
from jinqiu.workflow.campaigns.models import Campaign
from jinqiu.workflow.campaigns.rules import RULES, CampaignRules
from jinqiu.workflow.campaigns.schema import ApplicationType, EducationLevel
from jinqiu.workflow.cases.models import Case, Student, Worker
from jinqiu.workflow.cases.pii import view_case
from jinqiu.workflow.cases.schema import CaseAmendment, CaseCreate, StudentPatch, WorkerPatch
from jinqiu.workflow.cases.service import amend_case, create_case
from jinqiu.workflow.errors import (
    Conflict,
    DomainError,
    PermissionDenied,
    ValidationFailed,
    VersionConflict,
)
from jinqiu.workflow.masking import is_pii_field
from jinqiu.workflow.roles import Actor, Grant
from jinqiu.workflow.units.models import Unit, in_subtree
from jinqiu.workflow.validation import validation_failed

# Registered before the case page's router: /cases/new is not /cases/{case_id}.
router = api_router(include_in_schema=False)
campaign_t = Campaign.__table__  # type: ignore[attr-defined]
unit_t = Unit.__table__  # type: ignore[attr-defined]
case_t = Case.__table__  # type: ignore[attr-defined]
worker_t = Worker.__table__  # type: ignore[attr-defined]
student_t = Student.__table__  # type: ignore[attr-defined]

MAX_FORM_FIELDS = 120  # the entry form has about 35 inputs, an application type up to 40 more
MAX_VALUE_CHARS = 2000  # longer than any field the models accept (500 at most)
MAX_UNITS = 500  # units offered in the unit <select>: a city's whole tree fits
YES, NO = "yes", "no"


@dataclass(frozen=True)
class EntryField:
    """One input of the entry form: `name` is the input model's dotted path (worker.name)."""

    name: str
    label: str
    kind: str = "text"  # text | number | money | date | choice | long
    required: bool = False
    choices: tuple[tuple[str, str], ...] = ()
    correctable: bool = True  # in CaseAmendment (the identity numbers and education are not)
    hint: str = ""

    @property
    def input(self) -> str:
        return input_name(self.name)


def input_name(path: str) -> str:
    return path.replace(".", "_")


EDUCATION_CHOICES = tuple(
    (level, EDUCATION_LABELS.get(level, level)) for level in get_args(EducationLevel)
)
WORKER_FIELDS = (
    EntryField("worker.name", "职工姓名", required=True),
    EntryField(
        "worker.id_number",
        "职工身份证号码",
        required=True,
        correctable=False,
        hint="18 位，末位可为 X",
    ),
    EntryField("worker.phone", "联系电话"),
    EntryField("worker.work_unit", "工作单位"),
    EntryField("worker.address", "家庭住址"),
    EntryField("worker.household_size", "家庭人口", "number"),
    EntryField(
        "worker.monthly_income_per_capita", "家庭月人均收入（元）", "money", correctable=False
    ),
    EntryField("worker.employment_status", "就业状况"),
    EntryField("worker.hardship_cause", "致困原因", "long"),
    EntryField(
        "worker.archive_status",
        "困难职工档案",
        "choice",
        required=True,
        choices=tuple(ARCHIVE_LABELS.items()),
    ),
    EntryField("worker.archived_on", "建档日期", "date"),
    EntryField("worker.bank_card_number", "银行卡号", hint="12–19 位数字"),
    EntryField("worker.bank_card_holder", "户名", hint="不填则为职工本人"),
)
STUDENT_FIELDS = (
    EntryField("student.name", "学生姓名", required=True, correctable=False),
    EntryField("student.id_number", "学生身份证号码", required=True, correctable=False),
    EntryField("student.relation", "与职工关系", correctable=False),
    EntryField("student.ethnicity", "民族", correctable=False),
    EntryField("student.political_status", "政治面貌", correctable=False),
    EntryField("student.hukou_type", "户口类型", correctable=False),
    EntryField("student.health_status", "健康状况", correctable=False),
    EntryField("student.medical_insurance", "医疗保险", correctable=False),
    EntryField(
        "student.education_level",
        "当前学历",
        "choice",
        required=True,
        choices=EDUCATION_CHOICES,
        correctable=False,
    ),
    EntryField("student.school", "学校"),
    EntryField("student.major", "专业"),
    EntryField("student.enrollment_year", "入学年份", "number"),
    EntryField("student.program_years", "学制（年）", "number"),
    EntryField("student.exam_score", "高考（中考）成绩", "number"),
    EntryField("student.admitted_school", "录取学校"),
    EntryField("student.tier", "录取批次", "choice", choices=(("", "—"), *TIER_LABELS.items())),
    EntryField("student.tuition_invoice", "学费发票金额（元）", "money", correctable=False),
    EntryField("student.already_aided_by", "已获其他资助"),
    EntryField("student.guardian_name", "监护人"),
)
SECTIONS = (("职工家庭", WORKER_FIELDS), ("学生", STUDENT_FIELDS))
# The fields a correction may change, exactly CaseAmendment's: asserted at import, so the form
# and the model cannot drift apart.
CORRECTABLE = tuple(f for _, fields in SECTIONS for f in fields if f.correctable)
assert {f.name for f in CORRECTABLE} == {
    *(f"worker.{k}" for k in WorkerPatch.model_fields),
    *(f"student.{k}" for k in StudentPatch.model_fields),
}, "the correction form and CaseAmendment differ"


# What a problem is about, in words, when it names no input shown (the hidden campaign).
FIELD_LABELS = {
    "campaign": "活动",
    "unit": "申报单位",
    "application_type": "申请类型",
    **{f.name: f.label for _, fields in SECTIONS for f in fields},
}


# -- reading a posted form -----------------------------------------------------------------------
Posted = dict[str, str | list[str]]


async def posted_form(request: Request) -> Posted:
    """The posted form as text, bounded: a few dozen fields, each shorter than any model allows
    (the models then say what is wrong with it); no files."""
    form = await request.form(max_files=0, max_fields=MAX_FORM_FIELDS)
    if len(form) > MAX_FORM_FIELDS:  # FastAPI may have parsed it first, with looser limits
        raise ValidationFailed(
            f"输入有误：表单项过多（最多 {MAX_FORM_FIELDS} 项）",
            [{"field": "body", "code": "too_long", "message": "表单项过多"}],
        )
    out: Posted = {}
    for key in form:
        values = [v for v in form.getlist(key) if isinstance(v, str)]
        if not values:
            continue
        if any(len(v) > MAX_VALUE_CHARS for v in values) or len(key) > 64:
            raise ValidationFailed(
                f"输入有误：{key[:64]} 过长",
                [{"field": key[:64], "code": "string_too_long", "message": "过长"}],
            )
        out[key] = values if len(values) > 1 or key == "worker_categories" else values[0]
    return out


PostedForm = Annotated[Posted, Depends(posted_form)]


def text_of(posted: Mapping[str, Any], key: str) -> str:
    value = posted.get(key, "")
    return (
        value[0] if isinstance(value, list) and value else value if isinstance(value, str) else ""
    )


def typed(field: EntryField, raw: str) -> Any:
    """A form's text as the model's JSON input: whole numbers as JSON integers (anything but ASCII
    digits stays text, for the model's strict ints to refuse); the rest as typed."""
    return form_int(raw) if field.kind == "number" else raw


def answer(kind: str, raw: str) -> Any:
    """An application form's answer as the campaign's field kind expects it (service._fits)."""
    if kind == "yes_no":
        return {YES: True, NO: False}.get(raw, raw)
    if kind in {"year", "number"}:
        return form_int(raw)
    return raw


# -- errors next to their fields -----------------------------------------------------------------
def errors_by_input(error: DomainError, known: set[str]) -> tuple[dict[str, list[str]], list[str]]:
    """Each problem under the input it names (worker.categories.1 → worker_categories; a union's
    branch, form.x.int, → form_x); what names no input of the form goes above it."""
    inline: dict[str, list[str]] = {}
    general: list[str] = []
    details = error.details if isinstance(error.details, list) else []
    if isinstance(error.details, dict) and "field" in error.details:
        details = [{"field": error.details["field"], "message": error.message}]
    for d in details:
        parts = str(d.get("field", "")).split(".")
        for end in range(len(parts), 0, -1):
            name = input_name(".".join(parts[:end]))
            if name in known:
                inline.setdefault(name, []).append(str(d.get("message", "")))
                break
        else:
            field = str(d.get("field", ""))
            general.append(f"{FIELD_LABELS.get(field, field)}：{d.get('message', '')}")
    if not details:
        general.append(error.message)
    return inline, general


# -- what the clerk may choose -------------------------------------------------------------------
def units_for(conn: Connection, actor: Actor, organizer_path: str) -> list[Any]:
    """The units the actor may file a case for in a campaign: their own subtree, under its
    organiser. The campaign concerns the actor (one path is a prefix of the other), so that is
    the subtree of the longer path; none when they share no unit."""
    if not (
        actor.unit_path.startswith(organizer_path) or organizer_path.startswith(actor.unit_path)
    ):
        return []
    deeper = max(actor.unit_path, organizer_path, key=len)
    rows = conn.execute(
        select(unit_t.c.code, unit_t.c.name)
        .where(in_subtree(unit_t.c.path, deeper))
        .order_by(unit_t.c.path)
        .limit(MAX_UNITS)
    ).all()
    return list(rows)


def campaign_rules(conn: Connection, campaign_id: int) -> CampaignRules:
    token = conn.execute(
        select(campaign_t.c.rules_token).where(campaign_t.c.id == campaign_id)
    ).scalar_one()
    return RULES.get(conn, campaign_id, token)


def entry_creators_only(session: Session) -> None:
    if not session.actor.may(Grant.CREATE_CASE):
        raise PermissionDenied(
            "当前角色无权新建或修改申请", {"permission": Grant.CREATE_CASE.value}
        )


@dataclass(frozen=True)
class EntryChoice:
    """The campaign, the chosen application type (None when the campaign has none) and what the
    form offers for them."""

    campaign: Any
    campaigns: list[Any]
    rules: CampaignRules
    kind: ApplicationType | None
    units: list[Any]

    @property
    def needs_type(self) -> bool:
        return bool(self.rules.application_types) and self.kind is None

    def inputs(self) -> set[str]:
        names = {f.input for _, fields in SECTIONS for f in fields}
        names |= {"unit", "application_type", "worker_categories"}  # not the hidden campaign
        if self.kind is not None:
            names |= {input_name(f"form.{f.key}") for f in self.kind.fields}
        return names


def entry_choice(
    conn: Connection, actor: Actor, campaign: int | None, type_code: str
) -> EntryChoice:
    chosen, campaigns = pick_campaign(conn, actor, campaign)
    rules = campaign_rules(conn, chosen.id)
    return EntryChoice(
        campaign=chosen,
        campaigns=campaigns,
        rules=rules,
        kind=rules.application_types.get(type_code),
        units=units_for(conn, actor, chosen.path),
    )


def entry_page(
    request: Request,
    session: Session,
    choice: EntryChoice,
    *,
    values: Mapping[str, Any],
    errors: Mapping[str, list[str]] | None = None,
    general: list[str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    response = render(
        request,
        "case_new.html",
        session,
        choice=choice,
        sections=SECTIONS,
        values=values,
        errors=errors or {},
        general=general or [],
        categories=list(choice.rules.categories.values()),
        YES=YES,
        NO=NO,
    )
    response.status_code = status
    return response


# -- a new case ----------------------------------------------------------------------------------
@router.get("/cases/new", response_class=HTMLResponse)
def new_case_page(
    request: Request,
    session: PageSession,
    conn: Conn,
    campaign: OptionalCampaign = None,
    type: Annotated[str, Query(max_length=32)] = "",
) -> HTMLResponse:
    entry_creators_only(session)
    choice = entry_choice(conn, session.actor, campaign, type)
    values = {"unit": session.actor.unit_code or "", "worker_archive_status": "none"}
    return entry_page(request, session, choice, values=values)


@router.post("/cases/new", response_class=HTMLResponse)
def new_case_post(
    request: Request,
    session: PageSession,
    svc: ServicesDep,
    conn: Conn,
    posted: PostedForm,
    csrf_token: Annotated[str, Form(max_length=200)],
    campaign: Annotated[str, Form(max_length=12)],
    unit: Annotated[str, Form(max_length=64)],
    application_type: Annotated[str, Form(max_length=32)] = "",
) -> Response:
    check_csrf(session, csrf_token)
    entry_creators_only(session)
    wanted = form_int(campaign)
    choice = entry_choice(
        conn, session.actor, wanted if isinstance(wanted, int) else -1, application_type
    )
    spec: dict[str, Any] = {
        "campaign": choice.campaign.id,
        "unit": unit,
        "worker": {"categories": _listed(posted.get("worker_categories"))},
        "student": {},
    }
    for _, fields in SECTIONS:
        for field in fields:
            raw = text_of(posted, field.input).strip()
            if raw:
                section, key = field.name.split(".")
                spec[section][key] = typed(field, raw)
    if application_type:
        spec["application_type"] = application_type
    if choice.kind is not None:
        form = {}
        for f in choice.kind.fields:
            raw = text_of(posted, input_name(f"form.{f.key}")).strip()
            if raw:
                form[f.key] = answer(f.kind, raw)
        spec["form"] = form
    try:
        with conn.begin_nested():  # a refusal leaves no worker, student or case row behind
            try:
                parsed = CaseCreate.model_validate(spec)
            except ValidationError as exc:
                raise validation_failed(exc) from exc
            case_id = create_case(conn, parsed, actor=session.actor, clock=svc.clock)
    except DomainError as refused:
        if isinstance(refused, PermissionDenied):
            raise
        inline, general = errors_by_input(refused, choice.inputs())
        return entry_page(request, session, choice, values=posted, errors=inline,
                          general=general, status=422)  # fmt: skip
    done = f"已新建案件 {case_id}（摸底申报）；上传材料后即可提交"
    return RedirectResponse(
        f"/cases/{case_id}?{carried(svc, session, 'flash', done)}", status_code=303
    )


def _listed(value: str | list[str] | None) -> list[str]:
    if value is None:
        return []
    return [v for v in ([value] if isinstance(value, str) else value) if v]


# -- correcting a case in survey (补正) ----------------------------------------------------------
def stored_values(conn: Connection, case_id: int) -> tuple[Any, dict[str, Any]]:
    """The case row and its correctable fields as stored (for comparing, never shown as such)."""
    row = conn.execute(select(case_t).where(case_t.c.id == case_id)).one()
    worker = conn.execute(select(worker_t).where(worker_t.c.id == row.worker_id)).one()._asdict()
    student = (
        conn.execute(select(student_t).where(student_t.c.id == row.student_id)).one()._asdict()
    )
    stored = {f.name: (worker if f.name.startswith("worker.") else student)[f.name.split(".")[1]]
              for f in CORRECTABLE}  # fmt: skip
    return row, stored


def shown_values(detail: Mapping[str, Any], in_full: bool) -> dict[str, str]:
    """The correction form filled from the case as the reader may see it: a masked number is
    left empty (the input says what it holds), so a save never writes the mask back."""
    values: dict[str, str] = {}
    for f in CORRECTABLE:
        section, key = f.name.split(".")
        value = detail[section].get(key)
        if value is None or (is_pii_field(f.name) and not in_full):
            continue
        values[f.input] = value.isoformat() if isinstance(value, dt.date) else str(value)
    return values


def edit_page(
    request: Request,
    session: Session,
    svc: Any,
    conn: Connection,
    case_id: int,
    *,
    values: Mapping[str, Any] | None = None,
    errors: Mapping[str, list[str]] | None = None,
    general: list[str] | None = None,
    stale: dict[str, str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    purpose = f"{request.method} /cases/{case_id}/edit"
    view = view_case(conn, case_id, session.actor, purpose=purpose, clock=svc.clock)
    assert view.detail is not None
    detail = view.detail
    response = render(
        request,
        "case_edit.html",
        session,
        detail=detail,
        fields=CORRECTABLE,
        editable=detail["case"]["state"] == CaseState.SURVEY.value,
        values=shown_values(detail, view.in_full) if values is None else values,
        masked={
            f.input: detail[f.name.split(".")[0]].get(f.name.split(".")[1]) or ""
            for f in CORRECTABLE
            if is_pii_field(f.name) and not view.in_full
        },
        errors=errors or {},
        general=general or [],
        stale=stale,
    )
    response.status_code = status
    return response


@router.get(
    "/cases/{case_id}/edit",
    response_class=HTMLResponse,
    dependencies=[Depends(page_records_full_reads)],
)
def edit_case_page(
    request: Request, case_id: PageCase, session: PageSession, svc: ServicesDep, conn: Conn
) -> HTMLResponse:
    entry_creators_only(session)
    return edit_page(request, session, svc, conn, case_id)


@router.post("/cases/{case_id}/edit", response_class=HTMLResponse)
def edit_case_post(
    request: Request,
    case_id: PageCase,
    session: PageSession,
    svc: ServicesDep,
    conn: Conn,
    posted: PostedForm,
    csrf_token: Annotated[str, Form(max_length=200)],
    version: Annotated[str, Form(max_length=12)],
) -> Response:
    check_csrf(session, csrf_token)
    entry_creators_only(session)
    known = {f.input for f in CORRECTABLE}
    entered = {k: v for k, v in posted.items() if k in known}
    changes: dict[str, dict[str, Any]] = {"worker": {}, "student": {}}
    for f in CORRECTABLE:
        raw = text_of(posted, f.input).strip()
        section, key = f.name.split(".")
        if f.input not in posted or (not raw and is_pii_field(f.name)):
            continue  # not on the form, or a masked number left as it was
        changes[section][key] = typed(f, raw) if raw else (None if not f.required else "")
    expected = form_int(version)
    try:
        with conn.begin_nested():
            try:
                amendment = CaseAmendment.model_validate(changes)
            except ValidationError as exc:
                raise validation_failed(exc) from exc
            row, stored = stored_values(conn, case_id)
            if not isinstance(expected, int) or expected != row.version:
                raise VersionConflict(
                    "案件已被他人修改，请刷新后重试",
                    {"expected_version": expected, "current_version": row.version},
                )
            diff = {
                section: {
                    k: v
                    for k, v in getattr(amendment, section).model_dump(exclude_unset=True).items()
                    if stored[f"{section}.{k}"] != v
                }
                for section in ("worker", "student")
            }
            if not diff["worker"] and not diff["student"]:
                if row.state != CaseState.SURVEY.value:
                    raise _not_in_survey()
                return RedirectResponse(
                    f"/cases/{case_id}?{carried(svc, session, 'flash', '没有需要保存的修改')}",
                    status_code=303,
                )
            new_version = amend_case(
                conn,
                case_id,
                worker_changes=diff["worker"],
                student_changes=diff["student"],
                expected_version=row.version,
                actor=session.actor,
                clock=svc.clock,
            )
    except VersionConflict as conflict:
        row, stored = stored_values(conn, case_id)
        differs = {
            f.input: _plain(stored[f.name])
            for f in CORRECTABLE
            if not is_pii_field(f.name)
            and _plain(stored[f.name]) != text_of(entered, f.input).strip()
        }
        message = (
            f"{conflict.message}：您打开此表后，案件已被修改（现为版本 {row.version}）。"
            "您填写的内容保留在下面；与现存内容不同之处已标出。核对后再次保存即以您的为准。"
        )
        return edit_page(request, session, svc, conn, case_id, values=entered,
                         general=[message], stale=differs, status=409)  # fmt: skip
    except DomainError as refused:
        if isinstance(refused, PermissionDenied):
            raise
        inline, general = errors_by_input(refused, known)
        return edit_page(request, session, svc, conn, case_id, values=entered, errors=inline,
                         general=general, status=refused.status)  # fmt: skip
    done = f"已保存修改（版本 {new_version}）"
    return RedirectResponse(
        f"/cases/{case_id}?{carried(svc, session, 'flash', done)}", status_code=303
    )


def _not_in_survey() -> DomainError:
    return Conflict("只有摸底申报状态的案件可以修改，请先退回补正")


def _plain(value: Any) -> str:
    if value is None:
        return ""
    return value.isoformat() if isinstance(value, dt.date) else str(value)
