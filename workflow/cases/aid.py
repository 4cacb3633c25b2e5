"""How much a student gets: the campaign's aid rules (fixed by level and tier, or the tuition
invoice up to a cap). Weihai/Bozhou: ≤2000 yuan on tuition invoices below college level;
county summaries: 3000 (first/second tier), 3500 (third tier), 2500 (college)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from jinqiu.workflow.campaigns.schema import AidRule
from jinqiu.workflow.errors import Reason


@dataclass(frozen=True, slots=True)
class AidDecision:
    amount_fen: int
    cap_fen: int
    rule: AidRule


def matching_rule(
    rules: Iterable[AidRule], education_level: str, tier: str | None
) -> AidRule | None:
    """A rule naming the student's tier wins over one for the whole education level."""
    general: AidRule | None = None
    for rule in rules:
        if rule.education_level != education_level:
            continue
        if rule.tier is not None and rule.tier == tier:
            return rule
        if rule.tier is None and general is None:
            general = rule
    return general


def decide_aid(
    rules: Iterable[AidRule],
    education_level: str,
    tier: str | None,
    tuition_invoice_fen: int | None,
) -> AidDecision | Reason:
    rule = matching_rule(rules, education_level, tier)
    if rule is None:
        return Reason("no_aid_rule", f"本次活动没有适用于该学历（{education_level}）的资助标准")
    if rule.basis == "tuition_invoice":
        if tuition_invoice_fen is None or tuition_invoice_fen <= 0:
            return Reason("tuition_invoice_missing", "按学费发票资助的学生须提供学费发票金额")
        amount = min(tuition_invoice_fen, rule.cap_fen)
    else:
        assert rule.amount_fen is not None  # the campaign schema requires it for fixed rules
        amount = min(rule.amount_fen, rule.cap_fen)
    return AidDecision(amount_fen=amount, cap_fen=rule.cap_fen, rule=rule)
