"""`jinqiu demo`: the 2024 Weihai campaign, start to finish, on a clock the demo moves.

A city union, its districts and grassroots unions; a few hundred synthetic families surveyed
in July; archive checks, returns for correction (补正), rejections, publicity with the odd
objection, three levels of approval reserving funds, bank-card payments (some failing once)
and follow-up. Prints what happened and the tallies, and checks the audit chains.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import random
import secrets
import unicodedata
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

from sqlalchemy import Connection, Engine, func, select

from jinqiu.demo.synthetic import family
from jinqiu.demo.units import CITY_DIRECT, seed_weihai_tree
from jinqiu.notifications.channels import Sender, SmtpSender
from jinqiu.notifications.models import Channel
from jinqiu.states import MACHINE, CaseEvent, CaseState
from jinqiu.states.employment_record import RecordEvent
from jinqiu.states.payment_batch import STATE_NAMES as BATCH_LABELS
from jinqiu.states.payment_batch import BatchState
from jinqiu.workflow.audit.models import AuditEntry
from jinqiu.workflow.campaigns.models import Campaign, FundSource
from jinqiu.workflow.campaigns.schema import CampaignFile, Deadline
from jinqiu.workflow.campaigns.service import load_campaign
from jinqiu.workflow.cases.engine import apply_event
from jinqiu.workflow.cases.models import Case, Student
from jinqiu.workflow.cases.schema import CaseCreate
from jinqiu.workflow.cases.service import create_case
from jinqiu.workflow.cases.trail import verify_case_chains
from jinqiu.workflow.clock import Clock, ManualClock
from jinqiu.workflow.config import get_settings
from jinqiu.workflow.db import transaction
from jinqiu.workflow.deadlines.schedule import ReminderKind
from jinqiu.workflow.donors.intent import donor_fund_name
from jinqiu.workflow.donors.service import (
    DonorIn,
    UnitFundIn,
    create_donor,
    record_unit_fund,
    unit_funds,
)
from jinqiu.workflow.employment import service as employment
from jinqiu.workflow.employment.engine import RECORDS, help_t, participant_t, post_t, record_t
from jinqiu.workflow.engine.core import fire as fire_on
from jinqiu.workflow.errors import DomainError, GuardFailed
from jinqiu.workflow.followup.models import FollowUpVisit
from jinqiu.workflow.followup.visits import VisitIn, record_visit
from jinqiu.workflow.money import format_yuan
from jinqiu.workflow.payments import service as payments
from jinqiu.workflow.payments.cards import with_check_digit
from jinqiu.workflow.payments.engine import batch_t
from jinqiu.workflow.payments.reconcile import donor_funds, unreconciled
from jinqiu.workflow.publicity_lists.models import PublicityListMember
from jinqiu.workflow.publicity_lists.service import (
    DISMISSED,
    UPHELD,
    build_list,
    publish_list,
    record_objection,
    resolve_objection,
)
from jinqiu.workflow.roles import Actor
from jinqiu.workflow.statistics.reports import submit_report
from jinqiu.workflow.tick import TickReport, tick
from jinqiu.workflow.units.models import Unit
from jinqiu.workflow.users.models import Role
from jinqiu.workflow.users.service import UserCreate, create_user

case_t = Case.__table__  # type: ignore[attr-defined]
student_t = Student.__table__  # type: ignore[attr-defined]
campaign_t = Campaign.__table__  # type: ignore[attr-defined]
audit_t = AuditEntry.__table__  # type: ignore[attr-defined]
visit_t = FollowUpVisit.__table__  # type: ignore[attr-defined]
fund_t = FundSource.__table__  # type: ignore[attr-defined]
unit_t = Unit.__table__  # type: ignore[attr-defined]
member_t = PublicityListMember.__table__  # type: ignore[attr-defined]

CAMPAIGN_FILE = "weihai-2024.json"
STATE_NAMES = {s.value: label for s, label in MACHINE.state_labels.items()}
# The day's work: the lifecycle's event labels, and the statistics tables submitted.
WORK_NAMES = {
    **{e.value: label for e, label in MACHINE.event_labels.items()},
    "report": "报送统计表",
    "publish_list": "发布公示名单",
    "objection": "登记异议",
    "objection_upheld": "异议成立",
    "objection_dismissed": "异议不成立",
    "visit": "登记回访",
    "donor": "登记捐赠方",
    "unit_fund": "登记自筹",
    "employment": "就业登记",
    "work_study": "勤工俭学",
}
FUND_NAMES = {
    "government": "各级党政资金",
    "donation": "社会捐助",
    "union": "各级工会投入",
    "other": "其他方面筹集",
}


# 整合社会资源 (附件2): two donors the city union brings in, each paying the students its intent
# names — the approver at the city names the donor's fund for the first cases that fit.
DONORS = (
    {
        "name": "威海某爱心企业",
        "contact": "王经理 0631-5200000",
        "amount": "18000",
        "intent": {
            "education_levels": ["undergraduate", "college"],
            "max_per_student": "3500",
            "statement": "资助困难职工家庭在读大学生",
        },
        "summary": "企业结对捐资助学，资助困难职工家庭大学生",
    },
    {
        "name": "某公益基金会",
        "contact": "李女士 0631-5300000",
        "amount": "8000",
        "intent": {"education_levels": ["senior", "vocational"], "statement": "资助高中、中职学生"},
        "summary": "公益项目平台募集，资助困难职工家庭高中和中职学生",
    },
)
VISIT_SHARE = 0.7  # of the paid cases visited on 8/30; the campaign's end closes the rest


def find_campaign_file() -> Traversable:
    """examples/campaigns/weihai-2024.json, shipped in the package as `jinqiu.examples`, so an
    installed `jinqiu demo` finds it wherever it runs."""
    return resources.files("jinqiu.examples").joinpath("campaigns", CAMPAIGN_FILE)


@dataclass
class Tally:
    refusals: Counter[str] = field(default_factory=Counter)
    events: Counter[str] = field(default_factory=Counter)
    reminders: Counter[str] = field(default_factory=Counter)
    created: int = 0
    overrides: int = 0
    insufficient_funds: int = 0
    payment_failures: int = 0
    emails: int = 0
    publicity_ended: int = 0
    follow_up_ended: int = 0  # closed by the sweep when the campaign ended, unvisited
    sweep_failures: list[str] = field(default_factory=list)


class Demo:
    def __init__(
        self,
        engine: Engine,
        *,
        cases: int,
        seed: int,
        say: Callable[[str], None],
        senders: dict[str, Sender],
    ) -> None:
        self.engine = engine
        self.senders = senders
        self.settings = get_settings()
        self.returned: list[tuple[int, str]] = []
        self.objected: list[tuple[int, str, int]] = []  # (objection, unit, case)
        self.rng = random.Random(seed)
        self.cases = cases
        self.say = say
        self.clock = ManualClock(dt.datetime(2024, 7, 16, 9, 0))
        self.tally = Tally()
        self._actors: dict[tuple[str, str], Actor] = {}
        self.donor_funds: list[tuple[str, frozenset[str], int]] = []  # fund, levels, cases left

    # -- people -------------------------------------------------------------------------
    def actor(self, unit_code: str, role: str) -> Actor:
        key = (unit_code, role)
        if key not in self._actors:
            with self.engine.connect() as conn:
                row = conn.execute(select(unit_t).where(unit_t.c.code == unit_code)).one()
            self._actors[key] = Actor(
                f"{role}.{unit_code.lower()}", unit_code, row.path, row.level, (role,)
            )
        return self._actors[key]

    def parent_of(self, unit_code: str) -> str:
        return unit_code.rsplit("-", 1)[0]

    # -- one event, its own transaction -------------------------------------------------
    def fire(
        self,
        case_id: int,
        event: CaseEvent,
        who: Actor,
        opinion: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> bool:
        with self.engine.connect() as conn:
            version = conn.execute(
                select(case_t.c.version).where(case_t.c.id == case_id)
            ).scalar_one()
        try:
            with transaction(self.engine) as conn:
                apply_event(
                    conn,
                    case_id=case_id,
                    event=event,
                    expected_version=version,
                    actor=who,
                    clock=self.clock,
                    opinion=opinion,
                    data=data,
                )
        except GuardFailed as refused:
            for reason in refused.reasons:
                self.tally.refusals[reason.code] += 1
            return False
        except DomainError as refused:
            self.tally.refusals[refused.code] += 1
            if refused.code == "insufficient_funds":
                self.tally.insufficient_funds += 1
            return False
        self.tally.events[event.value] += 1
        return True

    def cases_in(self, state: CaseState, **where: Any) -> list[tuple[int, str]]:
        query = (
            select(case_t.c.id, unit_t.c.code)
            .join(unit_t, unit_t.c.id == case_t.c.unit_id)
            .where(case_t.c.state == state.value)
        )
        for column, value in where.items():
            query = query.where(case_t.c[column] == value)
        with self.engine.connect() as conn:
            return [(r.id, r.code) for r in conn.execute(query.order_by(case_t.c.id))]

    def day(self, when: dt.date, hour: int = 9) -> None:
        self.clock.set(dt.datetime.combine(when, dt.time(hour)))

    # -- the campaign, day by day ------------------------------------------------------------
    def run(self) -> None:
        spec = CampaignFile.model_validate(
            json.loads(find_campaign_file().read_text(encoding="utf-8"))
        )
        with transaction(self.engine) as conn:
            self.tree = seed_weihai_tree(conn)
            self.campaign_id = load_campaign(conn, spec, self.clock)
        self.spec = spec
        tree = self.tree
        self.say(
            f"活动：{spec.name}（id {self.campaign_id}），主办 {tree.city}，"
            f"{len(tree.districts)} 个区市/产业工会，{len(tree.grassroots)} 个基层工会"
        )
        for phase in spec.phases:
            self.say(f"  阶段 {phase.starts:%m-%d}–{phase.ends:%m-%d} {phase.name}")
        for deadline in spec.deadlines:
            self.say(f"  截止 {deadline.due:%m-%d} {deadline.title}（{responsible_of(deadline)}）")
        # Deliberately late: three grassroots unions of 市直 (whose 7/31 duty it is) sit on
        # their surveyed cases until 8/5, and one district union submits its statistics table
        # only on 9/3.
        city_direct = [g for g in tree.grassroots if g.startswith(f"{CITY_DIRECT}-")]
        self.late_grassroots = set(self.rng.sample(city_direct, 3))
        self.late_district = "WH-RS"
        self.say(
            f"  （演示：{', '.join(sorted(self.late_grassroots))} 逾期报送摸底材料，"
            f"{self.late_district} 逾期报送统计表）"
        )
        self.say("\n日期         提醒 逾期 督办 公示期满 邮件  当日办理")
        start, end = dt.date(2024, 7, 16), dt.date(2024, 9, 5)
        per_day = self.plan_surveys(start)
        day = start
        while day <= end:
            self.day(day, hour=8)
            swept = self.morning_tick()
            self.day(day, hour=10)
            done = self.work(day, per_day.get(day, 0))
            self.print_day(day, swept, done)
            day += dt.timedelta(days=1)

    def plan_surveys(self, start: dt.date) -> dict[dt.date, int]:
        days = [start + dt.timedelta(days=i) for i in range(14)]  # 7/16–7/29
        plan: Counter[dt.date] = Counter()
        for _ in range(self.cases):
            plan[self.rng.choice(days)] += 1
        return dict(plan)

    def morning_tick(self) -> TickReport:
        report = tick(self.engine, self.clock, self.settings, senders=self.senders)
        self.tally.reminders.update(r.kind for r in report.sweep.reminders)
        self.tally.emails += report.delivery.sent
        self.tally.publicity_ended += len(report.sweep.publicity.ended)
        self.tally.follow_up_ended += report.sweep.follow_up.count
        self.tally.sweep_failures.extend(
            f"{self.clock.now().date()} {f.campaign_name or '全部'}（{f.stage}）：{f.error}"
            for f in report.sweep.failures
        )
        return report

    def work(self, day: dt.date, surveys: int) -> Counter[str]:
        before = Counter(self.tally.events)
        md = (day.month, day.day)
        if surveys:
            self.survey_day(surveys)
        if md == (7, 31):
            self.withdraw_ineligible()
        if dt.date(2024, 8, 1) <= day <= dt.date(2024, 8, 12) and day.weekday() < 5:
            self.archive_check_day(day)
        if md == (8, 5):
            self.late_units_submit()
            self.raise_objections()
        if md == (8, 14):
            self.resubmit_returned()
        if dt.date(2024, 8, 1) <= day <= dt.date(2024, 8, 14) and day.weekday() < 5:
            self.publish_lists()
        if md == (8, 16):
            self.resolve_objections()
        if md == (8, 20):
            self.raise_funds()
        if md == (8, 23):
            self.approve_level(0, lambda unit: unit)
        if md == (8, 26):
            self.approve_level(1, self.parent_of)
        if md == (8, 27):
            self.approve_level(2, lambda _unit: "WH")
        if md in {(8, 28), (8, 29)}:
            self.pay_day(retry=md == (8, 29))
        if md == (8, 29):
            self.employment_and_work_study()
        if md == (8, 30):
            self.visit_paid_cases()
        if md in {(8, 27), (8, 28), (8, 29), (8, 30)}:
            self.submit_reports(day)
        if md == (9, 3):
            self.submit_report(self.late_district)
        return Counter(self.tally.events) - before

    def survey_day(self, n: int) -> None:
        for _ in range(n):
            unit = self.rng.choice(self.tree.grassroots)
            fam = family(self.rng, self.spec.year, today=self.clock.now().date())
            clerk = self.actor(unit, "clerk")
            try:
                with transaction(self.engine) as conn:
                    case_id = create_case(
                        conn,
                        CaseCreate.model_validate(
                            {"campaign": self.campaign_id, "unit": unit, **fam}
                        ),
                        actor=clerk,
                        clock=self.clock,
                    )
            except DomainError as refused:
                self.tally.refusals[refused.code] += 1
                continue
            self.tally.created += 1
            if unit not in self.late_grassroots:
                self.fire(case_id, CaseEvent.SUBMIT, clerk)

    def withdraw_ineligible(self) -> None:
        """Families outside the archive, or archived over a year ago, cannot go on: withdrawn."""
        self.day(self.clock.now().date(), hour=17)
        for case_id, unit in self.cases_in(CaseState.SURVEY):
            if unit not in self.late_grassroots:
                self.fire(case_id, CaseEvent.WITHDRAW, self.actor(unit, "clerk"))

    def late_units_submit(self) -> None:
        """The late unions finally submit; past the window, their district manager overrides it."""
        for case_id, unit in self.cases_in(CaseState.SURVEY):
            if unit in self.late_grassroots:
                override = {
                    "override": {
                        "guards": ["within_survey_window"],
                        "reason": "基层工会逾期报送，经区总工会同意补报",
                    }
                }
                if self.fire(
                    case_id,
                    CaseEvent.SUBMIT,
                    self.actor(self.parent_of(unit), "manager"),
                    data=override,
                ):
                    self.tally.overrides += 1
                else:
                    self.fire(case_id, CaseEvent.WITHDRAW, self.actor(unit, "clerk"))

    def archive_check_day(self, day: dt.date) -> None:
        pending = self.cases_in(CaseState.ARCHIVE_CHECK)
        share = max(1, len(pending) // max(1, (dt.date(2024, 8, 12) - day).days // 2 + 1))
        for case_id, unit in pending[:share]:
            reviewer = self.actor(self.parent_of(unit), "reviewer")
            roll = self.rng.random()
            if roll < 0.06 and case_id not in {c for c, _ in self.returned}:
                if self.fire(
                    case_id, CaseEvent.RETURN, reviewer, opinion="缺少录取通知书复印件，请补正"
                ):
                    self.returned.append((case_id, unit))
            elif roll < 0.09:
                self.fire(
                    case_id, CaseEvent.REJECT, reviewer, opinion="家庭月人均收入高于当地困难标准"
                )
            else:
                self.fire(case_id, CaseEvent.VERIFY, reviewer, opinion="档案核查无误，同意公示")

    def resubmit_returned(self) -> None:
        """Corrected cases come back after the survey window: the district manager overrides it."""
        for case_id, unit in self.returned:
            district = self.parent_of(unit)
            override = {
                "override": {
                    "guards": ["within_survey_window"],
                    "reason": "补正材料后重新报送，同意逾期受理",
                }
            }
            if self.fire(case_id, CaseEvent.SUBMIT, self.actor(district, "manager"), data=override):
                self.tally.overrides += 1
                self.fire(
                    case_id,
                    CaseEvent.VERIFY,
                    self.actor(district, "reviewer"),
                    opinion="补正后核查无误",
                )

    def publish_lists(self) -> None:
        """Each district union puts its cases waiting for publicity on a list (公示名单) at the
        end of the day and publishes it: the cases' period is the list's."""
        self.day(self.clock.now().date(), hour=16)
        waiting = {
            self.parent_of(unit) for _case, unit in self.cases_in(CaseState.READY_FOR_PUBLICITY)
        }
        for district in sorted(waiting):
            reviewer = self.actor(district, "reviewer")
            try:
                with transaction(self.engine) as conn:
                    unit = conn.execute(select(unit_t).where(unit_t.c.code == district)).one()
                    list_id = build_list(conn, campaign_id=self.campaign_id, unit=unit,
                                         actor=reviewer, clock=self.clock)  # fmt: skip
                    publish_list(conn, list_id, actor=reviewer, clock=self.clock)
            except DomainError as refused:
                self.tally.refusals[refused.code] += 1
                continue
            self.tally.events["publish_list"] += 1
        self.day(self.clock.now().date(), hour=10)

    def raise_objections(self) -> None:
        """异议 against a few cases of the published lists, recorded against their list."""
        in_publicity = self.cases_in(CaseState.PUBLICITY)
        self.objected = []
        for case_id, unit in self.rng.sample(
            in_publicity, k=min(len(in_publicity), max(1, len(in_publicity) // 60))
        ):
            reviewer = self.actor(self.parent_of(unit), "reviewer")
            try:
                with transaction(self.engine) as conn:
                    list_id = conn.execute(
                        select(member_t.c.list_id).where(
                            member_t.c.case_id == case_id, member_t.c.active
                        )
                    ).scalar_one()
                    objection = record_objection(
                        conn, list_id, case_id=case_id, objector="匿名群众",
                        contact="12351（职工服务热线转）", content="群众反映该户有经营性收入",
                        received_on=None, actor=reviewer, clock=self.clock,
                    )  # fmt: skip
            except DomainError as refused:
                self.tally.refusals[refused.code] += 1
                continue
            self.objected.append((objection, unit, case_id))
            self.tally.events["objection"] += 1

    def resolve_objections(self) -> None:
        """All dismissed after checking, but the first: upheld, and that case is rejected."""
        for n, (objection, unit, _case_id) in enumerate(self.objected):
            upheld = n == 0
            try:
                with transaction(self.engine) as conn:
                    resolve_objection(
                        conn, objection,
                        outcome=UPHELD if upheld else DISMISSED,
                        reason="经核实，家庭经营性收入未如实申报" if upheld
                        else "经核实，经营性收入已计入，仍符合条件",
                        actor=self.actor(self.parent_of(unit), "reviewer"), clock=self.clock,
                    )  # fmt: skip
            except DomainError as refused:
                self.tally.refusals[refused.code] += 1
                continue
            self.tally.events["objection_upheld" if upheld else "objection_dismissed"] += 1

    def approve_level(self, step: int, approver_unit: Callable[[str], str]) -> None:
        last = step == len(self.spec.approval_levels) - 1
        levels = self.education_levels() if last else {}
        for case_id, unit in self.cases_in(CaseState.APPROVAL, approval_step=step):
            opinion = ("情况属实，同意上报", "审核同意", "审批同意资助")[step]
            self.fire(
                case_id,
                CaseEvent.APPROVE,
                self.actor(approver_unit(unit), "approver"),
                opinion=opinion,
                data=self.donor_fund_for(levels.get(case_id)) if last else None,
            )

    def education_levels(self) -> dict[int, str]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(case_t.c.id, student_t.c.education_level)
                .join(student_t, student_t.c.id == case_t.c.student_id)
                .where(case_t.c.state == CaseState.APPROVAL.value)
            )
            return {r.id: r.education_level for r in rows}

    def donor_fund_for(self, level: str | None) -> dict[str, Any] | None:
        """The first donor fund whose intent takes this student and that has room for one more
        (each donor pays as many students as its amount covers at the highest rule)."""
        for i, (fund, levels, left) in enumerate(self.donor_funds):
            if left > 0 and level in levels:
                self.donor_funds[i] = (fund, levels, left - 1)
                return {"fund_source": fund}
        return None

    def raise_funds(self) -> None:
        """社会资源 and 自筹 before the approvals: the city manager records the donors, and each
        district union the money it raised itself (A1–A4 of 附件1 add up from the districts)."""
        manager = self.actor("WH", "manager")
        for donor in DONORS:
            with transaction(self.engine) as conn:
                donor_id = create_donor(conn, self.campaign_id, DonorIn.model_validate(donor),
                                        actor=manager, clock=self.clock)  # fmt: skip
            levels = frozenset(donor["intent"]["education_levels"])  # type: ignore[index]
            self.donor_funds.append(
                (donor_fund_name(donor_id), levels, int(donor["amount"]) // 3500)  # type: ignore[call-overload]
            )
            self.tally.events["donor"] += 1
        for i, district in enumerate(self.tree.districts[:3]):
            fund = {"unit": district, "source": ("union", "donation", "other")[i],
                    "amount": str(5000 * (i + 1)), "note": "区市总工会自筹"}  # fmt: skip
            with transaction(self.engine) as conn:
                record_unit_fund(conn, self.campaign_id, UnitFundIn.model_validate(fund),
                                 actor=self.actor(district, "manager"), clock=self.clock)  # fmt: skip
            self.tally.events["unit_fund"] += 1

    def pay_day(self, *, retry: bool) -> None:
        """发放 by bank card, through payment batches: the city's finance builds a batch per fund
        source of the cases waiting for payment and hands the bank its 代发 file; the bank's
        result comes back with some 退票 (3 %) on the first day. The next day finance corrects
        the returned cards and pays those cases in a retry batch."""
        finance = self.actor("WH", "finance")
        if retry:
            for batch_id in self.batches_with_failures():
                with transaction(self.engine) as conn:
                    for case_id, version in self.failed_in(conn, batch_id):
                        payments.correct_bank_card(
                            conn,
                            case_id,
                            card_number=with_check_digit(f"621700{case_id:012d}"),
                            holder=None,
                            reason="银行退票：卡号与户名不符，已与职工核对更正",
                            expected_version=version,
                            actor=finance,
                            clock=self.clock,
                        )
                    built = payments.retry_batch(conn, batch_id, actor=finance, clock=self.clock)
                self.pay_batch(built.id, finance, fail=False)
        with self.engine.connect() as conn:
            sources = (
                conn.execute(
                    select(fund_t.c.source)
                    .join(case_t, case_t.c.fund_source_id == fund_t.c.id)
                    .where(
                        case_t.c.state == CaseState.DISBURSEMENT.value,
                        case_t.c.payment_batch_id.is_(None),
                    )
                    .distinct()
                    .order_by(fund_t.c.source)
                )
                .scalars()
                .all()
            )
        for source in sources:
            with transaction(self.engine) as conn:
                built = payments.build_batch(
                    conn,
                    campaign_id=self.campaign_id,
                    fund_source=source,
                    unit_code="WH",
                    case_ids=None,
                    actor=finance,
                    clock=self.clock,
                )
            self.pay_batch(built.id, finance, fail=not retry)

    def pay_batch(self, batch_id: int, finance: Actor, *, fail: bool) -> None:
        """The bank file out, and the bank's answer in: each row paid, or (when `fail`) 退票 for
        about 3 % of them."""
        with transaction(self.engine) as conn:
            exported = payments.export_file(
                conn, batch_id, "csv", actor=finance, clock=self.clock, purpose="demo"
            )
        rows = list(csv.reader(io.StringIO(exported.content.decode("gb18030"))))
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["序号", "金额", "状态", "失败原因"])
        for row in rows[1:-1]:
            failed = fail and self.rng.random() < 0.03
            writer.writerow(
                [row[0], row[4], "失败" if failed else "成功", "户名与卡号不符" if failed else ""]
            )
        with transaction(self.engine) as conn:
            applied = payments.import_result(
                conn,
                batch_id,
                out.getvalue().encode("utf-8"),
                "result.csv",
                actor=finance,
                clock=self.clock,
            )
        self.tally.events[CaseEvent.PAY.value] += applied.paid
        self.tally.events[CaseEvent.PAYMENT_FAILED.value] += applied.failed
        self.tally.payment_failures += applied.failed

    def batches_with_failures(self) -> list[int]:
        with self.engine.connect() as conn:
            return list(
                conn.execute(
                    select(batch_t.c.id)
                    .where(batch_t.c.state == BatchState.RESULT_IMPORTED.value)
                    .order_by(batch_t.c.id)
                ).scalars()
            )

    def failed_in(self, conn: Connection, batch_id: int) -> list[tuple[int, int]]:
        """The batch's returned cases still waiting for payment, with their versions."""
        items = payments.batch_items(conn, batch_id)
        failed = [i.case_id for i in items if i.outcome == payments.FAILED]
        return sorted(payments.case_versions(conn, failed).items())

    def employment_and_work_study(self) -> None:
        """阳光就业 and 勤工俭学 for students of paid cases: a few graduates registered (help
        given, one employed), and two work-study posts with participants (附件1 H–I)."""
        paid = self.cases_in(CaseState.FOLLOW_UP)
        for n, (case_id, unit) in enumerate(paid[:6]):
            clerk = self.actor(unit, "clerk")
            with transaction(self.engine) as conn:
                campaign = conn.execute(
                    select(campaign_t.c.id, campaign_t.c.year).where(
                        campaign_t.c.id == self.campaign_id
                    )
                ).one()
                record = employment.register(
                    conn, campaign=campaign, case_id=case_id, graduation_year=self.spec.year,
                    school="山东某大学", major=None, studies_locally=n % 2 == 0,
                    actor=clerk, clock=self.clock,
                )  # fmt: skip
                employment.record_help(conn, record, kind=("referral", "training")[n % 2],
                                       given_on=None, text=None, amount_fen=None,
                                       actor=clerk, clock=self.clock)  # fmt: skip
                version = conn.execute(
                    select(RECORDS.table.c.version).where(RECORDS.table.c.id == record)
                ).scalar_one()
                fired = fire_on(conn, RECORDS, subject_id=record,
                                event=RecordEvent.START_SEEKING, expected_version=version,
                                actor=clerk, clock=self.clock)  # fmt: skip
                if n < 2:
                    fire_on(conn, RECORDS, subject_id=record, event=RecordEvent.EMPLOY,
                            expected_version=fired.version, actor=clerk, clock=self.clock,
                            data={"employer": "威海某制造企业"})  # fmt: skip
            self.tally.events["employment"] += 1
        registered = {case_id for case_id, _unit in paid[:6]}
        for district in self.tree.districts[:2]:
            manager = self.actor(district, "manager")
            people = [c for c, u in paid if u.startswith(f"{district}-") and c not in registered]
            with transaction(self.engine) as conn:
                office = conn.execute(select(unit_t).where(unit_t.c.code == district)).one()
                post = employment.open_post(
                    conn, campaign_id=self.campaign_id, unit=office, title="暑期帮扶服务",
                    employer=f"{office.name}职工服务中心", kind="community", hours_per_week=10,
                    hourly_pay_fen=2000, actor=manager, clock=self.clock,
                )  # fmt: skip
                for case_id in people[:3]:
                    employment.add_participant(conn, post, case_id=case_id, actor=manager,
                                               clock=self.clock)  # fmt: skip
            self.tally.events["work_study"] += 1

    def visit_paid_cases(self) -> None:
        """回访: most paid families are visited (the visit closes the case by the campaign's
        rule); the others are still in follow-up when the campaign ends on 8/31, and the
        morning sweep of 9/1 closes them, their trail saying 活动结束，未回访."""
        for case_id, unit in self.cases_in(CaseState.FOLLOW_UP):
            if self.rng.random() >= VISIT_SHARE:
                continue
            visit = VisitIn.model_validate({
                "date": self.clock.now().date().isoformat(),
                "kind": self.rng.choice(("home", "phone", "school")),
                "visitor": "基层工会干事", "notes": "学习生活正常",
            })  # fmt: skip
            try:
                with transaction(self.engine) as conn:
                    record_visit(conn, case_id, visit, actor=self.actor(unit, "clerk"),
                                 clock=self.clock)  # fmt: skip
            except DomainError as refused:
                self.tally.refusals[refused.code] += 1
                continue
            self.tally.events["visit"] += 1

    def submit_reports(self, day: dt.date) -> None:
        for i, district in enumerate(self.tree.districts):
            if district != self.late_district and i % 4 == (day.day - 27):
                self.submit_report(district)

    def submit_report(self, district: str) -> None:
        try:
            with transaction(self.engine) as conn:
                submit_report(
                    conn,
                    campaign_id=self.campaign_id,
                    unit_code=district,
                    kind="statistics",
                    note="活动总结和统计表",
                    actor=self.actor(district, "manager"),
                    clock=self.clock,
                )
            self.tally.events["report"] += 1
        except DomainError as refused:
            self.tally.refusals[refused.code] += 1

    def print_day(self, day: dt.date, swept: TickReport, done: Counter[str]) -> None:
        s = swept.sweep
        before, overdue, escalated = (s.count(k) for k in ReminderKind)
        ended = len(s.publicity.ended)
        closed = s.follow_up.count  # the campaign ended: the sweep closed what was unvisited
        if not (before or overdue or escalated or ended or closed or swept.delivery.sent or done):
            return
        work = "，".join(f"{WORK_NAMES.get(k, k)}{n}" for k, n in done.items() if n)
        if closed:
            label = MACHINE.event_labels[CaseEvent.END_FOLLOW_UP]
            work = "，".join(w for w in (f"{label}（未回访）{closed}", work) if w)
        weekday = "一二三四五六日"[day.weekday()]
        self.say(
            f"{day:%m-%d} 周{weekday}   {before:>4} {overdue:>4} {escalated:>4} {ended:>8} "
            f"{swept.delivery.sent:>4}  {work}"
        )
        escalations = [r for r in s.reminders if r.kind == ReminderKind.ESCALATION.value]
        if escalations:
            late = "、".join(
                f"{r.unit_code}（逾期{r.occurrence}日）→{r.notified_unit_code}"
                for r in escalations[:4]
            )
            more = f" 等{len(escalations)}个单位" if len(escalations) > 4 else ""
            self.say(f"             ↳ 督办 {late}{more}")

    def refusal_text(self) -> str:
        names = {
            "archive_expired": "建档满一年须重新申报",
            "not_in_archive": "不在困难职工档案内",
            "already_aided": "已获其他资助",
            "duplicate_student": "重复申报",
        }
        parts = [f"{names.get(code, code)} {n}" for code, n in self.tally.refusals.most_common()]
        return "，".join(parts) or "无"

    # -- the summary ------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        with self.engine.connect() as conn:
            states: dict[str, int] = dict(
                conn.execute(select(case_t.c.state, func.count()).group_by(case_t.c.state)).all()
            )
            funds = conn.execute(select(fund_t).order_by(fund_t.c.position)).all()
            broken = list(verify_case_chains(conn))
        return {"states": states, "funds": funds, "broken": broken}

    def print_summary(self) -> None:
        result = self.summary()
        self.say("\n== 各状态案件数 ==")
        total = 0
        for state in MACHINE.state_names:
            n = int(result["states"].get(state.value, 0))
            total += n
            self.say(f"  {state.value:<20}{pad(STATE_NAMES[state.value], 10)}{n:>6}")
        self.say(f"  {'total':<20}{pad('合计', 10)}{total:>6}")
        self.say("\n== 资金（元） ==")
        self.say(
            "  "
            + pad("来源", 14)
            + "".join(pad(h, 14, right=True) for h in ("预算", "已预留", "已发放", "结余"))
        )
        for f in result["funds"]:
            left = f.budget_fen - f.reserved_fen - f.paid_fen
            self.say(
                f"  {pad(self.fund_name(f.source), 14)}{format_yuan(f.budget_fen):>14}"
                f"{format_yuan(f.reserved_fen):>14}{format_yuan(f.paid_fen):>14}{format_yuan(left):>14}"
            )
        with self.engine.connect() as conn:
            balanced = not unreconciled(conn, self.campaign_id)
            batches = conn.execute(
                select(batch_t, fund_t.c.source)
                .join(fund_t, fund_t.c.id == batch_t.c.fund_source_id)
                .order_by(batch_t.c.id)
            ).all()
        self.say(
            "  资金对账：" + ("预算 = 结余 + 已预留 + 已发放，与案件一致" if balanced else "不平")
        )
        self.say("\n== 发放批次 ==")
        for b in batches:
            retry = f"，重发自 {b.retry_of}" if b.retry_of else ""
            self.say(
                f"  批次 {b.id}（{self.fund_name(b.source)}{retry}）：{b.rows} 笔 "
                f"{format_yuan(b.total_fen)} 元，成功 {b.paid}，退票 {b.failed}，"
                f"{BATCH_LABELS[b.state]}"
            )
        self.print_second_half()
        broken = len(result["broken"])
        self.say("\n审计链校验：" + ("全部完整" if not broken else f"发现 {broken} 处断裂"))

    def fund_name(self, source: str) -> str:
        """A campaign source's name, or a donor fund's donor (its row is `donor:<id>`)."""
        donors = {
            f: str(d["name"])
            for (f, _levels, _left), d in zip(self.donor_funds, DONORS, strict=True)
        }
        return FUND_NAMES.get(source) or donors.get(source, source)

    def second_half(self) -> dict[str, Any]:
        """回访, donors, 自筹, employment and work-study as the registers hold them."""
        with self.engine.connect() as conn:
            ended: dict[str, int] = dict(
                conn.execute(
                    select(audit_t.c.event, func.count())
                    .where(audit_t.c.event.in_((CaseEvent.CLOSE, CaseEvent.END_FOLLOW_UP)))
                    .group_by(audit_t.c.event)
                ).all()
            )

            def count(table: Any, *where: Any) -> int:
                return int(
                    conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one()
                )

            return {
                "visits": count(visit_t),
                "closed_by_visit": int(ended.get(CaseEvent.CLOSE.value, 0)),
                "closed_at_end": int(ended.get(CaseEvent.END_FOLLOW_UP.value, 0)),
                "donors": donor_funds(conn, self.campaign_id),
                "unit_funds": sum(
                    Decimal(f["amount"]) for f in unit_funds(conn, self.campaign_id, path="/")
                ),
                "records": count(record_t),
                "help": count(help_t),
                "posts": count(post_t),
                "participants": count(participant_t, participant_t.c.active),
            }

    def print_second_half(self) -> None:
        h = self.second_half()
        self.say("\n== 回访、社会资源与就业 ==")
        self.say(
            f"  回访记录 {h['visits']} 次：回访办结 {h['closed_by_visit']} 件，"
            f"活动结束（8月31日）未回访、由系统办结 {h['closed_at_end']} 件"
        )
        for d in h["donors"]:
            self.say(
                f"  捐赠方 {d['name']}：助学资金 {d['budget']} 元，"
                f"已发放 {d['paid']} 元，资助 {d['aided']} 人"
            )
        self.say(f"  各区市自筹资金合计 {h['unit_funds']:.2f} 元")
        self.say(
            f"  阳光就业登记 {h['records']} 人、帮扶 {h['help']} 次；"
            f"勤工俭学岗位 {h['posts']} 个、参加 {h['participants']} 人"
        )


