"""The notices' rules through the engine, on both databases: an amount the last approver sets
within a range (with a reason) and refused outside it; an uplift up to its cap; the opinion each
level's form asks for (Dalian 审查意见 / 审核意见 / 审批意见); no publicity where a notice has
none (Dalian); and priority (Bozhou 同等条件优先考虑新入学) when a fund cannot cover every case
waiting at the last level, in a bulk approval, a single one and the queue's order.

The campaign is the Weihai tree's, with the keys under test taken from the Dalian and Bozhou
files themselves (their own trees are not what is tested here)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any, ClassVar

import pytest
from sqlalchemy import Engine, select

from jinqiu.states import CaseEvent, CaseState
from jinqiu.workflow.audit.models import AuditEntry
from jinqiu.workflow.campaigns.models import FundSource
from jinqiu.workflow.campaigns.schema import AidRule
from jinqiu.workflow.cases.bulk import BulkItem, apply_bulk
from jinqiu.workflow.cases.models import Case
from jinqiu.workflow.cases.reads import CaseFilter, list_cases
from jinqiu.workflow.clock import ManualClock
from jinqiu.workflow.db import transaction
from jinqiu.workflow.errors import GuardFailed, InsufficientFunds, ValidationFailed
from jinqiu.workflow.money import format_yuan
from tests.factories import actor_of, case_in, case_row, weihai
from tests.workflow.cases.test_engine import CITY, DISTRICT, GRASSROOTS, fire

audit_t = AuditEntry.__table__  # type: ignore[attr-defined]
case_t = Case.__table__  # type: ignore[attr-defined]
fund_t = FundSource.__table__  # type: ignore[attr-defined]

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "campaigns"
DALIAN = json.loads((EXAMPLES / "dalian-2011.json").read_text(encoding="utf-8"))
BOZHOU = json.loads((EXAMPLES / "bozhou-2023.json").read_text(encoding="utf-8"))
APPROVAL_DAY = dt.datetime(2024, 8, 12, 9, 0)
FRESHMAN = {"enrollment_year": 2024}  # the Weihai campaign's year
IN_SCHOOL = {"enrollment_year": 2022}


def dalian_rules_for_2024() -> list[dict[str, Any]]:
    """Dalian's rules as its file says them (当年考入: the campaign's year is what counts)."""
    return [dict(r) for r in DALIAN["aid_rules"]]


def trail(engine: Engine, case_id: int) -> list[Any]:
    with engine.connect() as conn:
        return conn.execute(
            select(audit_t.c.event, audit_t.c.actor, audit_t.c.opinion, audit_t.c.data)
            .where(audit_t.c.case_id == case_id)
            .order_by(audit_t.c.seq)
        ).all()


def reserved(engine: Engine) -> int:
    with engine.connect() as conn:
        return sum(r.reserved_fen for r in conn.execute(select(fund_t.c.reserved_fen)))


def range_rule() -> AidRule:
    (rule,) = [
        r
        for r in DALIAN["aid_rules"]
        if r["education_level"] == "undergraduate" and r.get("freshman_only")
    ]
    return AidRule.model_validate(rule)


class TestOpinionsPerLevel:
    """Dalian: each of its three levels signs its own opinion."""

    @pytest.fixture
    def campaign(self, db: Engine, clock: ManualClock) -> int:
        return weihai(db, clock, opinions=DALIAN["opinions"], aid_rules=dalian_rules_for_2024())[1]

    @pytest.mark.parametrize(
        ("approved", "unit"), [(0, GRASSROOTS), (1, DISTRICT), (2, CITY)], ids=str
    )
    def test_an_approval_without_the_level_s_opinion_is_refused_naming_it(
        self, db: Engine, clock: ManualClock, campaign: int, approved: int, unit: str
    ) -> None:
        case_id = case_in(
            db, clock, campaign, GRASSROOTS, CaseState.APPROVAL, approved=approved,
            student_changes=FRESHMAN,
        )  # fmt: skip
        level = ("grassroots", "district", "city")[approved]
        label = DALIAN["opinions"]["approve"]["labels"][level]
        clock.set(APPROVAL_DAY)
        before = case_row(db, case_id)
        with pytest.raises(ValidationFailed) as refused:
            fire(db, clock, case_id, "approve", actor_of(db, unit, "approver"))
        assert label in refused.value.message
        assert refused.value.details == [
            {"field": "opinion", "code": "missing", "message": f"该操作须填写{label}"}
        ]
        assert case_row(db, case_id) == before

    def test_each_level_s_opinion_is_kept_under_its_label(
        self, db: Engine, clock: ManualClock, campaign: int
    ) -> None:
        case_id = case_in(
            db, clock, campaign, GRASSROOTS, CaseState.APPROVAL, student_changes=FRESHMAN
        )
        clock.set(APPROVAL_DAY)
        fire(db, clock, case_id, "approve", actor_of(db, GRASSROOTS, "approver"), opinion="属实")
        fire(db, clock, case_id, "approve", actor_of(db, DISTRICT, "approver"), opinion="同意")
        fire(
            db, clock, case_id, "approve", actor_of(db, CITY, "approver"),
            opinion="新生，同意资助", data={"amount": "3000"},
        )  # fmt: skip
        approvals = [e for e in trail(db, case_id) if e.event == CaseEvent.APPROVE]
        labels = DALIAN["opinions"]["approve"]["labels"]
        assert [(e.data["opinion_label"], e.opinion) for e in approvals] == [
            (labels["grassroots"], "属实"),
            (labels["district"], "同意"),
            (labels["city"], "新生，同意资助"),
        ]


class TestRangeSetByTheApprover:
    @pytest.fixture
    def campaign(self, db: Engine, clock: ManualClock) -> int:
        return weihai(db, clock, aid_rules=dalian_rules_for_2024())[1]

    def at_the_city(self, db: Engine, clock: ManualClock, campaign: int) -> int:
        case_id = case_in(
            db, clock, campaign, GRASSROOTS, CaseState.APPROVAL, approved=2,
            student_changes=FRESHMAN,
        )  # fmt: skip
        clock.set(APPROVAL_DAY)
        return case_id

    def test_an_amount_inside_the_range_is_reserved_with_the_reason(
        self, db: Engine, clock: ManualClock, campaign: int
    ) -> None:
        rule = range_rule()
        case_id = self.at_the_city(db, clock, campaign)
        amount = rule.cap_fen - 100_000
        city = actor_of(db, CITY, "approver")
        fire(
            db, clock, case_id, "approve", city,
            opinion="家庭两人患病，按区间上段确定", data={"amount": format_yuan(amount)},
        )  # fmt: skip
        row = case_row(db, case_id)
        assert (row.state, row.approved_amount_fen) == (CaseState.DISBURSEMENT, amount)
        last = trail(db, case_id)[-1]
        assert last.data["amount_set_by_approver"] is True
        assert last.data["amount"] == format_yuan(amount)
        assert last.opinion == "家庭两人患病，按区间上段确定"
        assert reserved(db) == amount

    @pytest.mark.parametrize("side", ["below", "above"])
    def test_outside_the_range_is_refused_with_the_range_in_the_message(
        self, db: Engine, clock: ManualClock, campaign: int, side: str
    ) -> None:
        rule = range_rule()
        case_id = self.at_the_city(db, clock, campaign)
        amount = rule.min_fen - 1 if side == "below" else rule.cap_fen + 1
        before = case_row(db, case_id)
        with pytest.raises(GuardFailed) as refused:
            fire(
                db, clock, case_id, "approve", actor_of(db, CITY, "approver"),
                opinion="理由", data={"amount": format_yuan(amount)},
            )  # fmt: skip
        (reason,) = refused.value.details["reasons"]
        assert reason["code"] == "amount_out_of_range"
        assert f"{format_yuan(rule.min_fen)}元至{format_yuan(rule.cap_fen)}元" in reason["message"]
        assert case_row(db, case_id) == before and reserved(db) == 0

    def test_without_an_amount_or_without_a_reason_it_is_refused(
        self, db: Engine, clock: ManualClock, campaign: int
    ) -> None:
        case_id = self.at_the_city(db, clock, campaign)
        city = actor_of(db, CITY, "approver")
        with pytest.raises(ValidationFailed) as no_reason:
            fire(db, clock, case_id, "approve", city, data={"amount": "3000"})
        assert no_reason.value.details[0]["field"] == "opinion"
        assert "确定金额的理由" in no_reason.value.message
        with pytest.raises(GuardFailed) as no_amount:
            fire(db, clock, case_id, "approve", city, opinion="同意")
        assert [r["code"] for r in no_amount.value.details["reasons"]] == ["amount_required"]

    def test_an_amount_before_the_last_level_is_refused(
        self, db: Engine, clock: ManualClock, campaign: int
    ) -> None:
        case_id = case_in(
            db, clock, campaign, GRASSROOTS, CaseState.APPROVAL, student_changes=FRESHMAN
        )
        clock.set(APPROVAL_DAY)
        with pytest.raises(GuardFailed) as refused:
            fire(
                db, clock, case_id, "approve", actor_of(db, GRASSROOTS, "approver"),
                opinion="同意", data={"amount": "3000"},
            )  # fmt: skip
        assert [r["code"] for r in refused.value.details["reasons"]] == ["amount_not_at_this_level"]

    def test_a_student_neither_admitted_this_year_nor_continuing_is_refused_at_verify(
        self, db: Engine, clock: ManualClock, campaign: int
    ) -> None:
        case_id = case_in(
            db, clock, campaign, GRASSROOTS, CaseState.ARCHIVE_CHECK, student_changes=IN_SCHOOL
        )
        clock.set(dt.datetime(2024, 8, 1, 10))
        before = case_row(db, case_id)
        with pytest.raises(GuardFailed) as refused:
            fire(db, clock, case_id, "verify", actor_of(db, DISTRICT, "reviewer"))
        (reason,) = refused.value.details["reasons"]
        assert reason["code"] == "enrollment_year_not_covered"
        assert "2009年、2010年考入的在读学生" in reason["message"]
        assert case_row(db, case_id) == before

    def test_a_continuing_scholar_of_2010_is_verified_and_approved_within_the_range(
        self, db: Engine, clock: ManualClock, campaign: int
    ) -> None:
        """对2009年和2010年资助的…以奖学金形式实施资助直至完成学业: a 2010 entrant passes
        verify and the city sets the amount within the range."""
        rule = range_rule()
        case_id = case_in(
            db, clock, campaign, GRASSROOTS, CaseState.ARCHIVE_CHECK,
            student_changes={"enrollment_year": 2010},
        )  # fmt: skip
        clock.set(dt.datetime(2024, 8, 1, 10))
        fire(db, clock, case_id, "verify", actor_of(db, DISTRICT, "reviewer"))
        assert case_row(db, case_id).state != CaseState.ARCHIVE_CHECK
        at_city = case_in(
            db, clock, campaign, GRASSROOTS, CaseState.APPROVAL, approved=2,
            student_changes={"enrollment_year": 2009},
        )  # fmt: skip
        clock.set(APPROVAL_DAY)
        fire(
            db, clock, at_city, "approve", actor_of(db, CITY, "approver"),
            opinion="2009级继续资助，成绩良好", data={"amount": format_yuan(rule.min_fen)},
        )  # fmt: skip
        row = case_row(db, at_city)
        assert (row.state, row.approved_amount_fen) == (CaseState.DISBURSEMENT, rule.min_fen)


UPLIFT = {
    "max": "1000",
    "when": "双子女就学",
    "source": "对于困难家庭有双子女就学或叠加其他特殊原因的，各级工会可适当提高助学标准",
}


class TestUplift:
    """Qingpu 2017: "对于困难家庭有双子女就学…各级工会可适当提高助学标准"."""

    def test_raised_up_to_the_cap_and_no_further(self, db: Engine, clock: ManualClock) -> None:
        rule = {"education_level": "undergraduate", "amount": "3000", "uplift": UPLIFT,
                "local_decision": "测试：固定金额加可适当提高"}  # fmt: skip
        _tree, campaign = weihai(db, clock, aid_rules=[rule])
        first, second = (
            case_in(db, clock, campaign, GRASSROOTS, CaseState.APPROVAL, approved=2)
            for _ in range(2)
        )
        clock.set(APPROVAL_DAY)
        city = actor_of(db, CITY, "approver")
        with pytest.raises(GuardFailed) as refused:
            fire(
                db, clock, first, "approve", city, opinion="双子女就学", data={"amount": "4000.01"}
            )
        assert "最多再加1000.00元" in refused.value.details["reasons"][0]["message"]
        fire(db, clock, first, "approve", city, opinion="双子女就学", data={"amount": "3800"})
        assert case_row(db, first).approved_amount_fen == 380_000
        assert trail(db, first)[-1].data["uplift"] == "800.00"
        fire(db, clock, second, "approve", city, opinion="同意")  # no amount: the rule's own
        assert case_row(db, second).approved_amount_fen == 300_000
        assert "uplift" not in trail(db, second)[-1].data


class TestNoPublicity:
    """Dalian 2011 asks for no publicity (publicity_working_days 0): a verified case goes on to
    approval in the verify's own transaction, the trail saying so."""

    @pytest.fixture
    def campaign(self, db: Engine, clock: ManualClock) -> int:
        days = DALIAN["publicity_working_days"]
        assert days == 0
        return weihai(db, clock, publicity_working_days=days)[1]

    def test_a_verified_case_waits_for_approval_at_once(
        self, db: Engine, clock: ManualClock, campaign: int
    ) -> None:
        case_id = case_in(db, clock, campaign, GRASSROOTS, CaseState.ARCHIVE_CHECK)
        before = case_row(db, case_id)
        clock.set(dt.datetime(2024, 8, 1, 10))
        version = fire(db, clock, case_id, "verify", actor_of(db, DISTRICT, "reviewer"))
        row = case_row(db, case_id)
        assert (row.state, row.version, version) == (
            CaseState.APPROVAL, before.version + 3, before.version + 3,
        )  # fmt: skip
        assert row.publicity_started_on == row.publicity_ends_on == dt.date(2024, 8, 1)
        verify, publish, end = trail(db, case_id)[-3:]
        assert (verify.event, verify.actor) == (CaseEvent.VERIFY, f"reviewer@{DISTRICT}")
        assert (publish.event, publish.actor) == (CaseEvent.PUBLISH, "scheduler")
        assert publish.data["publicity_working_days"] == 0
        assert (end.event, end.actor) == (CaseEvent.END_PUBLICITY, "scheduler")

    def test_a_bulk_verify_does_the_same_for_each_case(
        self, db: Engine, clock: ManualClock, campaign: int
    ) -> None:
        ids = [case_in(db, clock, campaign, GRASSROOTS, CaseState.ARCHIVE_CHECK) for _ in range(3)]
        clock.set(dt.datetime(2024, 8, 1, 10))
        with transaction(db) as conn:
            results = apply_bulk(
                conn,
                items=[BulkItem(c, case_row(db, c).version) for c in ids],
                event=CaseEvent.VERIFY,
                actor=actor_of(db, DISTRICT, "reviewer"),
                clock=clock,
            )
        assert [(r.ok, r.state) for r in results] == [(True, CaseState.APPROVAL)] * 3
        assert [r.version for r in results] == [case_row(db, c).version for c in ids]

    def test_a_campaign_with_publicity_still_waits_for_a_list(
        self, db: Engine, clock: ManualClock
    ) -> None:
        _tree, campaign = weihai(db, clock)
        case_id = case_in(db, clock, campaign, GRASSROOTS, CaseState.ARCHIVE_CHECK)
        clock.set(dt.datetime(2024, 8, 1, 10))
        fire(db, clock, case_id, "verify", actor_of(db, DISTRICT, "reviewer"))
        assert case_row(db, case_id).state == CaseState.READY_FOR_PUBLICITY


