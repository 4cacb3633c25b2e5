"""worker_is_eligible: a worker in the hardship archive (深度/相对/意外致困), archived less than
the campaign's months before its reference date — Weihai 2024: "建档满1年的困难职工需要重新申报",
reckoned at the 7/31 submission, whatever the day the guard runs — or a worker of one of the
campaign's categories that waives the archive, when its condition on the form holds."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest

from jinqiu.workflow.cases.guards.eligibility import (
    add_months,
    archive_is_current,
    worker_is_eligible,
)
from tests.workflow.cases.guards.builders import codes, context, weihai_rules, worker

TODAY = dt.date(2024, 7, 20)
REFERENCE = dt.date(2024, 7, 31)  # Weihai's archive_reference_date


def eligible(
    today: dt.date = TODAY, campaign: object = None, form: Any = None, **worker_changes: object
) -> list[str]:
    ctx = context(today=today, campaign=campaign, worker_facts=worker(**worker_changes))  # type: ignore[arg-type]
    if form is not None:
        ctx = dataclasses.replace(ctx, case=dataclasses.replace(ctx.case, form=form))
    return codes(worker_is_eligible(ctx))


def archive_rule(months: int | None, reference: str | None = "2024-07-31") -> dict[str, Any]:
    rule: dict[str, Any] = {"source": "建档满1年的困难职工需要重新申报"}
    if months is not None:
        rule.update(archive_max_age_months=months, archive_reference_date=reference)
    return rule


WAIVING = [
    {"code": "warmth", "label": "送温暖对象", "source": "(二)…", "waives_archive_check": True},
    {
        "code": "migrant_worker",
        "label": "在城市上学的困难农民工家庭在校生",
        "source": "(三)在城市上学的…",
        "waives_archive_check": True,
        "condition": {"form_field": "studies_in_city", "label": "在城市上学"},
    },
    {"code": "archived", "label": "建档立卡", "source": "(一)…", "waives_archive_check": False},
]
CITY_FIELD = {"key": "studies_in_city", "label": "在城市上学", "kind": "yes_no"}
TYPES = [{"code": "new", "label": "新入校", "source": "附件1", "fields": [CITY_FIELD]}]


class TestArchivedWorkers:
    @pytest.mark.parametrize("status", ["deep", "relative", "accident"])
    def test_a_worker_archived_this_spring_is_eligible(self, status: str) -> None:
        assert eligible(archive_status=status, archived_on=dt.date(2024, 3, 1)) == []

    def test_archived_a_year_before_the_reference_date_and_a_day_is_current(self) -> None:
        assert eligible(archived_on=dt.date(2023, 8, 1)) == []

    def test_archive_a_year_old_on_the_reference_date_must_redeclare(self) -> None:
        assert eligible(archived_on=dt.date(2023, 7, 31)) == ["archive_expired"]

    def test_counted_to_the_reference_date_not_to_today(self) -> None:
        # A year old on 7/25: current on 7/20 by the calendar, not by the notice's 7/31.
        assert eligible(TODAY, archived_on=dt.date(2023, 7, 25)) == ["archive_expired"]
        # Current at 7/31, and still on 8/22 when the review finds it.
        assert eligible(dt.date(2024, 8, 22), archived_on=dt.date(2023, 8, 1)) == []

    def test_the_refusal_quotes_the_notice_and_says_to_redeclare(self) -> None:
        reasons = worker_is_eligible(context(worker_facts=worker(archived_on=dt.date(2023, 5, 1))))
        assert "2023-05-01" in reasons[0].message
        assert "2024-07-31" in reasons[0].message
        assert "建档满1年的困难职工需要重新申报" in reasons[0].message

    def test_a_campaign_may_allow_older_archives(self) -> None:
        two_years = weihai_rules(eligibility=archive_rule(24))
        assert eligible(campaign=two_years, archived_on=dt.date(2023, 5, 1)) == []
        assert eligible(campaign=two_years, archived_on=dt.date(2022, 7, 31)) == ["archive_expired"]

    def test_a_campaign_whose_notice_sets_no_age_checks_none(self) -> None:
        no_limit = weihai_rules(eligibility=archive_rule(None))
        assert eligible(campaign=no_limit, archived_on=dt.date(2001, 1, 1)) == []

    def test_an_archived_worker_without_an_archive_date_is_refused(self) -> None:
        assert eligible(archived_on=None) == ["archive_date_missing"]

    def test_an_archive_date_after_today_is_refused(self) -> None:
        assert eligible(archived_on=dt.date(2024, 7, 21)) == ["archive_date_in_future"]

    def test_archived_today_is_current(self) -> None:
        assert eligible(archived_on=TODAY) == []


class TestWorkersOutsideTheArchive:
    def test_a_worker_not_in_the_archive_is_refused(self) -> None:
        assert eligible(archive_status="none", archived_on=None) == ["not_in_archive"]

    @pytest.mark.parametrize("category", ["archived", "migrant_worker", "gig_worker"])
    def test_no_weihai_category_waives_the_archive(self, category: str) -> None:
        assert eligible(archive_status="none", archived_on=None, categories=(category,)) == [
            "not_in_archive"
        ]

    def test_a_waiving_category_is_eligible_without_an_archive(self) -> None:
        campaign = weihai_rules(categories=WAIVING, application_types=TYPES)
        assert (
            eligible(
                campaign=campaign, archive_status="none", archived_on=None, categories=("warmth",)
            )
            == []
        )

    def test_a_waiving_category_with_an_expired_archive_is_eligible(self) -> None:
        campaign = weihai_rules(categories=WAIVING, application_types=TYPES)
        assert (
            eligible(campaign=campaign, archived_on=dt.date(2022, 1, 1), categories=("warmth",))
            == []
        )

    def test_a_condition_on_the_form_must_hold(self) -> None:
        campaign = weihai_rules(categories=WAIVING, application_types=TYPES)
        outside = {"archive_status": "none", "archived_on": None, "categories": ("migrant_worker",)}
        assert eligible(campaign=campaign, form={"studies_in_city": True}, **outside) == []
        assert eligible(campaign=campaign, form={"studies_in_city": False}, **outside) == [
            "not_in_archive",
            "category_condition_unmet",
        ]
        assert eligible(campaign=campaign, form={}, **outside) == [
            "not_in_archive",
            "category_condition_unmet",
        ]

    def test_a_category_that_does_not_waive_is_not_enough(self) -> None:
        campaign = weihai_rules(categories=WAIVING, application_types=TYPES)
        assert eligible(
            campaign=campaign, archive_status="none", archived_on=None, categories=("archived",)
        ) == ["not_in_archive"]

    def test_one_waiving_category_among_others_is_enough(self) -> None:
        campaign = weihai_rules(categories=WAIVING, application_types=TYPES)
        assert (
            eligible(
                campaign=campaign,
                archive_status="none",
                archived_on=None,
                categories=("archived", "warmth"),
            )
            == []
        )


class TestArchiveIsCurrentAlone:
    def test_the_archive_check_ignores_categories(self) -> None:
        campaign = weihai_rules(categories=WAIVING, application_types=TYPES)
        ctx = context(
            campaign=campaign,
            worker_facts=worker(archive_status="none", categories=("warmth",)),
        )
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
        jan31 = dt.date(2024, 1, 31)
        for reference, expected in (("2024-02-28", []), ("2024-02-29", ["archive_expired"])):
            one_month = weihai_rules(eligibility=archive_rule(1, reference))
            assert eligible(dt.date(2024, 2, 28), one_month, archived_on=jan31) == expected
