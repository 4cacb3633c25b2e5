"""aid_rule_applies and the amount (workflow.cases.aid): county summaries — 一本、二本 3000元,
三本 3500元, 大专 2500元; Weihai/Bozhou — below college level, the tuition invoice
(学费发票) up to 2000元 a year."""

from __future__ import annotations

import pytest

from jinqiu.workflow.campaigns.schema import AidRule
from jinqiu.workflow.cases.aid import AidDecision, decide_aid, matching_rule
from jinqiu.workflow.cases.guards.aid_amount import aid_rule_applies
from jinqiu.workflow.errors import Reason
from tests.workflow.cases.guards.builders import (
    WEIHAI,
    codes,
    context,
    student,
    weihai_raw,
    weihai_rules,
)


def aid(
    education_level: str,
    tier: str | None = None,
    invoice_fen: int | None = None,
    rules: object = None,
) -> AidDecision | Reason:
    return decide_aid(rules or WEIHAI.aid_rules, education_level, tier, invoice_fen)  # type: ignore[arg-type]


def amount(*args: object, **kw: object) -> int:
    decision = aid(*args, **kw)  # type: ignore[arg-type]
    assert isinstance(decision, AidDecision), decision
    return decision.amount_fen


class TestFixedAmounts:
    @pytest.mark.parametrize("tier", ["first", "second"])
    def test_first_and_second_tier_undergraduates_get_3000(self, tier: str) -> None:
        assert amount("undergraduate", tier) == 300_000

    def test_a_third_tier_undergraduate_gets_3500(self) -> None:
        assert amount("undergraduate", "third") == 350_000

    def test_the_third_tier_rule_beats_the_general_undergraduate_rule(self) -> None:
        decision = aid("undergraduate", "third")
        assert isinstance(decision, AidDecision)
        assert decision.rule.tier == "third"

    def test_the_tier_rule_wins_even_when_listed_after_the_general_one(self) -> None:
        rules = [
            AidRule(education_level="undergraduate", amount=3000, cap=3000),
            AidRule(education_level="undergraduate", tier="third", amount=3500, cap=3500),
        ]
        assert amount("undergraduate", "third", rules=rules) == 350_000

    @pytest.mark.parametrize("tier", [None, "fourth"])
    def test_an_undergraduate_without_a_tier_rule_gets_the_general_3000(
        self, tier: str | None
    ) -> None:
        decision = aid("undergraduate", tier)
        assert isinstance(decision, AidDecision)
        assert decision.amount_fen == 300_000
        assert decision.rule.tier is None

    def test_a_college_student_gets_2500(self) -> None:
        assert amount("college") == 250_000

    def test_a_postgraduate_gets_4000(self) -> None:
        assert amount("postgraduate") == 400_000

    def test_a_fixed_amount_ignores_any_tuition_invoice(self) -> None:
        assert amount("college", invoice_fen=900_000) == 250_000

    def test_the_decision_carries_the_cap(self) -> None:
        decision = aid("undergraduate", "third")
        assert isinstance(decision, AidDecision)
        assert decision.cap_fen == 350_000

    def test_the_first_general_rule_of_a_level_is_the_one_used(self) -> None:
        rules = [
            AidRule(education_level="college", amount=2500, cap=2500),
            AidRule(education_level="college", amount=2000, cap=2000),
        ]
        assert amount("college", rules=rules) == 250_000


class TestTuitionInvoice:
    @pytest.mark.parametrize("level", ["senior", "vocational", "junior", "primary", "preschool"])
    def test_an_invoice_under_the_cap_is_paid_in_full(self, level: str) -> None:
        assert amount(level, invoice_fen=150_000) == 150_000

    def test_an_invoice_of_3000_is_capped_at_2000(self) -> None:
        assert amount("senior", invoice_fen=300_000) == 200_000

    def test_an_invoice_of_exactly_the_cap_is_paid_in_full(self) -> None:
        assert amount("senior", invoice_fen=200_000) == 200_000

    def test_an_invoice_keeps_its_fen(self) -> None:
        assert amount("junior", invoice_fen=123_456) == 123_456

    @pytest.mark.parametrize("invoice", [None, 0, -100])
    def test_a_missing_invoice_is_refused(self, invoice: int | None) -> None:
        decision = aid("senior", invoice_fen=invoice)
        assert isinstance(decision, Reason)
        assert decision.code == "tuition_invoice_missing"


class TestNoRule:
    def test_a_level_the_campaign_does_not_aid_has_no_rule(self) -> None:
        universities_only = [
            AidRule(education_level="undergraduate", amount=3000, cap=3000),
            AidRule(education_level="college", amount=2500, cap=2500),
        ]
        decision = aid("senior", invoice_fen=150_000, rules=universities_only)
        assert isinstance(decision, Reason)
        assert decision.code == "no_aid_rule"
        assert "senior" in decision.message

    def test_a_tier_rule_alone_does_not_cover_other_tiers(self) -> None:
        third_only = [AidRule(education_level="undergraduate", tier="third", amount=3500, cap=3500)]
        assert matching_rule(third_only, "undergraduate", "first") is None
        decision = aid("undergraduate", "first", rules=third_only)
        assert isinstance(decision, Reason) and decision.code == "no_aid_rule"


class TestAidRuleAppliesGuard:
    def test_a_covered_student_passes(self) -> None:
        assert aid_rule_applies(context(student_facts=student(education_level="college"))) == []

    def test_a_senior_student_with_an_invoice_passes(self) -> None:
        ctx = context(
            student_facts=student(education_level="senior", tier=None, tuition_invoice_fen=150_000)
        )
        assert aid_rule_applies(ctx) == []

    def test_a_senior_student_without_an_invoice_is_refused(self) -> None:
        ctx = context(student_facts=student(education_level="senior", tier=None))
        assert codes(aid_rule_applies(ctx)) == ["tuition_invoice_missing"]

    def test_a_student_the_campaign_has_no_rule_for_is_refused(self) -> None:
        rules = [r for r in weihai_raw()["aid_rules"] if r["education_level"] != "postgraduate"]
        campaign = weihai_rules(aid_rules=rules)
        ctx = context(campaign=campaign, student_facts=student(education_level="postgraduate"))
        assert codes(aid_rule_applies(ctx)) == ["no_aid_rule"]
