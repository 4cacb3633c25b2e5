"""How much a student gets: the campaign's aid rules, each citing its notice or marked a local
decision (workflow/campaigns/schema.py AidRule). A fixed amount; the tuition invoice up to a cap
(Bozhou: 学前至高中 "按照缴纳学费发票的实际支出…每生每年不超过2000元"); a range or a ceiling
within which the last approver sets the amount, with a reason ("2000元-4000元", "不超过2000元/
人"); rules for archived workers or not, a worker category, freshmen only (当年考入); and an
uplift (可适当提高) the approver may add, with a reason, up to its cap."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from jinqiu.workflow.campaigns.schema import AidRule
from jinqiu.workflow.errors import Reason
from jinqiu.workflow.money import MAX_CASE_AMOUNT_FEN, InvalidAmount, format_yuan, yuan_to_fen

# In the hardship archive (深度/相对/意外致困); "none" is not.
ARCHIVE_STATUSES = frozenset({"deep", "relative", "accident"})


@dataclass(frozen=True, slots=True)
class Applicant:
    """What a rule is matched on."""

    education_level: str
    tier: str | None = None
    tuition_invoice_fen: int | None = None
    archived: bool = True  # in the hardship archive (建档)
    categories: tuple[str, ...] = ()
    freshman: bool = False  # admitted in the campaign's year (当年考入)
    enrollment_year: int | None = None  # 考取年度 (a rule's enrolled_in)


@dataclass(frozen=True, slots=True)
class AidDecision:
    amount_fen: int
    cap_fen: int  # the most the rule gives before any uplift
    rule: AidRule
    set_by_approver: bool = False
    uplift_fen: int = 0  # what the approver added above the rule's amount (可适当提高)


def _fits(rule: AidRule, who: Applicant, *, ignore_year: bool = False) -> bool:
    return (
        rule.education_level == who.education_level
        and (rule.tier is None or rule.tier == who.tier)
        and (rule.archived is None or rule.archived == who.archived)
        and (rule.category is None or rule.category in who.categories)
        and (ignore_year or _admitted_in_time(rule, who))
    )


def _admitted_in_time(rule: AidRule, who: Applicant) -> bool:
    if rule.freshman_only and not who.freshman:
        return False
    return rule.enrolled_in is None or who.enrollment_year in rule.enrolled_in


def matching_rule(rules: Iterable[AidRule], who: Applicant) -> AidRule | None:
    """The most specific rule that fits (a tier's rule over the whole level's; the first listed
    among equals)."""
    best: AidRule | None = None
    for rule in rules:
        if _fits(rule, who) and (best is None or rule.specificity > best.specificity):
            best = rule
    return best


def rule_for(rules: Iterable[AidRule], who: Applicant) -> AidRule | Reason:
    """The rule, or the reason in the notice's words why none applies."""
    rules = tuple(rules)
    rule = matching_rule(rules, who)
    if rule is not None:
        return rule
    by_year = [
        r
        for r in rules
        if (r.freshman_only or r.enrolled_in is not None) and _fits(r, who, ignore_year=True)
    ]
    if by_year and all(r.freshman_only for r in by_year):
        return Reason("not_freshman", "该资助标准仅适用于当年考入的新生（入学年份须为活动年度）")
    if by_year:
        return Reason("enrollment_year_not_covered", _years_reason(by_year, who))
    return Reason("no_aid_rule", f"本次活动没有适用于该学历（{who.education_level}）的资助标准")


def _years_reason(rules: list[AidRule], who: Applicant) -> str:
    """Who the year-bound rules serve, in the notice's terms, and the student's year."""
    earlier = sorted({y for r in rules for y in r.enrolled_in or ()})
    served = []
    if any(r.freshman_only for r in rules):
        served.append("当年考入的新生")
    served.append(f"{'、'.join(f'{y}年' for y in earlier)}考入的在读学生")
    year = "未填写" if who.enrollment_year is None else f"{who.enrollment_year}年"
    return f"该资助标准仅适用于{'及'.join(served)}（该生考取年度：{year}）"


