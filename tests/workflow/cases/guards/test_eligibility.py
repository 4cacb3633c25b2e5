"""worker_is_eligible: a worker in the hardship archive (深度/相对/意外致困), archived less
than the campaign's months ago — Weihai 2024: "建档满1年的困难职工需要重新申报" — or a worker
of a category the campaign admits (农民工, 新就业形态劳动者, 单亲母亲, 劳模)."""

from __future__ import annotations

import datetime as dt

import pytest

from jinqiu.workflow.cases.guards.eligibility import (
    add_months,
    archive_is_current,
    worker_is_eligible,
)
from tests.workflow.cases.guards.builders import codes, context, weihai_rules, worker

TODAY = dt.date(2024, 7, 20)


def eligible(
    today: dt.date = TODAY, campaign: object = None, **worker_changes: object
) -> list[str]:
    ctx = context(today=today, campaign=campaign, worker_facts=worker(**worker_changes))  # type: ignore[arg-type]
    return codes(worker_is_eligible(ctx))


class TestArchivedWorkers:
    @pytest.mark.parametrize("status", ["deep", "relative", "accident"])
    def test_a_worker_archived_this_spring_is_eligible(self, status: str) -> None:
        assert eligible(archive_status=status, archived_on=dt.date(2024, 3, 1)) == []

    def test_archived_eleven_months_ago_is_still_current(self) -> None:
        assert eligible(archived_on=dt.date(2023, 8, 20)) == []

    def test_archived_a_year_ago_tomorrow_is_still_current(self) -> None:
        assert eligible(archived_on=dt.date(2023, 7, 21)) == []

    def test_archive_exactly_a_year_old_must_redeclare(self) -> None:
        assert eligible(archived_on=dt.date(2023, 7, 20)) == ["archive_expired"]

    def test_archive_older_than_a_year_must_redeclare(self) -> None:
        assert eligible(archived_on=dt.date(2023, 5, 1)) == ["archive_expired"]

    def test_the_refusal_says_when_the_worker_was_archived_and_to_redeclare(self) -> None:
        reasons = worker_is_eligible(context(worker_facts=worker(archived_on=dt.date(2023, 5, 1))))
        assert "2023-05-01" in reasons[0].message
        assert "12个月" in reasons[0].message
        assert "重新申报" in reasons[0].message

    def test_a_campaign_may_allow_older_archives(self) -> None:
        two_years = weihai_rules(eligibility={"archive_max_age_months": 24, "categories": []})
        assert eligible(campaign=two_years, archived_on=dt.date(2023, 5, 1)) == []
        assert eligible(campaign=two_years, archived_on=dt.date(2022, 7, 20)) == ["archive_expired"]

    def test_an_archived_worker_without_an_archive_date_is_refused(self) -> None:
        assert eligible(archived_on=None) == ["archive_date_missing"]

    def test_an_archive_date_after_today_is_refused(self) -> None:
        assert eligible(archived_on=dt.date(2024, 7, 21)) == ["archive_date_in_future"]

    def test_archived_today_is_current(self) -> None:
        assert eligible(archived_on=TODAY) == []


class TestWorkersOutsideTheArchive:
    def test_a_worker_not_in_the_archive_is_refused(self) -> None:
        assert eligible(archive_status="none", archived_on=None) == ["not_in_archive"]

    @pytest.mark.parametrize(
        "category", ["migrant_worker", "gig_worker", "single_mother", "model_worker"]
    )
    def test_a_worker_of_an_admitted_category_is_eligible_without_an_archive(
        self, category: str
    ) -> None:
        assert eligible(archive_status="none", archived_on=None, categories=(category,)) == []

    def test_a_migrant_worker_with_an_expired_archive_is_still_eligible(self) -> None:
        assert eligible(archived_on=dt.date(2022, 1, 1), categories=("migrant_worker",)) == []

    def test_a_category_the_campaign_does_not_admit_is_refused(self) -> None:
        migrants_only = weihai_rules(
            eligibility={"archive_max_age_months": 12, "categories": ["migrant_worker"]}
        )
        assert eligible(
            campaign=migrants_only,
            archive_status="none",
            archived_on=None,
            categories=("gig_worker",),
        ) == ["not_in_archive"]

    def test_a_campaign_admitting_no_category_refuses_every_unarchived_worker(self) -> None:
        archive_only = weihai_rules(eligibility={"archive_max_age_months": 12, "categories": []})
        assert eligible(
            campaign=archive_only,
            archive_status="none",
            archived_on=None,
            categories=("migrant_worker", "model_worker"),
        ) == ["not_in_archive"]

    def test_one_admitted_category_among_others_is_enough(self) -> None:
        migrants_only = weihai_rules(
            eligibility={"archive_max_age_months": 12, "categories": ["migrant_worker"]}
        )
        assert (
            eligible(
                campaign=migrants_only,
                archive_status="none",
                archived_on=None,
                categories=("gig_worker", "migrant_worker"),
            )
            == []
        )


class TestArchiveIsCurrentAlone:
    def test_the_archive_check_ignores_categories(self) -> None:
        ctx = context(worker_facts=worker(archive_status="none", categories=("migrant_worker",)))
        assert codes(archive_is_current(ctx)) == ["not_in_archive"]


class TestMonthArithmetic:
    @pytest.mark.parametrize(
        ("day", "months", "expected"),
        [
            (dt.date(2024, 1, 31), 1, dt.date(2024, 2, 29)),  # leap February
            (dt.date(2023, 1, 31), 1, dt.date(2023, 2, 28)),
            (dt.date(2024, 3, 31), 1, dt.date(2024, 4, 30)),
            (dt.date(2024, 2, 29), 12, dt.date(2025, 2, 28)),
            (dt.date(2023, 12, 15), 1, dt.date(2024, 1, 15)),  # across the year
            (dt.date(2023, 7, 20), 12, dt.date(2024, 7, 20)),
            (dt.date(2023, 8, 31), 6, dt.date(2024, 2, 29)),
            (dt.date(2024, 5, 10), 0, dt.date(2024, 5, 10)),
            (dt.date(2022, 11, 30), 27, dt.date(2025, 2, 28)),
        ],
    )
    def test_adding_months_keeps_the_day_or_falls_to_the_month_end(
        self, day: dt.date, months: int, expected: dt.date
    ) -> None:
        assert add_months(day, months) == expected

    def test_a_one_month_archive_from_january_31_expires_on_february_29(self) -> None:
        one_month = weihai_rules(eligibility={"archive_max_age_months": 1, "categories": []})
        jan31 = dt.date(2024, 1, 31)
        assert eligible(dt.date(2024, 2, 28), one_month, archived_on=jan31) == []
        assert eligible(dt.date(2024, 2, 29), one_month, archived_on=jan31) == ["archive_expired"]

    def test_a_leap_day_archive_expires_on_february_28_a_year_on(self) -> None:
        feb29 = dt.date(2024, 2, 29)
        assert eligible(dt.date(2025, 2, 27), archived_on=feb29) == []
        assert eligible(dt.date(2025, 2, 28), archived_on=feb29) == ["archive_expired"]
