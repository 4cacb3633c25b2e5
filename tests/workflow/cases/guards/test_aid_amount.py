"""The amount (workflow.cases.aid) and the guards that ask for it, against the rules the campaign
files say, with the notices' reasons. Expected amounts are read from the files, never restated:
what a test pins is how a rule is applied (which rule wins, the bounds, the reason text)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from jinqiu.workflow.campaigns.schema import AidRule, CampaignFile
from jinqiu.workflow.cases.aid import AidDecision, Applicant, decide_aid, matching_rule
from jinqiu.workflow.cases.guards.aid_amount import (
    aid_amount_decided,
    aid_rule_applies,
    amount_only_at_last_level,
)
from jinqiu.workflow.errors import Reason
from jinqiu.workflow.money import format_yuan, yuan_to_fen
from tests.workflow.cases.guards.builders import (
    WEIHAI,
    codes,
    compile_campaign,
    context,
    student,
    weihai_raw,
    weihai_rules,
    worker,
)

EXAMPLES = Path(__file__).resolve().parents[4] / "examples" / "campaigns"
NOTICES = EXAMPLES.parent / "notices"
# Qingpu 2017: "对于困难家庭有双子女就学或叠加其他特殊原因的，各级工会可适当提高助学标准"
QINGPU_UPLIFT = "对于困难家庭有双子女就学或叠加其他特殊原因的，各级工会可适当提高助学标准"


def campaign_file(name: str) -> CampaignFile:
    return CampaignFile.model_validate(
        json.loads((EXAMPLES / f"{name}.json").read_text(encoding="utf-8"))
    )


BOZHOU = compile_campaign(campaign_file("bozhou-2023"))
DALIAN = compile_campaign(campaign_file("dalian-2011"))


def rule(**fields: Any) -> AidRule:
    """A rule a test builds, cited as the loader demands."""
    return AidRule.model_validate({"local_decision": "测试用的资助标准", **fields})


def who(education_level: str = "undergraduate", **facts: Any) -> Applicant:
    return Applicant(education_level=education_level, **facts)


def aid(rules: Any, applicant: Applicant, set_yuan: str | None = None) -> AidDecision | Reason:
    return decide_aid(rules, applicant, None if set_yuan is None else yuan_to_fen(set_yuan))


def amount(rules: Any, applicant: Applicant, set_yuan: str | None = None) -> int:
    decision = aid(rules, applicant, set_yuan)
    assert isinstance(decision, AidDecision), decision
    return decision.amount_fen


class TestWeihaiAsItsFileSays:
    """Weihai's notice states no amount: every rule of its file is a local decision saying so,
    and each student gets exactly what the file's own rule for them says."""

    def test_every_rule_is_a_local_decision_naming_the_silent_notice(self) -> None:
        for r in WEIHAI.aid_rules:
            assert r.source is None and r.local_decision is not None
            assert "未定" in r.local_decision

    def test_no_rule_keeps_the_postgraduate_figure_no_document_gives(self) -> None:
        (postgraduate,) = [r for r in WEIHAI.aid_rules if r.education_level == "postgraduate"]
        assert postgraduate.amount_fen != yuan_to_fen("4000")

    @pytest.mark.parametrize("index", range(len(weihai_raw()["aid_rules"])))
    def test_each_rule_is_the_one_its_students_get(self, index: int) -> None:
        r = WEIHAI.aid_rules[index]
        applicant = who(r.education_level, tier=r.tier, tuition_invoice_fen=10**9)
        decision = aid(WEIHAI.aid_rules, applicant)
        assert isinstance(decision, AidDecision)
        assert decision.rule is r
        expected = r.amount_fen if r.basis == "fixed" else r.cap_fen  # a large invoice: the cap
        assert decision.amount_fen == expected

    def test_an_invoice_under_the_cap_is_paid_in_full_and_keeps_its_fen(self) -> None:
        (senior,) = [r for r in WEIHAI.aid_rules if r.education_level == "senior"]
        invoice = senior.cap_fen - 1
        assert amount(WEIHAI.aid_rules, who("senior", tuition_invoice_fen=invoice)) == invoice

    @pytest.mark.parametrize("invoice", [None, 0, -100])
    def test_a_missing_invoice_is_refused(self, invoice: int | None) -> None:
        decision = aid(WEIHAI.aid_rules, who("senior", tuition_invoice_fen=invoice))
        assert isinstance(decision, Reason) and decision.code == "tuition_invoice_missing"