def _bounds(rule: AidRule, who: Applicant) -> tuple[int, int] | Reason:
    """The least and most of the rule before any uplift (equal for a fixed or invoice amount)."""
    if rule.basis == "tuition_invoice":
        invoice = who.tuition_invoice_fen
        if invoice is None or invoice <= 0:
            return Reason("tuition_invoice_missing", "按学费发票资助的学生须提供学费发票金额")
        amount = min(invoice, rule.cap_fen)
        return amount, amount
    if rule.basis == "fixed":
        assert rule.amount_fen is not None  # the campaign schema requires it for fixed rules
        amount = min(rule.amount_fen, rule.cap_fen)
        return amount, amount
    return rule.min_fen, rule.cap_fen


def describe_bounds(rule: AidRule, low: int, high: int) -> str:
    if rule.basis == "up_to":
        return f"不超过{format_yuan(high)}元"
    if low == high:
        return f"{format_yuan(low)}元"
    return f"{format_yuan(low)}元至{format_yuan(high)}元"


def decide_aid(
    rules: Iterable[AidRule], who: Applicant, set_amount_fen: int | None = None
) -> AidDecision | Reason:
    """The amount of the final approval: the rule's own, or the one the approver set
    (`data.amount`) within the rule's bounds plus any uplift."""
    rule = rule_for(rules, who)
    if isinstance(rule, Reason):
        return rule
    return amount_under(rule, who, set_amount_fen)


def amount_under(rule: AidRule, who: Applicant, set_amount_fen: int | None) -> AidDecision | Reason:
    """`decide_aid` once the rule is known."""
    bounds = _bounds(rule, who)
    if isinstance(bounds, Reason):
        return bounds
    low, high = bounds
    ceiling = high + (rule.uplift.max_fen if rule.uplift is not None else 0)
    if set_amount_fen is None:
        if rule.approver_sets_amount:
            return Reason(
                "amount_required",
                f"该资助标准须由审批人确定金额（{describe_bounds(rule, low, high)}），"
                "请填写 data.amount 并在意见中说明理由",
            )
        return AidDecision(amount_fen=low, cap_fen=high, rule=rule)
    if not low <= set_amount_fen <= ceiling:
        allowed = describe_bounds(rule, low, high)
        if rule.uplift is not None:
            allowed += (
                f"；{rule.uplift.when}可适当提高，最多再加{format_yuan(rule.uplift.max_fen)}元"
            )
        return Reason(
            "amount_out_of_range",
            f"审批金额{format_yuan(set_amount_fen)}元不在该资助标准之内（{allowed}）",
        )
    return AidDecision(
        amount_fen=set_amount_fen,
        cap_fen=high,
        rule=rule,
        set_by_approver=True,
        uplift_fen=max(0, set_amount_fen - high),
    )


def approver_amount(value: object) -> int | Reason:
    """`data.amount` of an approval: yuan as a decimal string or an integer, exact, bounded."""
    try:
        if not isinstance(value, (str, int)):
            raise InvalidAmount("金额须写成字符串或整数")
        fen = yuan_to_fen(value, max_fen=MAX_CASE_AMOUNT_FEN)
    except InvalidAmount as exc:
        return Reason("amount_invalid", f"审批金额 data.amount 无效：{exc}")
    if fen <= 0:
        return Reason("amount_invalid", "审批金额 data.amount 须大于0")
    return fen


def amount_to_keep(rules: Iterable[AidRule], who: Applicant) -> int:
    """What a fund must keep for a case still waiting: its amount, or for one the approver has
    yet to set, the most the rule gives before any uplift (no rule: nothing)."""
    rule = rule_for(rules, who)
    if isinstance(rule, Reason):
        return 0
    bounds = _bounds(rule, who)
    return 0 if isinstance(bounds, Reason) else bounds[1]
