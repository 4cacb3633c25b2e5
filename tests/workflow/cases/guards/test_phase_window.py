"""within_survey_window: applications are submitted during the survey phase — Weihai 2024,
第一阶段：7月16日-7月31日，宣传发动，调查摸底 — both ends included."""

from __future__ import annotations

import datetime as dt

import pytest

from jinqiu.workflow.cases.guards.phase_window import within_survey_window
from tests.workflow.cases.guards.builders import WEIHAI, codes, context, weihai_raw, weihai_rules


def refusals(today: dt.date, campaign: object = None) -> list[str]:
    return codes(within_survey_window(context(today=today, campaign=campaign)))  # type: ignore[arg-type]


class TestWeihaiSurveyWindow:
    def test_the_day_before_the_survey_opens_is_refused(self) -> None:
        assert refusals(dt.date(2024, 7, 15)) == ["survey_not_open"]

    @pytest.mark.parametrize(
        "day", [dt.date(2024, 7, 16), dt.date(2024, 7, 24), dt.date(2024, 7, 31)]
    )
    def test_the_whole_survey_phase_is_open_first_and_last_day_included(self, day: dt.date) -> None:
        assert refusals(day) == []

    def test_the_day_after_the_survey_closes_is_refused(self) -> None:
        assert refusals(dt.date(2024, 8, 1)) == ["survey_closed"]

    def test_a_later_phase_is_still_closed_for_submissions(self) -> None:
        assert refusals(dt.date(2024, 8, 25)) == ["survey_closed"]

    def test_the_refusals_name_the_phase_and_its_dates(self) -> None:
        early = within_survey_window(context(today=dt.date(2024, 7, 15)))[0]
        late = within_survey_window(context(today=dt.date(2024, 8, 1)))[0]
        assert "宣传发动，调查摸底" in early.message and "2024-07-16" in early.message
        assert "宣传发动，调查摸底" in late.message and "2024-07-31" in late.message

    def test_the_window_is_the_phase_cases_must_leave_survey_by(self) -> None:
        window = WEIHAI.phase_cases_leave("survey")
        assert window is not None
        assert (window.starts, window.ends) == (dt.date(2024, 7, 16), dt.date(2024, 7, 31))


class TestCampaignsWithoutASurveyPhase:
    def test_no_survey_phase_means_no_refusal_at_any_date(self) -> None:
        phases = [p for p in weihai_raw()["phases"] if "survey" not in p.get("cases_leave", [])]
        no_survey = weihai_rules(phases=phases)
        assert no_survey.phase_cases_leave("survey") is None
        for day in (dt.date(2024, 1, 1), dt.date(2024, 7, 20), dt.date(2024, 12, 31)):
            assert refusals(day, no_survey) == []

    def test_the_window_follows_the_phase_that_names_survey_not_its_key(self) -> None:
        phases = weihai_raw()["phases"]
        phases[0]["cases_leave"] = []
        phases[1]["cases_leave"] = ["survey", "archive_check"]  # 7/31–8/22
        moved = weihai_rules(phases=phases)
        assert refusals(dt.date(2024, 7, 20), moved) == ["survey_not_open"]
        assert refusals(dt.date(2024, 8, 22), moved) == []
        assert refusals(dt.date(2024, 8, 23), moved) == ["survey_closed"]
