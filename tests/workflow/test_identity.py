"""Citizen identity numbers under GB 11643-1999: region (6), birth date (8), sequence (3,
odd = male) and a mod-11 check character (0-9 or X)."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jinqiu.workflow.identity import (
    Gender,
    check_character,
    check_character_of,
    make_id_number,
    mask_id_number,
    parse_id_number,
    problem_with,
    weighted_sum,
)

# The standard's own example: Beijing Chaoyang, born 1949-12-31, sequence 002, check X.
STANDARD_EXAMPLE = "11010519491231002X"
JINAN_LIXIA_MAN = "370102198001061234"  # 济南历下, 1980-01-06, sequence 123


def with_check(first17: str) -> str:
    """A number whose check character is right, so only the other part under test is wrong."""
    return first17 + check_character(first17)


class TestValidNumbers:
    @pytest.mark.parametrize("number", [STANDARD_EXAMPLE, JINAN_LIXIA_MAN, "37100220060901006X"])
    def test_a_well_formed_number_has_no_problem(self, number: str) -> None:
        assert problem_with(number) is None

    def test_a_check_character_x_may_be_written_in_lower_case(self) -> None:
        assert problem_with(STANDARD_EXAMPLE.lower()) is None
        assert parse_id_number(STANDARD_EXAMPLE.lower()).value == STANDARD_EXAMPLE

    def test_surrounding_spaces_are_ignored(self) -> None:
        assert problem_with(f"  {JINAN_LIXIA_MAN} ") is None
        assert parse_id_number(f" {JINAN_LIXIA_MAN}\n").value == JINAN_LIXIA_MAN

    @pytest.mark.parametrize("region", ["810000", "820000", "710000"])
    def test_hong_kong_macao_and_taiwan_residents_numbers_are_accepted(self, region: str) -> None:
        assert problem_with(make_id_number(region, dt.date(1990, 5, 1), 1)) is None

    def test_the_check_character_is_the_mod_11_weighted_sum(self) -> None:
        assert check_character("11010519491231002") == "X"
        assert check_character("37010219800106123") == "4"

    @given(
        region=st.sampled_from(["110105", "370102", "371002", "810000"]),
        born=st.dates(dt.date(1900, 1, 1), dt.date(2099, 12, 31)),
        sequence=st.integers(0, 999),
    )
    def test_parts_summed_apart_give_a_valid_number(
        self, region: str, born: dt.date, sequence: int
    ) -> None:
        # How a generator of many numbers (the bench) builds them: each part weighed where it
        # stands, the sums added, one check character.
        digits, seq = born.strftime("%Y%m%d"), f"{sequence:03d}"
        total = weighted_sum(region, 0) + weighted_sum(digits, 6) + weighted_sum(seq, 14)
        number = f"{region}{digits}{seq}{check_character_of(total)}"
        assert problem_with(number) is None
        assert number == make_id_number(region, born, sequence)

    def test_a_part_that_runs_past_the_17th_digit_is_refused(self) -> None:
        with pytest.raises(ValueError):
            weighted_sum("1234", 15)
        with pytest.raises(ValueError):
            check_character("3701021980010612")


class TestEachProblemHasItsOwnCode:
    @pytest.mark.parametrize(
        "number",
        ["370102800106123", "3701021980010612345", "", "37010219800106123"],
        ids=["old-15-digit", "19-characters", "empty", "17-digits"],
    )
    def test_a_number_not_18_characters_long_is_refused(self, number: str) -> None:
        problem = problem_with(number)
        assert problem is not None
        assert problem.code == "id_number_length"
        assert "18" in problem.message

    @pytest.mark.parametrize(
        "number", ["37010219800106123Y", "3701021980A1061234", "37010219800106X234"]
    )
    def test_letters_other_than_a_final_x_are_refused(self, number: str) -> None:
        problem = problem_with(number)
        assert problem is not None
        assert problem.code == "id_number_format"

    @pytest.mark.parametrize("province", ["00", "10", "39", "99"])
    def test_a_number_from_no_province_is_refused(self, province: str) -> None:
        number = with_check(f"{province}0102" + "19800106123")
        problem = problem_with(number)
        assert problem is not None
        assert problem.code == "id_number_region"

    @pytest.mark.parametrize(
        "birth",
        ["20230230", "20230229", "19801301", "19800100", "19800132", "18991231"],
        ids=["30-feb", "29-feb-non-leap", "month-13", "day-0", "day-32", "before-1900"],
    )
    def test_an_impossible_birth_date_is_refused(self, birth: str) -> None:
        number = with_check(f"370102{birth}123")
        problem = problem_with(number)
        assert problem is not None
        assert problem.code == "id_number_birth_date"

    def test_the_29th_of_february_of_a_leap_year_is_a_birth_date(self) -> None:
        assert problem_with(with_check("37010220240229123")) is None

    def test_a_wrong_check_character_is_refused(self) -> None:
        problem = problem_with(JINAN_LIXIA_MAN[:17] + "5")
        assert problem is not None
        assert problem.code == "id_number_checksum"

    def test_a_digit_where_the_check_character_x_belongs_is_refused(self) -> None:
        problem = problem_with(STANDARD_EXAMPLE[:17] + "0")
        assert problem is not None
        assert problem.code == "id_number_checksum"

    def test_parsing_an_invalid_number_raises_with_the_reason(self) -> None:
        with pytest.raises(ValueError, match="校验位"):
            parse_id_number(JINAN_LIXIA_MAN[:17] + "5")


class TestWhatTheNumberTells:
    def test_the_birth_date_is_read_from_the_number(self) -> None:
        assert parse_id_number(STANDARD_EXAMPLE).birth_date == dt.date(1949, 12, 31)
        assert parse_id_number(JINAN_LIXIA_MAN).birth_date == dt.date(1980, 1, 6)

    def test_an_odd_sequence_is_a_man(self) -> None:
        assert parse_id_number(JINAN_LIXIA_MAN).gender is Gender.MALE  # sequence 123

    def test_an_even_sequence_is_a_woman(self) -> None:
        assert parse_id_number(STANDARD_EXAMPLE).gender is Gender.FEMALE  # sequence 002

    @pytest.mark.parametrize(("sequence", "gender"), [(0, Gender.FEMALE), (999, Gender.MALE)])
    def test_gender_follows_the_last_sequence_digit(self, sequence: int, gender: Gender) -> None:
        number = make_id_number("371002", dt.date(2006, 9, 1), sequence)
        assert parse_id_number(number).gender is gender


class TestMasking:
    def test_only_the_region_and_the_last_four_characters_are_shown(self) -> None:
        assert mask_id_number(JINAN_LIXIA_MAN) == "370102********1234"

    def test_a_parsed_number_masks_itself(self) -> None:
        assert parse_id_number(STANDARD_EXAMPLE).masked == "110105********002X"

    def test_the_birth_date_never_shows_through_the_mask(self) -> None:
        assert "19800106" not in mask_id_number(JINAN_LIXIA_MAN)

    def test_a_short_value_is_masked_entirely(self) -> None:
        assert mask_id_number("123456789") == "*********"


provinces = st.sampled_from(
    [11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46,
     50, 51, 52, 53, 54, 61, 62, 63, 64, 65, 71, 81, 82, 83]
)  # fmt: skip
regions = st.builds(lambda p, rest: f"{p:02d}{rest:04d}", provinces, st.integers(0, 9999))
births = st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2030, 12, 31))
sequences = st.integers(0, 999)


class TestGeneratedNumbers:
    @given(region=regions, birth=births, sequence=sequences)
    def test_a_made_number_always_validates_and_reads_back(
        self, region: str, birth: dt.date, sequence: int
    ) -> None:
        number = make_id_number(region, birth, sequence)
        assert problem_with(number) is None
        parsed = parse_id_number(number)
        assert parsed.birth_date == birth
        assert parsed.gender is (Gender.MALE if sequence % 2 else Gender.FEMALE)

    @given(
        region=regions,
        birth=births,
        sequence=sequences,
        position=st.integers(0, 16),
        shift=st.integers(1, 9),
    )
    def test_any_single_digit_change_in_the_first_17_is_caught(
        self, region: str, birth: dt.date, sequence: int, position: int, shift: int
    ) -> None:
        number = make_id_number(region, birth, sequence)
        changed_digit = str((int(number[position]) + shift) % 10)
        typo = number[:position] + changed_digit + number[position + 1 :]
        assert problem_with(typo) is not None
