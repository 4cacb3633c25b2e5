"""`jinqiu demo`: the 2024 Weihai campaign, start to finish, on a clock the demo moves.

A city union, its districts and grassroots unions; a few hundred synthetic families surveyed
in July; archive checks, returns for correction (补正), rejections, publicity with the odd
objection, three levels of approval reserving funds, bank-card payments (some failing once)
and follow-up. Prints what happened and the tallies, and checks the audit chains.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, func, select

from states import CaseEvent, CaseState
from workflow.audit.chain import verify_chains
from workflow.campaigns.models import FundSource
from workflow.campaigns.schema import CampaignFile
from workflow.campaigns.service import load_campaign
from workflow.cases.engine import apply_event
from workflow.cases.models import Case
from workflow.cases.schema import CaseCreate
from workflow.cases.service import create_case
from workflow.clock import ManualClock
from workflow.db import transaction
from workflow.demo.synthetic import family
from workflow.demo.units import Tree, seed_weihai_tree
from workflow.errors import DomainError, GuardFailed
from workflow.money import format_yuan
from workflow.publicity import end_due_publicity
from workflow.roles import Actor
from workflow.units.models import Unit

case_t = Case.__table__  # type: ignore[attr-defined]
fund_t = FundSource.__table__  # type: ignore[attr-defined]
unit_t = Unit.__table__  # type: ignore[attr-defined]

CAMPAIGN_FILE = Path("examples/campaigns/weihai-2024.json")
STATE_NAMES = {
    "survey": "摸底申报", "archive_check": "档案核查", "publicity": "公示", "approval": "审批",
    "disbursement": "发放", "follow_up": "回访", "closed": "办结", "rejected": "不予资助",
    "withdrawn": "撤回",
}
FUND_NAMES = {"government": "各级党政资金", "donation": "社会捐助", "union": "各级工会投入",
              "other": "其他方面筹集"}


def find_campaign_file() -> Path:
    for candidate in (Path.cwd() / CAMPAIGN_FILE, Path(__file__).resolve().parents[2] / CAMPAIGN_FILE):
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"{CAMPAIGN_FILE} not found (run from the project root)")


@dataclass
class Tally:
    refusals: Counter[str] = field(default_factory=Counter)
    events: Counter[str] = field(default_factory=Counter)
    overrides: int = 0
    insufficient_funds: int = 0


class Demo:
    def __init__(self, engine: Engine, *, cases: int, seed: int, say: Callable[[str], None]) -> None:
        self.engine = engine
        self.rng = random.Random(seed)
        self.cases = cases
        self.say = say
        self.clock = ManualClock(dt.datetime(2024, 7, 16, 9, 0))
        self.tally = Tally()
        self._actors: dict[tuple[str, str], Actor] = {}

    # -- people -------------------------------------------------------------------------
    def actor(self, unit_code: str, role: str) -> Actor:
        key = (unit_code, role)
        if key not in self._actors:
            with self.engine.connect() as conn:
                row = conn.execute(select(unit_t).where(unit_t.c.code == unit_code)).one()
            self._actors[key] = Actor(f"{role}.{unit_code.lower()}", unit_code, row.path, row.level, (role,))
        return self._actors[key]

    def parent_of(self, unit_code: str) -> str:
        return unit_code.rsplit("-", 1)[0]

    # -- one event, its own transaction -------------------------------------------------
    def fire(self, case_id: int, event: CaseEvent, who: Actor, opinion: str | None = None,
             data: dict[str, Any] | None = None) -> bool:
        with self.engine.connect() as conn:
            version = conn.execute(select(case_t.c.version).where(case_t.c.id == case_id)).scalar_one()
        try:
            with transaction(self.engine) as conn:
                apply_event(conn, case_id=case_id, event=event, expected_version=version, actor=who,
                            clock=self.clock, opinion=opinion, data=data)
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

    # -- the campaign ---------------------------------------------------------------------
    def run(self) -> None:
        spec = CampaignFile.model_validate(json.loads(find_campaign_file().read_text(encoding="utf-8")))
        with transaction(self.engine) as conn:
            tree = seed_weihai_tree(conn)
            campaign_id = load_campaign(conn, spec, self.clock)
        self.say(f"活动：{spec.name}（id {campaign_id}），主办 {tree.city}，"
                 f"{len(tree.districts)} 个区市/产业工会，{len(tree.grassroots)} 个基层工会")
        for phase in spec.phases:
            self.say(f"  阶段 {phase.starts:%m-%d}–{phase.ends:%m-%d} {phase.name}")
        self.survey(tree, campaign_id, spec)
        self.archive_check(campaign_id)
        self.publicity()
        self.approval()
        self.disbursement()
        self.follow_up()

    def survey(self, tree: Tree, campaign_id: int, spec: CampaignFile) -> None:
        self.say("\n第一阶段 宣传发动，调查摸底（7/16–7/31）")
        survey_days = [spec.phases[0].starts + dt.timedelta(days=i)
                       for i in range((spec.phases[0].ends - spec.phases[0].starts).days + 1)]
        created = 0
        for i in range(self.cases):
            self.day(self.rng.choice(survey_days[:-2]), hour=9 + i % 8)
            unit = self.rng.choice(tree.grassroots)
            fam = family(self.rng, spec.year, today=self.clock.now().date())
            clerk = self.actor(unit, "clerk")
            try:
                with transaction(self.engine) as conn:
                    case_id = create_case(conn, CaseCreate.model_validate(
                        {"campaign": campaign_id, "unit": unit, **fam}), actor=clerk, clock=self.clock)
            except DomainError as refused:
                self.tally.refusals[refused.code] += 1
                continue
            created += 1
            self.fire(case_id, CaseEvent.SUBMIT, clerk)
        self.say(f"  摸底建档 {created} 件，提交 {self.tally.events['submit']} 件；"
                 f"未通过：{self.refusal_text()}")
        # Families outside the archive or with an archive over a year old cannot go on: withdrawn.
        self.day(dt.date(2024, 7, 31), hour=17)
        for case_id, unit in self.cases_in(CaseState.SURVEY):
            self.fire(case_id, CaseEvent.WITHDRAW, self.actor(unit, "clerk"))
        self.say(f"  7/31 截止：撤回不符合条件的申请 {self.tally.events['withdraw']} 件")

    def archive_check(self, campaign_id: int) -> None:
        self.say("\n第二阶段 审核档案，信息核查（7/31–8/22）")
        pending = self.cases_in(CaseState.ARCHIVE_CHECK)
        returned: list[tuple[int, str]] = []
        for n, (case_id, unit) in enumerate(pending):
            self.day(dt.date(2024, 8, 1) + dt.timedelta(days=n % 12), hour=10)
            reviewer = self.actor(self.parent_of(unit), "reviewer")
            roll = self.rng.random()
            if roll < 0.06:
                self.fire(case_id, CaseEvent.RETURN, reviewer, opinion="缺少录取通知书复印件，请补正")
                returned.append((case_id, unit))
            elif roll < 0.09:
                self.fire(case_id, CaseEvent.REJECT, reviewer, opinion="家庭月人均收入高于当地困难标准")
            else:
                self.fire(case_id, CaseEvent.VERIFY, reviewer, opinion="档案核查无误，同意公示")
        # Corrected cases come back after the survey window: the district manager overrides it.
        for case_id, unit in returned:
            self.day(dt.date(2024, 8, 14), hour=11)
            district = self.parent_of(unit)
            override = {"override": {"guards": ["within_survey_window"],
                                     "reason": "补正材料后重新报送，同意逾期受理"}}
            if self.fire(case_id, CaseEvent.SUBMIT, self.actor(district, "manager"), data=override):
                self.tally.overrides += 1
                self.fire(case_id, CaseEvent.VERIFY, self.actor(district, "reviewer"), opinion="补正后核查无误")
        self.say(f"  核查通过进入公示 {self.tally.events['verify']} 件，退回补正 {self.tally.events['return']} 件"
                 f"（其中 {self.tally.overrides} 件经管理员特批逾期重报），不予资助 {self.tally.events['reject']} 件")

    def publicity(self) -> None:
        self.say("\n公示（5个工作日），异议处理")
        in_publicity = self.cases_in(CaseState.PUBLICITY)
        objected = self.rng.sample(in_publicity, k=max(1, len(in_publicity) // 60))
        for case_id, unit in objected:
            self.day(dt.date(2024, 8, 5), hour=15)
            self.fire(case_id, CaseEvent.OBJECT, self.actor(self.parent_of(unit), "reviewer"),
                      opinion="群众反映该户有经营性收入")
        ended = held = 0
        for offset in range(0, 25):
            today = dt.date(2024, 8, 1) + dt.timedelta(days=offset)
            self.day(today, hour=18)
            if today == dt.date(2024, 8, 16):
                for case_id, unit in objected:
                    self.fire(case_id, CaseEvent.RESOLVE_OBJECTION,
                              self.actor(self.parent_of(unit), "reviewer"), opinion="经核实，经营性收入已计入，仍符合条件")
            outcome = end_due_publicity(self.engine, self.clock)
            ended += len(outcome.ended)
            held = max(held, len(outcome.held_by_objection))
        self.say(f"  公示期满转入审批 {ended} 件；因异议暂缓 {len(objected)} 件（核实后继续）")

    def approval(self) -> None:
        self.say("\n第三阶段 确定对象（三级审批：基层审查 → 区市审核 → 市总审批）")
        self.day(dt.date(2024, 8, 23), hour=9)
        for case_id, unit in self.cases_in(CaseState.APPROVAL, approval_step=0):
            self.fire(case_id, CaseEvent.APPROVE, self.actor(unit, "approver"), opinion="情况属实，同意上报")
        self.day(dt.date(2024, 8, 26), hour=9)
        for case_id, unit in self.cases_in(CaseState.APPROVAL, approval_step=1):
            self.fire(case_id, CaseEvent.APPROVE, self.actor(self.parent_of(unit), "approver"), opinion="审核同意")
        self.day(dt.date(2024, 8, 27), hour=9)
        for case_id, _unit in self.cases_in(CaseState.APPROVAL, approval_step=2):
            self.fire(case_id, CaseEvent.APPROVE, self.actor("WH", "approver"), opinion="审批同意资助")
        self.say(f"  审批通过 {len(self.cases_in(CaseState.DISBURSEMENT))} 件；"
                 f"资金不足未能审批 {self.tally.insufficient_funds} 件")

    def disbursement(self) -> None:
        self.say("\n发助学金（银行卡发放，8/28–8/29）")
        finance = self.actor("WH", "finance")
        self.day(dt.date(2024, 8, 28), hour=10)
        failed = 0
        for case_id, _unit in self.cases_in(CaseState.DISBURSEMENT):
            if self.rng.random() < 0.03:
                self.fire(case_id, CaseEvent.PAYMENT_FAILED, finance, opinion="银行卡号与户名不符，退回")
                failed += 1
            else:
                self.fire(case_id, CaseEvent.PAY, finance, data={"payment_reference": f"WH2024-{case_id:05d}"})
        self.day(dt.date(2024, 8, 29), hour=10)
        for case_id, _unit in self.cases_in(CaseState.DISBURSEMENT):
            self.fire(case_id, CaseEvent.PAY, finance, data={"payment_reference": f"WH2024-{case_id:05d}-R"})
        self.say(f"  发放 {self.tally.events['pay']} 笔，其中 {failed} 笔首次发放失败后重发成功")

    def follow_up(self) -> None:
        self.say("\n第四阶段 回访与总结（8/30–9/5）")
        self.day(dt.date(2024, 9, 5), hour=16)
        for case_id, unit in self.cases_in(CaseState.FOLLOW_UP):
            self.fire(case_id, CaseEvent.CLOSE, self.actor(unit, "clerk"))
        self.say(f"  回访办结 {self.tally.events['close']} 件")

    def refusal_text(self) -> str:
        names = {"archive_expired": "建档满一年须重新申报", "not_in_archive": "不在困难职工档案内",
                 "already_aided": "已获其他资助", "duplicate_student": "重复申报"}
        parts = [f"{names.get(code, code)} {n}" for code, n in self.tally.refusals.most_common()]
        return "，".join(parts) or "无"

    # -- the summary ------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        with self.engine.connect() as conn:
            states = dict(conn.execute(
                select(case_t.c.state, func.count()).group_by(case_t.c.state)).all())
            funds = conn.execute(select(fund_t).order_by(fund_t.c.position)).all()
            broken = list(verify_chains(conn))
        return {"states": states, "funds": funds, "broken": broken}

    def print_summary(self) -> None:
        result = self.summary()
        self.say("\n== 各状态案件数 ==")
        total = 0
        for state in CaseState:
            n = int(result["states"].get(state.value, 0))
            total += n
            self.say(f"  {state.value:<14}{STATE_NAMES[state.value]:<8}{n:>6}")
        self.say(f"  {'total':<14}{'合计':<8}{total:>6}")
        self.say("\n== 资金（元） ==")
        self.say(f"  {'来源':<12}{'预算':>14}{'已预留':>12}{'已发放':>14}{'结余':>14}")
        for f in result["funds"]:
            left = f.budget_fen - f.reserved_fen - f.paid_fen
            self.say(f"  {FUND_NAMES[f.source]:<10}{format_yuan(f.budget_fen):>14}"
                     f"{format_yuan(f.reserved_fen):>12}{format_yuan(f.paid_fen):>14}{format_yuan(left):>14}")
        broken = len(result["broken"])
        self.say("\n审计链校验：" + ("全部完整" if not broken else f"发现 {broken} 处断裂"))


def run_demo(engine: Engine, *, cases: int = 300, seed: int = 2024,
             say: Callable[[str], None] = print) -> dict[str, Any]:
    demo = Demo(engine, cases=cases, seed=seed, say=say)
    demo.run()
    demo.print_summary()
    return demo.summary()


def count_cases(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(case_t)).scalar_one())
