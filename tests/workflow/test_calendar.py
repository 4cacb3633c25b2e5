"""Working days on the Chinese official calendar, with holidays and make-up working days
(调休). Publicity (公示) runs for a number of working days, the day it starts not counted."""

from __future__ import annotations

import datetime as dt

import chinese_calendar
import pytest

from jinqiu.workflow.calendar import OFFICIAL, CalendarUnknown, WorkingCalendar
from jinqiu.workflow.campaigns.schema import CalendarOverrides

D = dt.date


class TestTheOfficialCalendar2024:
    @pytest.mark.parametrize(
        ("worked", "off"),
        [(D(2024, 9, 29), D(2024, 9, 28)), (D(2024, 10, 12), D(2024, 10, 13))],
    )
    def test_a_national_day_make_up_day_is_worked_and_the_rest_of_its_weekend_is_not(
        self, worked: dt.date, off: dt.date
    ) -> None:
        # Sun 9/29 and Sat 10/12 are worked by the State Council's arrangement; Sat 9/28 and
        # Sun 10/13 stay off: neither "weekends are off" nor "these weekends are worked" passes.
        assert OFFICIAL.is_working_day(worked)
        assert not OFFICIAL.is_working_day(off)

    @pytest.mark.parametrize("day", [D(2024, 10, d) for d in range(1, 8)])
    def test_the_national_day_week_is_off(self, day: dt.date) -> None:
        assert not OFFICIAL.is_working_day(day)

    def test_an_ordinary_saturday_is_off_and_an_ordinary_monday_works(self) -> None:
        assert not OFFICIAL.is_working_day(D(2024, 9, 28))
        assert OFFICIAL.is_working_day(D(2024, 9, 23))

    def test_the_package_agrees_on_the_days_these_tests_rely_on(self) -> None:
        # A guard against a mis-remembered schedule: the State Council's 2024 arrangement.
        assert chinese_calendar.is_workday(D(2024, 9, 29))
        assert chinese_calendar.is_workday(D(2024, 10, 12))
        assert chinese_calendar.is_holiday(D(2024, 10, 7))
        assert chinese_calendar.is_workday(D(2024, 2, 4))
        assert chinese_calendar.is_workday(D(2024, 2, 18))
        assert chinese_calendar.is_holiday(D(2024, 2, 17))


class TestPublicityAcrossNationalDay2024:
    """5 working days; 9/29 (Sun) and 10/12 (Sat) are worked, 10/1–10/7 are off."""

    @pytest.mark.parametrize(
        ("starts", "ends"),
        [
            (D(2024, 9, 27), D(2024, 10, 10)),  # Fri: 9/29, 9/30, 10/8, 10/9, 10/10
            (D(2024, 9, 28), D(2024, 10, 10)),  # Sat: the same five days
            (D(2024, 9, 29), D(2024, 10, 11)),  # on the make-up Sunday: 9/30, 10/8–10/11
            (D(2024, 9, 30), D(2024, 10, 12)),  # 10/8–10/11 and the make-up Saturday
            (D(2024, 10, 1), D(2024, 10, 12)),  # inside the holiday: 10/8–10/12
            (D(2024, 10, 7), D(2024, 10, 12)),
            (D(2024, 10, 11), D(2024, 10, 17)),  # 10/12, 10/14–10/17 (10/13 Sun is off)
        ],
    )
    def test_five_working_days_of_publicity_end_on(self, starts: dt.date, ends: dt.date) -> None:
        assert OFFICIAL.add_working_days(starts, 5) == ends

    def test_in_an_ordinary_week_a_friday_start_ends_the_next_friday(self) -> None:
        assert OFFICIAL.add_working_days(D(2024, 9, 6), 5) == D(2024, 9, 13)

    def test_mid_autumn_2024_its_make_up_saturday_counts_and_its_holiday_does_not(self) -> None:
        # Fri 9/13: Sat 9/14 (make-up), 9/15–9/17 off, then 9/18, 9/19, 9/20, Mon 9/23.
        assert OFFICIAL.add_working_days(D(2024, 9, 13), 5) == D(2024, 9, 23)

    def test_a_single_working_day_after_the_holiday_eve_is_the_make_up_sunday(self) -> None:
        assert OFFICIAL.add_working_days(D(2024, 9, 28), 1) == D(2024, 9, 29)

    def test_zero_working_days_end_on_the_start_day(self) -> None:
        assert OFFICIAL.add_working_days(D(2024, 10, 3), 0) == D(2024, 10, 3)

    def test_a_negative_number_of_days_is_refused(self) -> None:
        with pytest.raises(ValueError):
            OFFICIAL.add_working_days(D(2024, 9, 27), -1)

    def test_the_days_between_count_the_end_but_not_the_start(self) -> None:
        assert OFFICIAL.working_days_between(D(2024, 9, 27), D(2024, 10, 10)) == 5
        assert OFFICIAL.working_days_between(D(2024, 9, 30), D(2024, 10, 12)) == 5
        assert OFFICIAL.working_days_between(D(2024, 10, 1), D(2024, 10, 7)) == 0

    def test_the_days_between_are_negative_when_the_end_is_earlier(self) -> None:
        assert OFFICIAL.working_days_between(D(2024, 10, 10), D(2024, 9, 27)) == -5

    def test_the_days_between_a_day_and_itself_are_none(self) -> None:
        assert OFFICIAL.working_days_between(D(2024, 9, 29), D(2024, 9, 29)) == 0


