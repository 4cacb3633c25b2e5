"""Bank cards (银行卡) the aid is paid to: digits only, 16 to 19 of them, the Luhn check digit
right, a known issuer (workflow/banks.py), and the account in the name of the worker,
the student, or the student's guardian recorded on the case. Every problem is a Reason; numbers
never appear in a message."""

from __future__ import annotations

from dataclasses import dataclass

from jinqiu.workflow.banks import bank_of
from jinqiu.workflow.errors import Reason

CARD_DIGITS = (16, 19)


def luhn_valid(number: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def with_check_digit(partial: str) -> str:
    """`partial` followed by the Luhn check digit that makes it a valid number."""
    return next(partial + d for d in "0123456789" if luhn_valid(partial + d))


def card_problems(number: str | None) -> list[Reason]:
    if not number:
        return [Reason("card_missing", "没有登记银行卡号")]
    if not (number.isascii() and number.isdigit()):
        return [Reason("card_not_digits", "银行卡号只能由数字组成")]
    low, high = CARD_DIGITS
    if not low <= len(number) <= high:
        return [Reason("card_length", f"银行卡号须为 {low}–{high} 位数字")]
    problems = []
    if not luhn_valid(number):
        problems.append(Reason("card_checksum", "银行卡号校验位不正确，请核对卡号"))
    if bank_of(number) is None:
        problems.append(Reason("card_issuer_unknown", f"无法识别发卡行（卡号前六位 {number[:6]}）"))
    return problems


@dataclass(frozen=True, slots=True)
class Names:
    """Whose name the account may be in."""

    worker: str
    student: str
    guardian: str | None


def holder_problems(holder: str | None, names: Names) -> list[Reason]:
    allowed = {names.worker, names.student} | ({names.guardian} if names.guardian else set())
    if (holder or names.worker) in allowed:
        return []
    return [
        Reason(
            "card_holder_mismatch",
            "银行卡户名须为职工本人、学生本人或案件登记的监护人",
        )
    ]


def card_reasons(number: str | None, holder: str | None, names: Names) -> list[Reason]:
    return card_problems(number) + holder_problems(holder, names)
