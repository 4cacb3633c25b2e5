"""Publicity (公示): the period runs its working days, and an open objection (异议) holds
the case until it is resolved."""

from __future__ import annotations

import datetime as dt

from jinqiu.states import CaseState
from jinqiu.workflow.cases.guards.publicity import (
    no_open_objection,
    objection_is_open,
    publicity_period_over,
)
from tests.workflow.cases.guards.builders import case, codes, context

# Verified on Thu 2024-08-01; five working days: 8/2, 8/5, 8/6, 8/7, 8/8.
ENDS = dt.date(2024, 8, 8)


def in_publicity(**changes: object) -> object:
    return case(state=CaseState.PUBLICITY, **changes)


class TestOpenObjectionHoldsTheCase:
    def test_an_open_objection_holds_the_case_in_publicity(self) -> None:
        ctx = context(case_facts=in_publicity(objection_open=True, publicity_ends_on=ENDS))  # type: ignore[arg-type]
        assert codes(no_open_objection(ctx)) == ["objection_open"]

    def test_without_an_objection_nothing_holds_the_case(self) -> None:
        ctx = context(case_facts=in_publicity(objection_open=False, publicity_ends_on=ENDS))  # type: ignore[arg-type]
        assert no_open_objection(ctx) == []


class TestResolvingAnObjection:
    def test_only_an_open_objection_can_be_resolved(self) -> None:
        ctx = context(case_facts=in_publicity(objection_open=False))  # type: ignore[arg-type]
        assert codes(objection_is_open(ctx)) == ["no_objection"]

    def test_an_open_objection_can_be_resolved(self) -> None:
        ctx = context(case_facts=in_publicity(objection_open=True))  # type: ignore[arg-type]
        assert objection_is_open(ctx) == []


class TestPublicityPeriodOver:
    def over(self, today: dt.date, ends: dt.date | None = ENDS) -> list[str]:
        ctx = context(today=today, case_facts=in_publicity(publicity_ends_on=ends))  # type: ignore[arg-type]
        return codes(publicity_period_over(ctx))

    def test_a_case_whose_publicity_never_started_cannot_end_it(self) -> None:
        assert self.over(dt.date(2024, 8, 20), ends=None) == ["publicity_not_started"]

    def test_publicity_is_running_the_day_after_it_starts(self) -> None:
        assert self.over(dt.date(2024, 8, 2)) == ["publicity_running"]

    def test_publicity_is_running_the_day_before_its_last_working_day(self) -> None:
        assert self.over(dt.date(2024, 8, 7)) == ["publicity_running"]

    def test_the_last_working_day_counts_in_full(self) -> None:
        assert self.over(ENDS) == ["publicity_running"]

    def test_publicity_may_end_any_day_after_its_last_day(self) -> None:
        assert self.over(dt.date(2024, 8, 9)) == []
        assert self.over(dt.date(2024, 9, 30)) == []

    def test_the_running_refusal_says_when_publicity_ends(self) -> None:
        ctx = context(today=dt.date(2024, 8, 5), case_facts=in_publicity(publicity_ends_on=ENDS))  # type: ignore[arg-type]
        assert "2024-08-08" in publicity_period_over(ctx)[0].message

    def test_the_end_date_is_five_working_days_after_verification(self) -> None:
        # The date the guard compares with comes from the campaign's calendar.
        assert context().campaign.calendar.add_working_days(dt.date(2024, 8, 1), 5) == ENDS
