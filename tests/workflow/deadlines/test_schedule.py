"""When reminders fall due, in Chinese working days (pure: no database).

Weihai 2024's survey materials are due Wednesday 2024-07-31; the 2024 National Day holiday runs
10/1–10/7 with make-up working days on Sunday 9/29 and Saturday 10/12."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jinqiu.workflow.calendar import OFFICIAL, WorkingCalendar
from jinqiu.workflow.deadlines.schedule import (
    Occurrence,
    ReminderKind,
    due_occurrences,
)

B, OV, E = ReminderKind.BEFORE, ReminderKind.OVERDUE, ReminderKind.ESCALATION
WEIHAI_DUE = dt.date(2024, 7, 31)  # a Wednesday


def d(month: int, day: int) -> dt.date:
    return dt.date(2024, month, day)


def due(
    today: dt.date,
    due_on: dt.date = WEIHAI_DUE,
    *,
    before: tuple[int, ...] = (3, 1, 0),
    every: int = 1,
    escalate: int = 2,
    calendar: WorkingCalendar = OFFICIAL,
) -> list[Occurrence]:
    return due_occurrences(
        today,
        due_on,
        before_working_days=list(before),
        overdue_every=every,
        escalate_after=escalate,
        calendar=calendar,
    )


class TestWorkingDaysBefore:
    @pytest.mark.parametrize(
        ("n", "expected"), [(0, d(7, 31)), (1, d(7, 30)), (2, d(7, 29)), (3, d(7, 26))]
    )
    def test_weihai_survey_deadline_counts_back_over_the_weekend(
        self, n: int, expected: dt.date
    ) -> None:
        # Wed 7/31: T-1 Tue 7/30, T-2 Mon 7/29, T-3 the Friday before (7/27, 7/28 are a weekend).
        assert OFFICIAL.working_days_before(WEIHAI_DUE, n) == expected

    @pytest.mark.parametrize(
        ("n", "expected"), [(0, d(10, 8)), (1, d(9, 30)), (2, d(9, 29)), (3, d(9, 27))]
    )
    def test_right_after_national_day_the_holiday_is_skipped_and_sunday_9_29_counts(
        self, n: int, expected: dt.date
    ) -> None:
        # Due Tue 10/8, the first working day after the holiday: 10/1–10/7 do not count,
        # Sun 9/29 (调休 make-up day) does, Sat 9/28 does not.
        assert OFFICIAL.working_days_before(d(10, 8), n) == expected

    @pytest.mark.parametrize(("n", "expected"), [(1, d(10, 12)), (2, d(10, 11)), (3, d(10, 10))])
    def test_the_make_up_saturday_10_12_is_a_working_day(self, n: int, expected: dt.date) -> None:
        assert OFFICIAL.working_days_before(d(10, 14), n) == expected

    def test_a_campaign_calendar_override_is_honoured(self) -> None:
        # A campaign declaring Mon 7/29 a local holiday pushes T-3 back to Thursday 7/25.
        local = WorkingCalendar(holidays=frozenset({d(7, 29)}))
        assert local.working_days_before(WEIHAI_DUE, 3) == d(7, 25)


class TestBeforeTheDeadline:
    @pytest.mark.parametrize("today", [d(7, 1), d(7, 22), d(7, 25)])
    def test_nothing_before_t_minus_3(self, today: dt.date) -> None:
        assert due(today) == []

    @pytest.mark.parametrize(
        ("today", "expected"),
        [
            (d(7, 26), 3),  # Fri: T-3
            (d(7, 27), 3),  # the weekend: T-3 is still the latest reminder due
            (d(7, 28), 3),
            (d(7, 29), 3),  # Mon is T-2, which is not a reminder day
            (d(7, 30), 1),  # T-1
            (d(7, 31), 0),  # T0: the due date itself
        ],
    )
    def test_t3_t1_t0_fall_on_working_days(self, today: dt.date, expected: int) -> None:
        assert due(today) == [Occurrence(B, expected)]

    def test_during_the_national_day_holiday_t_minus_1_is_the_last_one_due(self) -> None:
        # Due 10/8: T-3 Fri 9/27, T-1 Mon 9/30; on 10/5 (a holiday) T-1 is the latest.
        assert due(d(9, 26), d(10, 8)) == []
        assert due(d(9, 27), d(10, 8)) == [Occurrence(B, 3)]
        assert due(d(9, 29), d(10, 8)) == [Occurrence(B, 3)]
        assert due(d(9, 30), d(10, 8)) == [Occurrence(B, 1)]
        assert due(d(10, 5), d(10, 8)) == [Occurrence(B, 1)]
        assert due(d(10, 8), d(10, 8)) == [Occurrence(B, 0)]

    def test_the_make_up_saturday_carries_t_minus_1(self) -> None:
        assert due(d(10, 11), d(10, 14)) == [Occurrence(B, 3)]
        assert due(d(10, 12), d(10, 14)) == [Occurrence(B, 1)]

    def test_custom_before_days(self) -> None:
        assert due(d(7, 24), before=(5,)) == [Occurrence(B, 5)]  # Wed 7/24 is T-5
        assert due(d(7, 23), before=(5,)) == []
        assert due(d(7, 31), before=(5,)) == [Occurrence(B, 5)]  # no T0 asked for


class TestOverdue:
    def test_every_working_day_and_escalation_from_step_2(self) -> None:
        assert due(d(8, 1)) == [Occurrence(OV, 1)]
        assert due(d(8, 2)) == [Occurrence(OV, 2), Occurrence(E, 2)]
        assert due(d(8, 3)) == [Occurrence(OV, 2), Occurrence(E, 2)]  # Saturday: no new step
        assert due(d(8, 5)) == [Occurrence(OV, 3), Occurrence(E, 3)]

    @pytest.mark.parametrize(
        ("today", "expected"),
        [
            (d(8, 1), []),  # 1 working day overdue: no step yet
            (d(8, 2), [Occurrence(OV, 2), Occurrence(E, 2)]),  # 2: first step, escalated at once
            (d(8, 4), [Occurrence(OV, 2), Occurrence(E, 2)]),  # Sunday
            (d(8, 5), [Occurrence(OV, 2), Occurrence(E, 2)]),  # 3: still step 2
            (d(8, 6), [Occurrence(OV, 4), Occurrence(E, 4)]),  # 4: second step
            (d(8, 8), [Occurrence(OV, 6), Occurrence(E, 6)]),
        ],
    )
    def test_overdue_steps_with_every_2(self, today: dt.date, expected: list[Occurrence]) -> None:
        assert due(today, every=2, escalate=2) == expected

    def test_escalation_waits_for_escalate_after(self) -> None:
        assert due(d(8, 2), every=2, escalate=3) == [Occurrence(OV, 2)]
        assert due(d(8, 6), every=2, escalate=3) == [Occurrence(OV, 4), Occurrence(E, 4)]
        assert due(d(8, 2), every=1, escalate=3) == [Occurrence(OV, 2)]
        assert due(d(8, 5), every=1, escalate=3) == [Occurrence(OV, 3), Occurrence(E, 3)]

    def test_overdue_across_national_day_counts_working_days_only(self) -> None:
        # Due Mon 9/30: the holiday week adds nothing; Tue 10/8 is the first overdue day.
        assert due(d(10, 1), d(9, 30)) == []
        assert due(d(10, 7), d(9, 30)) == []
        assert due(d(10, 8), d(9, 30)) == [Occurrence(OV, 1)]
        assert due(d(10, 9), d(9, 30)) == [Occurrence(OV, 2), Occurrence(E, 2)]
        # Due Fri 9/27: Sunday 9/29 is already overdue day 1.
        assert due(d(9, 29), d(9, 27)) == [Occurrence(OV, 1)]
        assert due(d(9, 30), d(9, 27)) == [Occurrence(OV, 2), Occurrence(E, 2)]


class TestCatchUpSendsOnlyTheLatest:
    def test_a_week_without_sweeps_before_the_deadline(self) -> None:
        # Last sweep on Mon 7/22; the next on the due date: no stale "3 days left" nor "1 day".
        assert due(d(7, 22)) == []
        assert due(d(7, 31)) == [Occurrence(B, 0)]

    def test_a_week_without_sweeps_after_the_deadline(self) -> None:
        # From 8/1 to Fri 8/9: seven working days overdue, one overdue and one escalation.
        assert due(d(8, 9)) == [Occurrence(OV, 7), Occurrence(E, 7)]
        assert due(d(8, 9), every=2) == [Occurrence(OV, 6), Occurrence(E, 6)]

    @given(
        today=st.dates(dt.date(2024, 6, 1), dt.date(2024, 12, 31)),
        due_on=st.dates(dt.date(2024, 7, 1), dt.date(2024, 11, 30)),
        before=st.lists(st.integers(0, 10), min_size=1, max_size=4, unique=True),
        every=st.integers(1, 5),
        escalate=st.integers(1, 10),
    )
    def test_at_most_one_occurrence_per_kind_and_each_one_consistent(
        self, today: dt.date, due_on: dt.date, before: list[int], every: int, escalate: int
    ) -> None:
        got = due(today, due_on, before=tuple(before), every=every, escalate=escalate)
        kinds = [o.kind for o in got]
        assert len(kinds) == len(set(kinds))
        by_kind = {o.kind: o.occurrence for o in got}
        if today <= due_on:
            assert set(by_kind) <= {B}
            if B in by_kind:
                n = by_kind[B]
                assert n in before
                assert OFFICIAL.working_days_before(due_on, n) <= today
                # the latest one: no smaller `before` day has started yet
                started = [m for m in before if OFFICIAL.working_days_before(due_on, m) <= today]
                assert n == min(started)
            else:
                assert all(OFFICIAL.working_days_before(due_on, m) > today for m in before)
        else:
            assert B not in by_kind
            overdue = OFFICIAL.working_days_between(due_on, today)
            if overdue < every:
                assert got == []
            else:
                assert by_kind[OV] % every == 0
                assert by_kind[OV] <= overdue < by_kind[OV] + every
                assert (E in by_kind) == (by_kind[OV] >= escalate)
                if E in by_kind:
                    assert by_kind[E] == by_kind[OV]
