"""The campaign file: validated field by field before anything is written, each problem
naming its field as a dotted path (workflow.validation.parse → ValidationFailed.details)."""

from __future__ import annotations

import copy
import datetime as dt
import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from jinqiu.workflow.campaigns.checks import campaign_problems
from jinqiu.workflow.campaigns.schema import CampaignFile
from jinqiu.workflow.errors import ValidationFailed
from jinqiu.workflow.validation import parse

WEIHAI_FILE = Path(__file__).resolve().parents[3] / "examples" / "campaigns" / "weihai-2024.json"
WEIHAI_RAW: dict[str, Any] = json.loads(WEIHAI_FILE.read_text(encoding="utf-8"))


def weihai(change: Callable[[dict[str, Any]], object] | None = None) -> dict[str, Any]:
    raw = copy.deepcopy(WEIHAI_RAW)
    if change is not None:
        change(raw)
    return raw


def problems(raw: dict[str, Any]) -> list[dict[str, str]]:
    with pytest.raises(ValidationFailed) as caught:
        parse(CampaignFile, raw)
    details = caught.value.details
    assert details, "a refusal lists its problems"
    return list(details)


def fields(raw: dict[str, Any]) -> list[str]:
    return [p["field"] for p in problems(raw)]


class TestTheWeihaiFile:
    def test_the_weihai_2024_file_validates(self) -> None:
        spec = parse(CampaignFile, weihai())
        assert (spec.name, spec.year, spec.organizer) == ("2024年度金秋助学活动", 2024, "WH")

    def test_its_four_phases_carry_the_notices_dates(self) -> None:
        spec = parse(CampaignFile, weihai())
        assert [(p.starts, p.ends) for p in spec.phases] == [
            (dt.date(2024, 7, 16), dt.date(2024, 7, 31)),
            (dt.date(2024, 7, 31), dt.date(2024, 8, 22)),
            (dt.date(2024, 8, 23), dt.date(2024, 8, 29)),
            (dt.date(2024, 8, 30), dt.date(2024, 8, 31)),
        ]

    def test_its_amounts_are_exact_decimals(self) -> None:
        spec = parse(CampaignFile, weihai())
        third = next(r for r in spec.aid_rules if r.tier == "third")
        assert third.amount == Decimal("3500")
        assert (third.amount_fen, third.cap_fen) == (350_000, 350_000)
        assert [f.budget for f in spec.funds] == [
            Decimal("400000"),
            Decimal("100000"),
            Decimal("250000"),
            Decimal("0"),
        ]

    def test_defaults_fill_what_the_file_leaves_out(self) -> None:
        spec = parse(
            CampaignFile, weihai(lambda r: [r.pop(k) for k in ("reminders", "eligibility")])
        )
        # No age limit unless the notice sets one (with the day it is counted to).
        assert spec.eligibility.archive_max_age_months is None
        assert spec.eligibility.archive_reference_date is None
        assert spec.reminders.before_working_days == [3, 1, 0]


class TestABadFieldIsNamed:
    def test_a_phase_ending_before_it_starts_names_its_end(self) -> None:
        found = problems(weihai(lambda r: r["phases"][0].update(ends="2024-07-01")))
        assert [p["field"] for p in found] == ["phases.0.ends"]
        assert "早于" in found[0]["message"]

    def test_a_float_amount_names_the_rule_amount(self) -> None:
        found = problems(weihai(lambda r: r["aid_rules"][0].update(amount=4000.0)))
        assert [p["field"] for p in found] == ["aid_rules.0.amount"]
        assert "浮点数" in found[0]["message"]

    def test_a_float_cap_names_the_rule_cap(self) -> None:
        assert fields(weihai(lambda r: r["aid_rules"][3].update(cap=3500.0))) == ["aid_rules.3.cap"]

    def test_a_float_budget_names_the_fund_budget(self) -> None:
        assert fields(weihai(lambda r: r["funds"][2].update(budget=250000.0))) == ["funds.2.budget"]

    def test_an_unknown_fund_source_names_it(self) -> None:
        found = problems(weihai(lambda r: r["funds"][1].update(source="lottery")))
        assert [(p["field"], p["code"]) for p in found] == [("funds.1.source", "literal_error")]

    def test_an_unknown_top_level_key_is_refused(self) -> None:
        found = problems(weihai(lambda r: r.update(colour="gold")))
        assert [(p["field"], p["code"]) for p in found] == [("colour", "extra_forbidden")]

    def test_an_unknown_key_inside_a_phase_is_refused(self) -> None:
        found = problems(weihai(lambda r: r["phases"][2].update(owner="市总")))
        assert [(p["field"], p["code"]) for p in found] == [("phases.2.owner", "extra_forbidden")]

    def test_a_missing_required_field_is_named(self) -> None:
        found = problems(weihai(lambda r: r.pop("aid_rules")))
        assert [(p["field"], p["code"]) for p in found] == [("aid_rules", "missing")]

    def test_a_malformed_date_is_named(self) -> None:
        found = problems(weihai(lambda r: r["phases"][1].update(starts="2024/07/31")))
        assert [p["field"] for p in found] == ["phases.1.starts"]

    def test_an_unknown_education_level_is_named(self) -> None:
        found = problems(weihai(lambda r: r["aid_rules"][5].update(education_level="kindergarten")))
        assert [p["field"] for p in found] == ["aid_rules.5.education_level"]

    def test_an_unknown_case_state_a_phase_waits_for_is_named(self) -> None:
        found = problems(weihai(lambda r: r["phases"][0].update(cases_leave=["drafting"])))
        assert [p["field"] for p in found] == ["phases.0.cases_leave.0"]

    def test_every_problem_is_reported_at_once(self) -> None:
        def two_mistakes(r: dict[str, Any]) -> None:
            r["funds"][1]["source"] = "lottery"
            r["aid_rules"][0]["amount"] = 4000.0

        assert set(fields(weihai(two_mistakes))) == {"funds.1.source", "aid_rules.0.amount"}

    def test_the_error_message_names_the_first_bad_field(self) -> None:
        with pytest.raises(ValidationFailed) as caught:
            parse(CampaignFile, weihai(lambda r: r["funds"][1].update(source="lottery")))
        assert "funds.1.source" in caught.value.message
        assert caught.value.status == 422


