"""Money is integer fen (分) in the database and Decimal yuan at the edges; never float."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

FEN_PER_YUAN = 100


class InvalidAmount(ValueError):
    pass


def yuan_to_fen(value: str | int | Decimal) -> int:
    """'3000', 3000, '3000.5' → fen. Refuses floats, negatives and sub-fen precision."""
    if isinstance(value, (bool, float)):
        raise InvalidAmount("金额须为整数或十进制字符串，不能是浮点数")
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation as exc:
        raise InvalidAmount(f"无法识别的金额：{value!r}") from exc
    if not amount.is_finite() or amount < 0:
        raise InvalidAmount(f"金额须为非负数：{value!r}")
    fen = amount * FEN_PER_YUAN
    if fen != fen.to_integral_value():
        raise InvalidAmount(f"金额最多两位小数：{value!r}")
    return int(fen)


def fen_to_yuan(fen: int) -> Decimal:
    return (Decimal(fen) / FEN_PER_YUAN).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def format_yuan(fen: int) -> str:
    """12345 → '123.45' (the contract's decimal-string form)."""
    return f"{fen_to_yuan(fen):.2f}"


def format_wan_yuan(fen: int) -> Decimal:
    """Fen → 万元 with four decimals, as the statistics tables report amounts."""
    return (Decimal(fen) / (FEN_PER_YUAN * 10_000)).quantize(Decimal("0.0001"))