class TestPriorityWhenFundsRunShort:
    """Bozhou: "高校在读（同等条件优先考虑新入学）学生" — money for one grant, two cases waiting at
    the last level, the one in school listed first."""

    AMOUNT = "1500"

    @pytest.fixture
    def world(self, db: Engine, clock: ManualClock) -> tuple[int, int, int]:
        rules = [{**r, "archived": None} for r in BOZHOU["aid_rules"] if r.get("archived") is False]
        _tree, campaign = weihai(
            db, clock, aid_rules=rules, aid_priority=BOZHOU["aid_priority"],
            funds=[{"source": "government", "budget": self.AMOUNT}],
        )  # fmt: skip
        in_school = case_in(
            db, clock, campaign, GRASSROOTS, CaseState.APPROVAL, approved=2,
            student_changes=IN_SCHOOL,
        )  # fmt: skip
        freshman = case_in(
            db, clock, campaign, GRASSROOTS, CaseState.APPROVAL, approved=2,
            student_changes=FRESHMAN,
        )  # fmt: skip
        clock.set(APPROVAL_DAY)
        return campaign, in_school, freshman

    def test_the_bulk_approval_serves_the_freshman_first(
        self, db: Engine, clock: ManualClock, world: tuple[int, int, int]
    ) -> None:
        _campaign, in_school, freshman = world
        with transaction(db) as conn:
            results = apply_bulk(
                conn,
                items=[BulkItem(c, case_row(db, c).version) for c in (in_school, freshman)],
                event=CaseEvent.APPROVE,
                actor=actor_of(db, CITY, "approver"),
                clock=clock,
                opinion="按省总标准",
                data={"amount": self.AMOUNT},
            )
        assert [(r.id, r.ok) for r in results] == [(in_school, False), (freshman, True)]
        assert isinstance(results[0].error, InsufficientFunds)
        assert case_row(db, freshman).state == CaseState.DISBURSEMENT
        assert case_row(db, in_school).state == CaseState.APPROVAL

    def test_a_single_approval_may_not_take_the_freshman_s_money(
        self, db: Engine, clock: ManualClock, world: tuple[int, int, int]
    ) -> None:
        _campaign, in_school, freshman = world
        city = actor_of(db, CITY, "approver")
        with pytest.raises(InsufficientFunds) as refused:
            fire(db, clock, in_school, "approve", city, opinion="同意", data={"amount": "1"})
        assert "优先考虑（新入学）的1件案件尚待审批" in refused.value.message
        assert reserved(db) == 0
        fire(db, clock, freshman, "approve", city, opinion="同意", data={"amount": self.AMOUNT})
        assert case_row(db, freshman).state == CaseState.DISBURSEMENT

    def test_with_money_for_both_the_order_changes_nothing(
        self, db: Engine, clock: ManualClock
    ) -> None:
        rules = [{**r, "archived": None} for r in BOZHOU["aid_rules"] if r.get("archived") is False]
        _tree, campaign = weihai(db, clock, aid_rules=rules, aid_priority=BOZHOU["aid_priority"])
        in_school = case_in(
            db, clock, campaign, GRASSROOTS, CaseState.APPROVAL, approved=2,
            student_changes=IN_SCHOOL,
        )  # fmt: skip
        clock.set(APPROVAL_DAY)
        fire(db, clock, in_school, "approve", actor_of(db, CITY, "approver"), opinion="同意",
             data={"amount": self.AMOUNT})  # fmt: skip
        assert case_row(db, in_school).state == CaseState.DISBURSEMENT

    def test_the_queue_lists_the_freshman_first_saying_why(
        self, db: Engine, clock: ManualClock, world: tuple[int, int, int]
    ) -> None:
        campaign, in_school, freshman = world
        with db.connect() as conn:
            rows, total = list_cases(
                conn,
                actor_of(db, CITY, "approver"),
                CaseFilter(campaign=campaign, state=CaseState.APPROVAL),
                today=APPROVAL_DAY.date(),
            )
        assert total == 2
        assert [(r["id"], r["priority"]) for r in rows] == [(freshman, ["新入学"]), (in_school, [])]