class TestAmountsMustBeExact:
    @pytest.mark.parametrize("value", [4000.0, 4000.5, 0.1])
    def test_an_aid_amount_given_as_a_float_is_refused(self, value: float) -> None:
        assert "aid_rules.0.amount" in fields(
            weihai(lambda r: r["aid_rules"][0].update(amount=value))
        )

    def test_amounts_given_as_integers_or_strings_are_accepted(self) -> None:
        spec = parse(
            CampaignFile,
            weihai(lambda r: r["aid_rules"][0].update(amount=4000, cap="4000.00")),
        )
        assert spec.aid_rules[0].amount_fen == 400_000

    def test_a_rule_amount_with_less_than_a_fen_is_refused(self) -> None:
        found = fields(weihai(lambda r: r["aid_rules"][0].update(amount="3999.999")))
        assert len(found) == 1 and found[0].startswith("aid_rules.0")

    def test_a_budget_with_less_than_a_fen_is_refused_naming_the_budget(self) -> None:
        # Otherwise the file validates and load_campaign's yuan_to_fen raises InvalidAmount.
        assert fields(weihai(lambda r: r["funds"][0].update(budget="400000.001"))) == [
            "funds.0.budget"
        ]

    def test_a_negative_budget_is_refused(self) -> None:
        assert fields(weihai(lambda r: r["funds"][0].update(budget="-1"))) == ["funds.0.budget"]

    def test_an_amount_above_its_cap_is_refused(self) -> None:
        found = problems(weihai(lambda r: r["aid_rules"][0].update(amount="5000", cap="4000")))
        assert found[0]["field"].startswith("aid_rules.0")
        assert "cap" in found[0]["message"]

    def test_a_fixed_rule_without_an_amount_is_refused(self) -> None:
        found = problems(weihai(lambda r: r["aid_rules"][6].pop("basis")))
        assert found[0]["field"].startswith("aid_rules.6")
        assert "amount" in found[0]["message"]


class TestTheWholeFile:
    def test_two_funds_of_the_same_source_are_refused(self) -> None:
        found = problems(weihai(lambda r: r["funds"].append({"source": "union", "budget": "1"})))
        assert "funds" in found[0]["message"]

    def test_two_phases_with_the_same_key_are_refused(self) -> None:
        found = problems(weihai(lambda r: r["phases"][1].update(key="survey")))
        assert "phases" in found[0]["message"]

    def test_an_approval_level_named_twice_is_refused(self) -> None:
        found = problems(weihai(lambda r: r.update(approval_levels=["city", "city"])))
        assert "approval_levels" in found[0]["message"]

    def test_a_campaign_needs_at_least_one_approval_level(self) -> None:
        assert fields(weihai(lambda r: r.update(approval_levels=[]))) == ["approval_levels"]

    @pytest.mark.parametrize("days", [-1, 31])
    def test_the_publicity_lasts_between_0_and_30_working_days(self, days: int) -> None:
        assert fields(weihai(lambda r: r.update(publicity_working_days=days))) == [
            "publicity_working_days"
        ]

    def test_no_publicity_is_allowed_where_a_notice_asks_for_none(self) -> None:
        spec = parse(CampaignFile, weihai(lambda r: r.update(publicity_working_days=0)))
        assert spec.publicity_working_days == 0

    def test_calendar_overrides_for_an_unknown_year_are_accepted(self) -> None:
        spec = parse(
            CampaignFile,
            weihai(lambda r: r.update(calendar={"years": [2027], "holidays": ["2027-10-01"]})),
        )
        assert spec.calendar.years == [2027]
        assert spec.calendar.holidays == [dt.date(2027, 10, 1)]


class TestEntrantsOfNamedYears:
    """`enrolled_in` (Dalian's 2009/2010 continuing scholars): years no later than the campaign's."""

    def rule(self, years: list[int]) -> dict[str, Any]:
        return {
            "education_level": "undergraduate",
            "enrolled_in": years,
            "amount": "1000",
            "local_decision": "本地决定：测试",
        }

    def test_a_year_after_the_campaign_s_is_named(self) -> None:
        year = WEIHAI_RAW["year"]
        ok = parse(CampaignFile, weihai(lambda r: r["aid_rules"].append(self.rule([year - 1]))))
        assert campaign_problems(ok) == []
        late = parse(CampaignFile, weihai(lambda r: r["aid_rules"].append(self.rule([year + 1]))))
        (problem,) = campaign_problems(late)
        index = len(late.aid_rules) - 1
        assert problem["field"] == f"aid_rules.{index}.enrolled_in"
        assert problem["code"] == "outside_campaign_year" and str(year + 1) in problem["message"]

    def test_an_empty_list_of_years_is_named(self) -> None:
        index = len(WEIHAI_RAW["aid_rules"])
        bad = weihai(lambda r: r["aid_rules"].append(self.rule([])))
        assert fields(bad) == [f"aid_rules.{index}.enrolled_in"]
