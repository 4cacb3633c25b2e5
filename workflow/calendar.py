"""Working days on the Chinese official calendar, holidays and make-up working days (调休) included.

The `chinesecalendar` package knows the State Council's schedules for the years it ships
(2004–2026 in 1.11). A campaign may add its own `calendar` overrides for a year published
after the package; a date neither knows is an error, never a guess.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

import chinese_calendar


class CalendarUnknown(ValueError):
    """The official calendar for this date is not known (neither the package nor the overrides)."""

    def __init__(self, message: str, year: int) -> None:
        super().__init__(message)
        self.year = year  # which year a campaign's `calendar` override must cover


@dataclass(frozen=True)
class WorkingCalendar:
    holidays: frozenset[dt.date] = field(default_factory=frozenset)  # override: a day off
    workdays: frozenset[dt.date] = field(default_factory=frozenset)  # override: a make-up day
    known_years: frozenset[int] = field(default_factory=frozenset)  # years fully given by overrides
    # Each day's answer once per calendar (a dashboard counts the working days to every
    # deadline: the package's lookup, with its checks, was a tenth of a dashboard's CPU).
    _answers: dict[dt.date, bool] = field(
        default_factory=dict, init=False, compare=False, hash=False, repr=False
    )

    @classmethod
    def from_overrides(cls, overrides: dict[str, Iterable[str]] | None) -> WorkingCalendar:
        """`{"holidays": [...], "workdays": [...], "years": [2027]}` from a campaign file."""
        if not overrides:
            return cls()
        return cls(
            holidays=frozenset(dt.date.fromisoformat(d) for d in overrides.get("holidays", ())),
            workdays=frozenset(dt.date.fromisoformat(d) for d in overrides.get("workdays", ())),
            known_years=frozenset(int(y) for y in overrides.get("years", ())),
        )

    def is_working_day(self, day: dt.date) -> bool:
        answer = self._answers.get(day)
        if answer is None:
            answer = self._answers[day] = self._is_working_day(day)
        return answer

    def _is_working_day(self, day: dt.date) -> bool:
        if day in self.workdays:
            return True
        if day in self.holidays:
            return False
        if day.year in self.known_years:
            return day.weekday() < 5
        try:
            return bool(chinese_calendar.is_workday(day))
        except NotImplementedError as exc:
            raise CalendarUnknown(
                f"{day.isoformat()} 所在年度的法定节假日安排未知，请在活动的 calendar 中补充",
                day.year,
            ) from exc

    def add_working_days(self, start: dt.date, days: int) -> dt.date:
        """The date on which `days` working days after `start` have passed (start not counted).

        A publicity period of 5 working days that starts on a Friday ends on the next Friday.
        """
        if days < 0:
            raise ValueError("days must be >= 0")
        day = start
        counted = 0
        while counted < days:
            day += dt.timedelta(days=1)
            if self.is_working_day(day):
                counted += 1
        return day

    def working_days_before(self, due: dt.date, n: int) -> dt.date:
        """The n-th working day before `due` (n = 0: `due` itself)."""
        day, counted = due, 0
        while counted < n:
            day -= dt.timedelta(days=1)
            if self.is_working_day(day):
                counted += 1
        return day

    def working_days_between(self, start: dt.date, end: dt.date) -> int:
        """Working days in (start, end]; negative when end is before start."""
        if end < start:
            return -self.working_days_between(end, start)
        count = 0
        day = start
        while day < end:
            day += dt.timedelta(days=1)
            if self.is_working_day(day):
                count += 1
        return count


OFFICIAL = WorkingCalendar()