class TestWhichRuleWins:
    def test_the_tier_rule_wins_even_when_listed_after_the_general_one(self) -> None:
        rules = [
            rule(education_level="undergraduate", amount=3000),
            rule(education_level="undergraduate", tier="third", amount=3500),
        ]
        assert matching_rule(rules, who(tier="third")) is rules[1]
        assert matching_rule(rules, who(tier="first")) is rules[0]

    def test_the_first_of_equally_specific_rules_is_the_one_used(self) -> None:
        rules = [
            rule(education_level="college", amount=2500),
            rule(education_level="college", amount=2000),
        ]
        assert matching_rule(rules, who("college")) is rules[0]

    def test_a_tier_rule_alone_does_not_cover_other_tiers(self) -> None:
        third_only = [rule(education_level="undergraduate", tier="third", amount=3500)]
        decision = aid(third_only, who(tier="first"))
        assert isinstance(decision, Reason) and decision.code == "no_aid_rule"

    def test_a_level_the_campaign_does_not_aid_has_no_rule(self) -> None:
        decision = aid([rule(education_level="undergraduate", amount=3000)], who("senior"))
        assert isinstance(decision, Reason)
        assert decision.code == "no_aid_rule" and "senior" in decision.message


class TestBozhouPerCategory:
    """ "符合建档条件的困难职工子女入学，助学金标准按照《亳州市工会困难职工帮扶实施办法（试行）》…执行。
    省总金秋助学经费用于对生活困难但不符合建档条件的…高校在读…学生及接受特殊教育的残疾儿童的，按照不超过
    2000元/人的标准发放助学金" — archived and not archived follow different rules."""

    def test_an_archived_and_a_not_archived_undergraduate_follow_different_rules(self) -> None:
        archived = matching_rule(BOZHOU.aid_rules, who(archived=True))
        not_archived = matching_rule(BOZHOU.aid_rules, who(archived=False))
        assert archived is not None and not_archived is not None
        assert archived.archived is True and not_archived.archived is False
        assert not_archived.source is not None and "不符合建档条件" in not_archived.source
        assert archived.source is not None and "帮扶实施办法" in archived.source
        assert archived.local_decision is not None  # the 办法's standard is not in the notice

    def test_not_archived_is_up_to_2000_the_approver_deciding_below(self) -> None:
        applicant = who(archived=False)
        r = matching_rule(BOZHOU.aid_rules, applicant)
        assert r is not None and r.basis == "up_to"
        assert amount(BOZHOU.aid_rules, applicant, format_yuan(r.cap_fen)) == r.cap_fen
        assert amount(BOZHOU.aid_rules, applicant, "800") == yuan_to_fen("800")
        over = aid(BOZHOU.aid_rules, applicant, format_yuan(r.cap_fen + 1))
        assert isinstance(over, Reason) and over.code == "amount_out_of_range"
        assert f"不超过{format_yuan(r.cap_fen)}元" in over.message

    def test_without_an_amount_the_final_approval_is_told_to_set_one(self) -> None:
        decision = aid(BOZHOU.aid_rules, who(archived=False))
        assert isinstance(decision, Reason) and decision.code == "amount_required"
        assert "data.amount" in decision.message

    def test_special_education_has_its_rule_archived_or_not(self) -> None:
        for archived in (True, False):
            r = matching_rule(BOZHOU.aid_rules, who("special", archived=archived))
            assert r is not None and r.source is not None and "特殊教育" in r.source

    def test_the_tuition_invoice_rule_is_for_archived_families_only(self) -> None:
        applicant = who("junior", archived=True, tuition_invoice_fen=150_000)
        assert amount(BOZHOU.aid_rules, applicant) == 150_000
        refused = aid(BOZHOU.aid_rules, who("junior", archived=False, tuition_invoice_fen=150_000))
        assert isinstance(refused, Reason) and refused.code == "no_aid_rule"

    def test_the_guard_reads_the_worker_s_archive(self) -> None:
        ctx = context(
            campaign=BOZHOU,
            worker_facts=worker(archive_status="none", archived_on=None),
            student_facts=student(education_level="junior", tier=None, tuition_invoice_fen=1000),
        )
        assert codes(aid_rule_applies(ctx)) == ["no_aid_rule"]