class TestPublicityAcrossSpringFestival2024:
    """2/10–2/17 off; 2/4 (Sun) and 2/18 (Sun) are worked; 除夕 2/9 (Fri) is a working day."""

    def test_starting_on_new_years_eve_the_five_days_begin_on_the_make_up_sunday(self) -> None:
        assert OFFICIAL.add_working_days(D(2024, 2, 9), 5) == D(2024, 2, 22)  # 2/18–2/22

    def test_starting_the_friday_before_the_make_up_sunday_counts_it(self) -> None:
        assert OFFICIAL.add_working_days(D(2024, 2, 2), 5) == D(2024, 2, 8)  # 2/4–2/8

    def test_starting_inside_the_festival(self) -> None:
        assert OFFICIAL.add_working_days(D(2024, 2, 12), 5) == D(2024, 2, 22)

    def test_the_festival_week_has_no_working_day(self) -> None:
        assert OFFICIAL.working_days_between(D(2024, 2, 9), D(2024, 2, 17)) == 0


class TestAYearThePackageDoesNotKnow:
    def test_2027_is_unknown_and_the_error_says_what_to_do(self) -> None:
        with pytest.raises(CalendarUnknown) as caught:
            OFFICIAL.is_working_day(D(2027, 3, 1))
        message = str(caught.value)
        assert "2027-03-01" in message
        assert "calendar" in message

    def test_an_unknown_year_is_never_guessed_while_counting(self) -> None:
        with pytest.raises(CalendarUnknown):
            OFFICIAL.add_working_days(D(2026, 12, 30), 5)

    def test_the_error_is_a_value_error(self) -> None:
        assert issubclass(CalendarUnknown, ValueError)


def campaign_calendar(**overrides: object) -> WorkingCalendar:
    """As a campaign file's `calendar` section reaches the engine (through its JSON form)."""
    section = CalendarOverrides.model_validate(overrides)
    return WorkingCalendar.from_overrides(section.model_dump(mode="json"))


NATIONAL_DAY_2027 = tuple(f"2027-10-0{d}" for d in range(1, 8))  # an assumed schedule


class TestCampaignOverrides:
    def test_declaring_the_year_makes_2027_computable_on_weekdays(self) -> None:
        calendar = campaign_calendar(years=[2027])
        assert calendar.is_working_day(D(2027, 3, 1))  # a Monday
        assert not calendar.is_working_day(D(2027, 3, 6))  # a Saturday

    def test_declared_holidays_and_make_up_days_shape_a_2027_publicity(self) -> None:
        calendar = campaign_calendar(
            years=[2027], holidays=list(NATIONAL_DAY_2027), workdays=["2027-09-26", "2027-10-09"]
        )
        # Fri 9/24: Sun 9/26 (make-up), Mon 9/27, 9/28, 9/29, 9/30.
        assert calendar.add_working_days(D(2027, 9, 24), 5) == D(2027, 9, 30)
        # Thu 9/30: 10/1–10/7 off, then Fri 10/8, Sat 10/9 (make-up), Mon 10/11–10/13.
        assert calendar.add_working_days(D(2027, 9, 30), 5) == D(2027, 10, 13)

    def test_an_extra_holiday_wins_over_the_package_in_a_known_year(self) -> None:
        calendar = campaign_calendar(holidays=["2024-09-30"])
        assert not calendar.is_working_day(D(2024, 9, 30))
        # Fri 9/27: Sun 9/29, then 10/8–10/11 (9/30 now off).
        assert calendar.add_working_days(D(2024, 9, 27), 5) == D(2024, 10, 11)

    def test_an_extra_working_day_wins_over_the_package_in_a_known_year(self) -> None:
        calendar = campaign_calendar(workdays=["2024-10-07"])
        assert calendar.is_working_day(D(2024, 10, 7))
        # Fri 9/27: Sun 9/29, Mon 9/30, Mon 10/7 (now worked), 10/8, 10/9.
        assert calendar.add_working_days(D(2024, 9, 27), 5) == D(2024, 10, 9)

    def test_overrides_without_the_year_still_leave_the_other_days_unknown(self) -> None:
        calendar = campaign_calendar(holidays=["2027-10-01"], workdays=["2027-09-26"])
        assert not calendar.is_working_day(D(2027, 10, 1))
        assert calendar.is_working_day(D(2027, 9, 26))
        with pytest.raises(CalendarUnknown):
            calendar.is_working_day(D(2027, 9, 27))

    def test_no_overrides_is_the_official_calendar(self) -> None:
        assert WorkingCalendar.from_overrides(None) == OFFICIAL
        assert WorkingCalendar.from_overrides({}) == OFFICIAL
