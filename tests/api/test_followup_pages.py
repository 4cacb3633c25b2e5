"""The follow-up part of the case page (both databases): visits listed and recorded through a
form with its CSRF token, refusals shown on the case page; the renewal button offering the
later campaigns; the renewal count on the dashboard page."""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import func, select

from jinqiu.states import CaseState
from jinqiu.workflow.cases.models import Case
from jinqiu.workflow.followup.models import FollowUpVisit
from tests.api.conftest import World
from tests.api.test_followup import RULE, campaign_of, paid
from tests.factories import case_in, case_row
from tests.security.test_bounds import sign_in_page

visit_t = FollowUpVisit.__table__  # type: ignore[attr-defined]
case_t = Case.__table__  # type: ignore[attr-defined]
CLERK = "clerk.wh-hc-001"


def visit_form(token: str, day: dt.date, **changes: str) -> dict[str, str]:
    return {"csrf_token": token, "date": day.isoformat(), "kind": "home", "visitor": "工会 李干事",
            "situation": "studying", "notes": "家中一切正常"} | changes  # fmt: skip


def stored_visits(world: World, case: int) -> int:
    with world.engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count()).select_from(visit_t).where(visit_t.c.case_id == case)
            ).scalar_one()
        )


def test_a_visit_recorded_on_the_case_page_closes_the_case_per_the_rule(world: World) -> None:
    campaign = campaign_of(world, 2024, name="2024年度金秋助学（回访）", follow_up=RULE)
    case = paid(world, campaign)
    token = sign_in_page(world, CLERK)
    page = world.client.get(f"/cases/{case}")
    assert page.status_code == 200 and 'data-testid="visit-form"' in page.text
    assert "本次活动要求回访 2 次，已回访 0 次" in page.text and "尚无回访记录" in page.text

    today = world.clock.now().date()
    first = world.client.post(f"/cases/{case}/visits", data=visit_form(token, today, kind="phone"),
                              follow_redirects=True)  # fmt: skip
    assert first.status_code == 200 and f"已登记{today}的回访" in first.text, first.text[:500]
    assert "电话" in first.text and "家中一切正常" in first.text and "已回访 1 次" in first.text

    second = world.client.post(f"/cases/{case}/visits", data=visit_form(token, today, kind="school"),
                               follow_redirects=True)  # fmt: skip
    assert "达到回访要求，案件办结" in second.text
    assert 'data-testid="visit-form"' not in second.text  # closed: no more visits
    assert case_row(world.engine, case).state == "closed"
    timeline = second.text[second.text.index('data-testid="timeline"') :]
    assert timeline.count("<strong>回访</strong>") == 2 and "回访办结" in timeline


def test_refusals_are_shown_on_the_case_page_and_write_nothing(world: World) -> None:
    case = paid(world, world.campaign)
    token = sign_in_page(world, CLERK)
    version = case_row(world.engine, case).version
    tomorrow = world.clock.now().date() + dt.timedelta(days=1)
    future = world.client.post(f"/cases/{case}/visits", data=visit_form(token, tomorrow),
                               follow_redirects=True)  # fmt: skip
    assert future.status_code == 200 and 'data-testid="refusal"' in future.text
    assert "回访日期不能晚于今天" in future.text
    bad_kind = world.client.post(
        f"/cases/{case}/visits", data=visit_form(token, world.clock.now().date(), kind="email"),
        follow_redirects=True,
    )  # fmt: skip
    assert 'data-testid="refusal"' in bad_kind.text and "kind" in bad_kind.text
    forged = world.client.post(
        f"/cases/{case}/visits", data=visit_form("forged", world.clock.now().date()),
        follow_redirects=True,
    )  # fmt: skip
    assert forged.status_code == 400 and "表单已过期" in forged.text
    assert stored_visits(world, case) == 0 and case_row(world.engine, case).version == version

    surveyed = case_in(world.engine, world.clock, world.campaign, "WH-HC-001", CaseState.SURVEY)
    page = world.client.get(f"/cases/{surveyed}")
    assert (
        'data-testid="visit-form"' not in page.text
        and 'data-testid="renewal-form"' not in page.text
    )
    outside = world.client.post(f"/cases/{surveyed}/visits",
                                data=visit_form(token, world.clock.now().date()), follow_redirects=True)  # fmt: skip
    assert "只有发放后回访阶段的案件可以登记回访" in outside.text


def test_the_renewal_button_offers_later_campaigns_and_the_dashboard_counts_renewals(
    world: World,
) -> None:
    later = campaign_of(world, 2025)
    case = paid(world, world.campaign)
    graduated = paid(world, world.campaign, enrollment_year=2021, program_years=4)
    token = sign_in_page(world, CLERK)
    page = world.client.get(f"/cases/{case}")
    form = page.text[page.text.index('data-testid="renewal-form"') :]
    options = re.findall(r'<option value="(\d+)">', form[: form.index("</form>")])
    assert options == [str(later)]  # the 2024 campaign itself is not offered

    refused = world.client.post(f"/cases/{graduated}/renewal",
                                data={"csrf_token": token, "campaign": str(later)}, follow_redirects=True)  # fmt: skip
    assert 'data-testid="refusal"' in refused.text and "已毕业，不再续助" in refused.text

    renewed = world.client.post(f"/cases/{case}/renewal",
                                data={"csrf_token": token, "campaign": str(later)}, follow_redirects=True)  # fmt: skip
    assert renewed.status_code == 200 and "已续助：新案件" in renewed.text, renewed.text[:500]
    with world.engine.connect() as conn:
        new_id = conn.execute(select(case_t.c.id).where(case_t.c.renewal_of == case)).scalar_one()
    assert renewed.url.path == f"/cases/{new_id}"
    assert f'本案件为案件 <a href="/cases/{case}">{case}</a> 的续助' in renewed.text

    sign_in_page(world, "manager.wh")
    board = world.client.get(f"/dashboard?campaign={later}")
    assert board.status_code == 200
    line = board.text[board.text.index('data-testid="renewals"') :]
    assert "<strong>1</strong> 件" in line[: line.index("</p>")] and "摸底申报 1" in line