class TestRange:
    """ "对符合资助条件的申请对象，根据实际情况给予2000元-4000元的资助" (county summary), Dalian's rule."""

    def rule(self) -> AidRule:
        (r,) = [
            r for r in DALIAN.aid_rules if r.education_level == "undergraduate" and r.freshman_only
        ]
        assert r.basis == "range"
        return r

    def test_inside_the_range_the_approver_s_amount_is_taken(self) -> None:
        r = self.rule()
        freshman = who(archived=True, freshman=True)
        for fen in (r.min_fen, (r.min_fen + r.cap_fen) // 2, r.cap_fen):
            decision = aid(DALIAN.aid_rules, freshman, format_yuan(fen))
            assert isinstance(decision, AidDecision)
            assert (decision.amount_fen, decision.set_by_approver) == (fen, True)

    @pytest.mark.parametrize("delta", [-1, 1])
    def test_outside_the_range_is_refused_naming_the_range(self, delta: int) -> None:
        r = self.rule()
        fen = r.min_fen - 1 if delta < 0 else r.cap_fen + 1
        decision = aid(DALIAN.aid_rules, who(archived=True, freshman=True), format_yuan(fen))
        assert isinstance(decision, Reason) and decision.code == "amount_out_of_range"
        assert f"{format_yuan(r.min_fen)}元至{format_yuan(r.cap_fen)}元" in decision.message

    def test_the_rule_cites_the_notice_and_says_why_its_amounts_are_local(self) -> None:
        r = self.rule()
        assert r.source is not None and "录取的新生" in r.source
        assert r.local_decision is not None and "2000元-4000元" in r.local_decision


class TestFreshmanOnly:
    """Dalian: "重点资助…本年度被普通高等院校（含大专、高职）录取的新生" — 当年考入."""

    def test_a_student_admitted_this_year_is_covered(self) -> None:
        ctx = context(campaign=DALIAN, student_facts=student(enrollment_year=DALIAN.year))
        assert aid_rule_applies(ctx) == []

    @pytest.mark.parametrize("year", [None, -1])
    def test_with_only_a_freshman_rule_another_year_is_refused_as_not_a_freshman(
        self, year: int | None
    ) -> None:
        freshmen_only = [r for r in DALIAN.aid_rules if r.freshman_only]
        enrolled = None if year is None else DALIAN.year + year
        decision = aid(freshmen_only, who(archived=True, freshman=False, enrollment_year=enrolled))
        assert isinstance(decision, Reason) and decision.code == "not_freshman"
        assert "当年考入的新生" in decision.message


CONTINUING = (
    "对2009年和2010年资助的在档困难劳模、困难职工和困难农民工子女以奖学金形式实施资助直至完成学业"
)


class TestContinuingScholars:
    """Dalian: "对2009年和2010年资助的在档困难劳模、困难职工和困难农民工子女以奖学金形式实施资助
    直至完成学业" — the 2009 and 2010 entrants (附件2 考取年度) keep their aid; others are refused
    saying whom the rules serve."""

    def continuing(self) -> list[AidRule]:
        return [r for r in DALIAN.aid_rules if r.enrolled_in is not None]

    def test_the_rules_cite_the_notice_verbatim_for_both_university_levels(self) -> None:
        notice = re.sub(r"\s+", "", (NOTICES / "dalian-2011.txt").read_text(encoding="utf-8"))
        rules = self.continuing()
        assert {r.education_level for r in rules} == {"undergraduate", "college"}
        for r in rules:
            assert r.source == CONTINUING and r.archived is True
            assert CONTINUING in notice

    @pytest.mark.parametrize("level", ["undergraduate", "college"])
    @pytest.mark.parametrize("year", [2009, 2010])
    def test_a_2009_or_2010_entrant_in_the_archive_is_covered(self, level: str, year: int) -> None:
        ctx = context(
            campaign=DALIAN,
            student_facts=student(education_level=level, tier=None, enrollment_year=year),
        )
        assert aid_rule_applies(ctx) == []
        rule = ctx.aid_rule
        assert isinstance(rule, AidRule) and rule.source == CONTINUING

    def test_its_amount_is_set_by_the_city_within_the_range(self) -> None:
        (r,) = [r for r in self.continuing() if r.education_level == "undergraduate"]
        scholar = who(archived=True, enrollment_year=2010)
        decision = aid(DALIAN.aid_rules, scholar, format_yuan(r.cap_fen))
        assert isinstance(decision, AidDecision) and decision.rule is r
        refused = aid(DALIAN.aid_rules, scholar)
        assert isinstance(refused, Reason) and refused.code == "amount_required"

    @pytest.mark.parametrize("year", [2008, None])
    def test_another_year_s_student_is_refused_naming_the_years_served(
        self, year: int | None
    ) -> None:
        ctx = context(campaign=DALIAN, student_facts=student(enrollment_year=year))
        (reason,) = aid_rule_applies(ctx)
        assert reason.code == "enrollment_year_not_covered"
        assert "当年考入的新生及2009年、2010年考入的在读学生" in reason.message
        assert ("未填写" if year is None else f"{year}年") in reason.message

    def test_a_2010_entrant_outside_the_archive_is_not_covered(self) -> None:
        ctx = context(
            campaign=DALIAN,
            worker_facts=worker(archive_status="none", archived_on=None),
            student_facts=student(enrollment_year=2010),
        )
        assert codes(aid_rule_applies(ctx)) == ["no_aid_rule"]

    def test_a_rule_cannot_be_both_for_freshmen_and_for_named_years(self) -> None:
        with pytest.raises(ValidationError, match="freshman_only 与 enrolled_in"):
            rule(education_level="college", freshman_only=True, enrolled_in=[2010], amount=1000)


class TestUplift:
    """Qingpu 2017: 可适当提高 — a fixed amount the last approver may raise, up to the uplift cap."""

    def rules(self) -> list[AidRule]:
        return [
            rule(
                education_level="undergraduate",
                amount=3000,
                uplift={"max": "1000", "when": "双子女就学", "source": QINGPU_UPLIFT},
            )
        ]

    def test_without_an_amount_the_rule_s_own(self) -> None:
        r = self.rules()
        assert amount(r, who()) == r[0].amount_fen

    def test_raised_within_the_cap_the_uplift_is_recorded(self) -> None:
        r = self.rules()
        decision = aid(r, who(), "3800")
        assert isinstance(decision, AidDecision)
        assert (decision.amount_fen, decision.uplift_fen) == (
            yuan_to_fen("3800"),
            yuan_to_fen("800"),
        )

    def test_above_the_cap_is_refused_naming_it(self) -> None:
        decision = aid(self.rules(), who(), "4000.01")
        assert isinstance(decision, Reason) and decision.code == "amount_out_of_range"
        assert "双子女就学可适当提高，最多再加1000.00元" in decision.message

    def test_a_fixed_rule_without_uplift_takes_only_its_amount(self) -> None:
        decision = aid([rule(education_level="undergraduate", amount=3000)], who(), "3000.01")
        assert isinstance(decision, Reason) and decision.code == "amount_out_of_range"


class TestGuards:
    def test_verify_needs_a_rule_not_an_amount(self) -> None:
        ctx = context(campaign=BOZHOU, worker_facts=worker(archive_status="none"))
        assert aid_rule_applies(ctx) == []
        assert codes(aid_amount_decided(ctx)) == ["amount_required"]

    @pytest.mark.parametrize("given", ["abc", "12.345", 12.5, True, "-5", "0"])
    def test_a_malformed_amount_is_refused(self, given: object) -> None:
        ctx = context(
            campaign=BOZHOU, worker_facts=worker(archive_status="none"), data={"amount": given}
        )
        assert codes(aid_amount_decided(ctx)) == ["amount_invalid"]

    def test_an_amount_before_the_last_level_is_refused(self) -> None:
        assert codes(amount_only_at_last_level(context(data={"amount": "100"}))) == [
            "amount_not_at_this_level"
        ]
        assert amount_only_at_last_level(context()) == []

    def test_a_student_the_campaign_has_no_rule_for_is_refused(self) -> None:
        rules = [r for r in weihai_raw()["aid_rules"] if r["education_level"] != "postgraduate"]
        campaign = weihai_rules(aid_rules=rules)
        ctx = context(campaign=campaign, student_facts=student(education_level="postgraduate"))
        assert codes(aid_rule_applies(ctx)) == ["no_aid_rule"]


class TestLoaderRefuses:
    def test_a_rule_with_neither_source_nor_local_decision(self) -> None:
        with pytest.raises(ValidationError, match="须注明依据"):
            AidRule.model_validate({"education_level": "college", "amount": "2500"})

    def test_an_uplift_without_a_citation(self) -> None:
        with pytest.raises(ValidationError, match="须注明依据"):
            rule(education_level="college", amount="2500", uplift={"max": "500", "when": "双子女"})

    @pytest.mark.parametrize(
        "fields",
        [
            {"basis": "range", "min": "4000", "max": "2000"},
            {"basis": "range", "min": "2000"},
            {"basis": "range", "min": "2000", "max": "4000", "amount": "3000"},
            {"basis": "up_to"},
            {"basis": "fixed"},
            {"basis": "tuition_invoice"},
        ],
    )
    def test_an_inconsistent_basis(self, fields: dict[str, Any]) -> None:
        with pytest.raises(ValidationError):
            rule(education_level="college", **fields)

    def test_an_opinion_for_a_level_the_campaign_does_not_have(self) -> None:
        raw = weihai_raw()
        raw["approval_levels"] = ["district", "city"]
        raw["opinions"] = {"approve": {"labels": {"grassroots": "审查意见"}, "source": "审查意见"}}
        with pytest.raises(ValidationError, match="不在 approval_levels 中"):
            CampaignFile.model_validate(raw)


class TestCategory:
    def test_a_rule_for_a_category_fits_only_its_workers_and_wins_over_the_level_s(self) -> None:
        rules = [
            rule(education_level="college", amount=2500),
            rule(education_level="college", category="migrant_worker", amount=2000),
        ]
        assert matching_rule(rules, who("college", categories=("migrant_worker",))) is rules[1]
        assert matching_rule(rules, who("college", categories=("gig_worker",))) is rules[0]
