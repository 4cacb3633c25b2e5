"""Money is integer fen (分) inside and decimal yuan at the edges — never float."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jinqiu.workflow.money import (
    InvalidAmount,
    fen_to_yuan,
    format_wan_yuan,
    format_yuan,
    yuan_to_fen,
)


class TestYuanToFen:
    @pytest.mark.parametrize(
        ("yuan", "fen"),
        [
            ("3000", 300_000),
            (3000, 300_000),
            (Decimal("3500"), 350_000),
            ("2500.00", 250_000),
            ("3000.5", 300_050),
            ("1999.99", 199_999),
            ("0.01", 1),
            ("0", 0),
            (" 2000 ", 200_000),
            ("400000", 40_000_000),
        ],
    )
    def test_an_amount_in_yuan_becomes_exact_fen(self, yuan: str | int | Decimal, fen: int) -> None:
        assert yuan_to_fen(yuan) == fen

    def test_a_large_budget_stays_exact(self) -> None:
        assert yuan_to_fen("12345678901234.56") == 1_234_567_890_123_456

    def test_the_result_is_an_int(self) -> None:
        assert type(yuan_to_fen("3000.50")) is int


class TestRefusedAmounts:
    @pytest.mark.parametrize("value", [3000.0, 0.1, 1999.99, float("nan"), float("inf")])
    def test_a_float_is_refused_even_when_it_looks_whole(self, value: float) -> None:
        with pytest.raises(InvalidAmount, match="浮点数"):
            yuan_to_fen(value)  # type: ignore[arg-type]

    @pytest.mark.parametrize("value", [True, False])
    def test_a_boolean_is_not_an_amount(self, value: bool) -> None:
        with pytest.raises(InvalidAmount):
            yuan_to_fen(value)

    @pytest.mark.parametrize("value", ["0.001", "3000.005", Decimal("1999.999")])
    def test_less_than_a_fen_is_refused(self, value: str | Decimal) -> None:
        with pytest.raises(InvalidAmount, match="两位小数"):
            yuan_to_fen(value)

    @pytest.mark.parametrize("value", ["-1", "-0.01", -3000, Decimal("-2000")])
    def test_a_negative_amount_is_refused(self, value: str | int | Decimal) -> None:
        with pytest.raises(InvalidAmount, match="非负数"):
            yuan_to_fen(value)

    @pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity"])
    def test_a_non_finite_amount_is_refused(self, value: str) -> None:
        with pytest.raises(InvalidAmount):
            yuan_to_fen(value)

    @pytest.mark.parametrize("value", ["", "三千", "3,000", "3000元", "abc"])
    def test_text_that_is_not_a_number_is_refused(self, value: str) -> None:
        with pytest.raises(InvalidAmount, match="无法识别"):
            yuan_to_fen(value)

    def test_a_refusal_is_a_value_error(self) -> None:
        assert issubclass(InvalidAmount, ValueError)


class TestFormatting:
    @pytest.mark.parametrize(
        ("fen", "text"),
        [(300_000, "3000.00"), (350_000, "3500.00"), (12_345, "123.45"), (1, "0.01"), (0, "0.00")],
    )
    def test_fen_is_shown_as_yuan_with_two_decimals(self, fen: int, text: str) -> None:
        assert format_yuan(fen) == text

    def test_fen_to_yuan_is_an_exact_decimal(self) -> None:
        assert fen_to_yuan(300_050) == Decimal("3000.50")
        assert str(fen_to_yuan(300_050)) == "3000.50"

    @pytest.mark.parametrize(
        ("fen", "wan"),
        [(300_000, "0.3000"), (40_000_000, "40.0000"), (3_050_000, "3.0500")],
    )
    def test_statistics_report_amounts_in_wan_yuan(self, fen: int, wan: str) -> None:
        # Weihai 附件1: 共筹集资金(万元); the county's 10 students got 3.05万元.
        assert format_wan_yuan(fen) == Decimal(wan)
        assert str(format_wan_yuan(fen)) == wan


class TestRoundTrip:
    @given(st.integers(min_value=0, max_value=10**15))
    def test_formatting_and_reading_back_gives_the_same_fen(self, fen: int) -> None:
        assert yuan_to_fen(format_yuan(fen)) == fen

    @given(st.decimals(min_value=0, max_value=10**12, places=2, allow_nan=False))
    def test_any_two_decimal_amount_converts_exactly(self, yuan: Decimal) -> None:
        assert fen_to_yuan(yuan_to_fen(yuan)) == yuan
