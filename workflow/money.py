"""Money is integer fen (分) in the database and Decimal yuan at the edges; never float.

Every amount is bounded before any Decimal arithmetic, so no input can overflow a column (or the
Decimal context) further in. The documented maxima:

- an amount of one case (income per head, tuition invoice, an aid rule's amount or cap, the
  approved amount): at most MAX_CASE_AMOUNT_YUAN, 1,000,000 yuan — its columns are INTEGER fen,
  which would hold 21,474,836.47 yuan;
- a fund source's budget: at most MAX_BUDGET_YUAN, 10^10 yuan (一百亿元) — its columns are
  BIGINT fen (migration 0008), so budget, reserved and paid stay far inside 2^63;
- anything converted here at all: what BIGINT fen holds.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal

FEN_PER_YUAN = 100
MAX_CASE_AMOUNT_YUAN = 1_000_000
MAX_CASE_AMOUNT_FEN = MAX_CASE_AMOUNT_YUAN * FEN_PER_YUAN
MAX_BUDGET_YUAN = 10_000_000_000
MAX_BUDGET_FEN = MAX_BUDGET_YUAN * FEN_PER_YUAN
MAX_BIGINT_FEN = 2**63 - 1

# Plain decimal notation only: no exponent, sign, separators, NaN/Infinity or non-ASCII digits.
_PLAIN_YUAN = re.compile(r"[0-9]{1,30}(\.[0-9]{1,30})?", re.ASCII)
_FEN = Decimal("0.01")


class InvalidAmount(ValueError):
    pass


def yuan_to_fen(value: str | int | Decimal, *, max_fen: int = MAX_BIGINT_FEN) -> int:
    """'3000', 3000, '3000.5' → fen. Refuses floats, negatives, sub-fen precision, exponents and
    amounts above `max_fen`, all before any arithmetic can overflow or round."""
    if isinstance(value, (bool, float)):
        raise InvalidAmount("金额须为整数或十进制字符串，不能是浮点数")
    if isinstance(value, int):
        if value < 0:
            raise InvalidAmount(f"金额须为非负数：{value}")
        if value > max_fen // FEN_PER_YUAN:
            raise InvalidAmount(f"金额过大：最多 {format_yuan(max_fen)} 元")
        return value * FEN_PER_YUAN
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("-") and _PLAIN_YUAN.fullmatch(text[1:]):
            raise InvalidAmount(f"金额须为非负数：{value!r}")
        if not _PLAIN_YUAN.fullmatch(text):
            if re.fullmatch(r"[0-9]+(\.[0-9]+)?", text, re.ASCII):
                raise InvalidAmount(f"金额过大：最多 {format_yuan(max_fen)} 元")
            raise InvalidAmount(
                f"无法识别的金额：{value[:40]!r}（须写成十进制数，如 3000 或 3000.50）"
            )
        amount = Decimal(text)
    elif isinstance(value, Decimal):
        amount = value
    else:
        raise InvalidAmount(f"无法识别的金额：{value!r}")
    if not amount.is_finite():
        raise InvalidAmount(f"金额须为有限的非负数：{value!r}")
    if amount < 0:
        raise InvalidAmount(f"金额须为非负数：{value!r}")
    # Comparisons never overflow; after this the value has at most 19 integer digits.
    if amount > Decimal(max_fen) / FEN_PER_YUAN:
        raise InvalidAmount(f"金额过大：最多 {format_yuan(max_fen)} 元")
    if amount.as_tuple().exponent < -30 or amount != amount.quantize(_FEN):  # type: ignore[operator]
        raise InvalidAmount(f"金额最多两位小数：{value!r}")
    return int(amount.quantize(_FEN).scaleb(2))


def fen_to_yuan(fen: int) -> Decimal:
    return (Decimal(fen) / FEN_PER_YUAN).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def format_yuan(fen: int) -> str:
    """12345 → '123.45' (the contract's decimal-string form)."""
    if fen >= 0:  # exact in integers (a bulk formats thousands of amounts)
        return f"{fen // FEN_PER_YUAN}.{fen % FEN_PER_YUAN:02d}"
    return f"{fen_to_yuan(fen):.2f}"


def format_wan_yuan(fen: int) -> Decimal:
    """Fen → 万元 with four decimals, as the statistics tables report amounts."""
    return (Decimal(fen) / (FEN_PER_YUAN * 10_000)).quantize(Decimal("0.0001"))