class TestPriorityPerFundSource:
    """Bozhou's priority when one fund source runs short and another has money: a freshman
    waits at the last level (up to 2000 yuan: it keeps 2000), the union fund (first in the
    campaign's order) holds 2000 and the government's 1500, and a case in school is approved
    for 1500 — alone through the single path, or alone in a bulk approval (the freshman outside
    the call). Both paths give the same answer, source by source: it may take the government's
    money, named or not (the freshman keeps the union's), never the union's."""

    AMOUNT = "1500"
    # The fund source the approval names → the fund it takes from (None: refused).
    EXPECTED: ClassVar[dict[str | None, str | None]] = {
        None: "government",
        "government": "government",
        "union": None,
    }

    @pytest.fixture
    def world(self, db: Engine, clock: ManualClock) -> tuple[int, int]:
        rules = [{**r, "archived": None} for r in BOZHOU["aid_rules"] if r.get("archived") is False]
        _tree, campaign = weihai(
            db, clock, aid_rules=rules, aid_priority=BOZHOU["aid_priority"],
            funds=[{"source": "union", "budget": "2000"}, {"source": "government", "budget": "1500"}],
        )  # fmt: skip
        in_school, freshman = (
            case_in(
                db,
                clock,
                campaign,
                GRASSROOTS,
                CaseState.APPROVAL,
                approved=2,
                student_changes=changes,
            )
            for changes in (IN_SCHOOL, FRESHMAN)
        )
        clock.set(APPROVAL_DAY)
        return in_school, freshman

    def approve(
        self, db: Engine, clock: ManualClock, path: str, case_id: int, data: dict[str, Any]
    ) -> InsufficientFunds | None:
        city = actor_of(db, CITY, "approver")
        if path == "single":
            try:
                fire(db, clock, case_id, "approve", city, opinion="同意", data=data)
            except InsufficientFunds as refused:
                return refused
            return None
        with transaction(db) as conn:
            (result,) = apply_bulk(
                conn, items=[BulkItem(case_id, case_row(db, case_id).version)],
                event=CaseEvent.APPROVE, actor=city, clock=clock, opinion="同意", data=data,
            )  # fmt: skip
        if result.ok:
            return None
        assert isinstance(result.error, InsufficientFunds), result.error
        return result.error

    def fund_of(self, db: Engine, case_id: int) -> str | None:
        with db.connect() as conn:
            source: str | None = conn.execute(
                select(fund_t.c.source)
                .join(case_t, case_t.c.fund_source_id == fund_t.c.id)
                .where(case_t.c.id == case_id)
            ).scalar_one_or_none()
        return source

    @pytest.mark.parametrize("path", ["single", "bulk"])
    @pytest.mark.parametrize("source", [None, "government", "union"])
    def test_both_paths_take_the_same_fund_or_refuse_alike(
        self, db: Engine, clock: ManualClock, world: tuple[int, int], path: str, source: str | None
    ) -> None:
        in_school, freshman = world
        data = {"amount": self.AMOUNT, **({"fund_source": source} if source else {})}
        refused = self.approve(db, clock, path, in_school, data)
        expected = self.EXPECTED[source]
        if expected is None:
            assert refused is not None and "优先考虑（新入学）的1件案件尚待审批" in refused.message
            assert case_row(db, in_school).state == CaseState.APPROVAL and reserved(db) == 0
        else:
            assert refused is None
            assert self.fund_of(db, in_school) == expected
        # The freshman still gets its most, from the union's fund, whatever happened.
        assert self.approve(db, clock, path, freshman, {"amount": "2000"}) is None
        assert self.fund_of(db, freshman) == "union"