def pad(text: str, width: int, *, right: bool = False) -> str:
    """Pads to a terminal width where each Chinese character takes two columns."""
    used = sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)
    space = " " * max(0, width - used)
    return space + text if right else text + space


def run_demo(
    engine: Engine, *, cases: int = 300, seed: int = 2024, say: Callable[[str], None] = print
) -> dict[str, Any]:
    """Runs the campaign; reminders go by e-mail to an SMTP server the demo starts on loopback."""
    with LoopbackMailbox() as mailbox:
        senders: dict[str, Sender] = {
            Channel.EMAIL.value: SmtpSender(
                mailbox.host, mailbox.port, "jinqiu@weihai.example.org"
            ),
        }
        demo = Demo(engine, cases=cases, seed=seed, say=say, senders=senders)
        demo.run()
        demo.print_summary()
        say(
            f"提醒：截止前 {demo.tally.reminders['before']}，逾期 {demo.tally.reminders['overdue']}，"
            f"督办 {demo.tally.reminders['escalation']}；本地 SMTP 服务器收到邮件 {len(mailbox.messages)} 封"
            f"（{mailbox.host}:{mailbox.port}）"
        )
        if mailbox.messages:
            say(f"  例：{mailbox.messages[-1]}")
        failures = demo.tally.sweep_failures
        if failures:  # the sweep isolates failures to keep going; a demo must not hide them
            say(f"定时任务出错 {len(failures)} 次，例：{failures[0]}")
        return {**demo.summary(), "sweep_failures": failures}


class LoopbackMailbox:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 for the demo's reminders; keeps subjects."""

    def __init__(self) -> None:
        self.messages: list[str] = []
        self.host = "127.0.0.1"
        self.port = 0

    def __enter__(self) -> LoopbackMailbox:
        import socket
        from email import message_from_bytes
        from email.header import decode_header, make_header

        from aiosmtpd.controller import Controller

        mailbox = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                mail = message_from_bytes(envelope.original_content)
                mailbox.messages.append(str(make_header(decode_header(mail["Subject"] or ""))))
                return "250 OK"

        with socket.socket() as probe:
            probe.bind((self.host, 0))
            self.port = probe.getsockname()[1]
        self.controller = Controller(Handler(), hostname=self.host, port=self.port)
        self.controller.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.controller.stop()


def count_cases(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(case_t)).scalar_one())


# Who signs in after the demo: one account per role. The city union sees the whole campaign
# (the dashboard, the statistics, the audit); the approver and reviewer sit at a district, the
# clerk at one of its grassroots unions, where the survey is done.
DEMO_ACCOUNTS = (
    ("demo.admin", "admin", "WH", "演示管理员"),
    ("demo.manager", "manager", "WH", "演示业务主管"),
    ("demo.auditor", "auditor", "WH", "演示经审"),
    ("demo.finance", "finance", "WH", "演示财务"),
    ("demo.approver", "approver", "WH-HC", "演示审批人"),
    ("demo.reviewer", "reviewer", "WH-HC", "演示审核人"),
    ("demo.clerk", "clerk", None, "演示经办人"),
)


@dataclass(frozen=True)
class DemoAccount:
    username: str
    role: str
    unit: str
    password: str


def create_demo_accounts(engine: Engine, clock: Clock) -> list[DemoAccount]:
    """One user per role with a random password (printed once by `jinqiu demo`, stored only as
    its Argon2 hash)."""
    accounts = []
    with transaction(engine) as conn:
        first_grassroots = conn.execute(
            select(unit_t.c.code)
            .where(unit_t.c.level == "grassroots", unit_t.c.code.like("WH-HC-%"))
            .order_by(unit_t.c.code)
            .limit(1)
        ).scalar_one()
        for username, role, unit, name in DEMO_ACCOUNTS:
            account = DemoAccount(
                username, role, unit or first_grassroots, secrets.token_urlsafe(12)
            )
            spec = UserCreate(username=username, password=account.password, display_name=name,
                              unit=account.unit, roles=[Role(role)])  # fmt: skip
            create_user(conn, spec, clock)
            accounts.append(account)
    return accounts


def responsible_of(deadline: Deadline) -> str:
    """Who owes a deadline, as the campaign file says it (市直各单位, or a level)."""
    if deadline.responsible is not None:
        return deadline.responsible.label
    return str(deadline.responsible_level)
