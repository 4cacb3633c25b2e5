"""The reports page and the reminders-sent page on both databases, as a browser sends them.

Reports: a grassroots union's manager files the statistics report of a campaign whose tables
take typed-in items (Qingpu's 托管班 06A, 06A+), corrects it, and the history marks the second
revision as the one counted — which is what the statistics table then shows; a bad figure is
shown beside its item with nothing written; reading needs no grant, filing needs
report.submit; another union's report is a 404 page.

Reminders: the sweep runs over the Weihai survey deadline (T-3 to two working days overdue),
one message fails and one is sent; a district's manager sees its own units' reminders with
their delivery state and the escalation to the district, filtered by kind and unit, never
another district's; a clerk gets the 403 page."""

from __future__ import annotations

import datetime as dt
import json
import re

from sqlalchemy import select, update

from jinqiu.notifications.models import OutboxMessage, OutboxStatus
from jinqiu.workflow.campaigns.service import load_campaign
from jinqiu.workflow.db import transaction
from jinqiu.workflow.deadlines.models import ReminderLedger
from jinqiu.workflow.deadlines.schedule import ReminderKind
from jinqiu.workflow.deadlines.sweep import sweep
from jinqiu.workflow.statistics.models import ReportSubmission
from jinqiu.workflow.units.models import Unit
from tests.api.conftest import World, username
from tests.api.test_admin_pages import browser, error_page, everything, field_error
from tests.api.test_publicity_pages import csrf_of
from tests.factories import WEIHAI, new_case, weihai_file_in

report_t = ReportSubmission.__table__  # type: ignore[attr-defined]
ledger_t = ReminderLedger.__table__  # type: ignore[attr-defined]
outbox_t = OutboxMessage.__table__  # type: ignore[attr-defined]
unit_t = Unit.__table__  # type: ignore[attr-defined]
MANAGER = username("manager", "WH-HC-001")


def campaign_with_typed_items(world: World) -> int:
    """A 2025 Weihai campaign whose statistics include Qingpu's aid table (06A, 06A+ typed in)."""
    spec = weihai_file_in(
        2025,
        statistics={
            "tables": ["weihai_2024_a1", "qingpu_2017_aid"],
            "cutoff": "2025-08-30",
            "local_decision": True,  # a test campaign: Weihai plus Qingpu's 托管班 items
        },
    )
    with transaction(world.engine) as conn:
        return load_campaign(conn, spec, world.clock)


def history(html: str) -> list[str]:
    """The history's rows as text: "第 2 版 计入统计 … 06A=4 …"."""
    table = html.split('data-testid="history"', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr data-revision.*?</tr>", table, flags=re.S)
    return [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", r)).strip() for r in rows]


def test_a_manager_files_and_corrects_the_statistics_report(world: World) -> None:
    campaign = campaign_with_typed_items(world)
    manager = browser(world, MANAGER)
    page = manager.get(f"/reports?campaign={campaign}")
    assert page.status_code == 200, page.text
    assert 'name="figure:06A"' in page.text and 'name="figure:06A+"' in page.text
    assert "尚未报送" in page.text
    csrf = csrf_of(page.text)
    form = {
        "csrf_token": csrf,
        "campaign": str(campaign),
        "unit": "WH-HC-001",
        "kind": "statistics",
    }
    first = manager.post(
        "/reports", data={**form, "figure:06A": "3", "figure:06A+": "40", "note": "首报"}
    )
    assert first.status_code == 200 and "已报送第 1 版" in first.text, first.text
    assert history(first.text)[0].startswith("第 1 版 计入统计")
    assert 'value="3"' in first.text  # the correction form starts from what counts

    before = everything(world.engine)
    bad = manager.post("/reports", data={**form, "figure:06A": "三个", "figure:06A+": "-1"})
    assert bad.status_code == 422, bad.text
    assert "须为整数" in field_error(bad.text, "06A") and 'value="三个"' in bad.text
    assert "不能为负数" in field_error(bad.text, "06A+")
    assert everything(world.engine) == before

    second = manager.post("/reports", data={**form, "figure:06A": "4", "figure:06A+": "41"})
    assert "已报送第 2 版（更正，以此版为准）" in second.text
    rows = history(second.text)
    assert len(rows) == 2
    assert rows[0].startswith("第 2 版 计入统计") and "06A=4" in rows[0]
    assert rows[1].startswith("第 1 版 已被更正") and "06A=3" in rows[1] and "首报" in rows[1]

    # What the statistics count is the revision marked as counted.
    stats = world.client.get(
        f"/api/campaigns/{campaign}/statistics",
        params={"unit": "WH-HC-001"},
        headers=world.as_(MANAGER),
    ).json()
    items = {i["code"]: i["value"] for t in stats["tables"] for i in t["items"]}
    assert (items["06A"], items["06A+"]) == (4, 41)

    # A correction after the statistics' cut-off day (8/30) is the newest, yet the tables,
    # counted as at that day, keep the second: the page says which one counts.
    world.clock.set(dt.datetime(2025, 9, 2, 9))
    late = browser(world, MANAGER)
    csrf = csrf_of(late.get(f"/reports?campaign={campaign}").text)
    third = late.post("/reports", data={**form, "csrf_token": csrf, "figure:06A": "5"})
    rows = history(third.text)
    assert rows[0].startswith("第 3 版 最新版本，晚于统计截止日 2025-08-30 报送，统计表不计入")
    assert rows[1].startswith("第 2 版 计入统计") and rows[2].startswith("第 1 版 已被更正")


def test_another_unions_report_and_stale_forms_are_error_pages(world: World) -> None:
    campaign = campaign_with_typed_items(world)
    sibling = browser(world, username("manager", "WH-HC-002"))
    error_page(sibling.get(f"/reports?campaign={campaign}&unit=WH-HC-001"), 404, "WH-HC-001")
    error_page(sibling.get("/reports?campaign=999999"), 404, "999999")
    error_page(sibling.get(f"/reports?campaign={campaign}&kind=bonus"), 422, "没有报表 bonus")
    csrf = csrf_of(sibling.get(f"/reports?campaign={campaign}").text)
    before = everything(world.engine)
    form = {"campaign": str(campaign), "unit": "WH-HC-001", "figure:06A": "1"}
    error_page(sibling.post("/reports", data={**form, "csrf_token": csrf}), 422, "单位不存在")
    error_page(sibling.post("/reports", data={**form, "csrf_token": "stale"}), 400, "表单已过期")
    assert everything(world.engine) == before
    # The district above reads its unit's history.
    district = browser(world, username("manager", "WH-HC"))
    assert district.get(f"/reports?campaign={campaign}&unit=WH-HC-001").status_code == 200


def test_a_campaign_without_typed_items_files_a_report_without_figures(world: World) -> None:
    """Weihai 2024 counts everything from records: filing is only saying it is done."""
    manager = browser(world, username("manager", "WH-HC"))
    page = manager.get(f"/reports?campaign={world.campaign}")
    assert "该报表不填报数据项" in page.text
    done = manager.post(
        "/reports",
        data={
            "csrf_token": csrf_of(page.text),
            "campaign": str(world.campaign),
            "unit": "WH-HC",
            "note": "活动总结已另行报送",
        },
    )
    assert "已报送第 1 版" in done.text
    with world.engine.connect() as conn:
        filed = conn.execute(select(report_t)).one()
    assert (filed.kind, filed.revision, filed.figures, filed.submitted_by) == (
        "statistics",
        1,
        {},
        username("manager", "WH-HC"),
    )


# -- the reminders sent -----------------------------------------------------------------------


def swept_survey_deadline(world: World) -> None:
    """Cases left in survey at WH-HC-001 and WH-WD-001; the sweep each working day from T-3 of
    the survey deadline (7/31) to two working days overdue (the district is told then)."""
    for unit in ("WH-HC-001", "WH-WD-001"):
        new_case(world.engine, world.clock, world.campaign, unit)
    for day in (26, 30, 31):
        world.clock.set(dt.datetime(2024, 7, day, 8))
        sweep(world.engine, world.clock, base_url="https://jinqiu.example.org")
    for day in (1, 2):
        world.clock.set(dt.datetime(2024, 8, day, 8))
        sweep(world.engine, world.clock, base_url="https://jinqiu.example.org")


def reminder_rows(html: str) -> list[dict[str, str]]:
    table = html.split('data-testid="reminders"', 1)[1].split("</table>", 1)[0]
    out = []
    for attrs, body in re.findall(r"<tr (data-kind[^>]*)>(.*?)</tr>", table, flags=re.S):
        kind = re.search(r'data-kind="([^"]+)"', attrs)
        unit = re.search(r'data-unit="([^"]+)"', attrs)
        assert kind and unit
        text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body)).strip()
        out.append({"kind": kind.group(1), "unit": unit.group(1), "text": text})
    return out


def test_a_manager_sees_the_reminders_sent_with_their_delivery(world: World) -> None:
    swept_survey_deadline(world)
    with transaction(world.engine) as conn:
        hc = conn.execute(select(unit_t.c.id).where(unit_t.c.code == "WH-HC-001")).scalar_one()
        first = conn.execute(
            select(ledger_t)
            .where(ledger_t.c.unit_id == hc)
            .order_by(ledger_t.c.created_at, ledger_t.c.id)
        ).first()
        assert first is not None
        key = f"reminder:{first.deadline_id}:{hc}:{first.kind}:{first.occurrence}:email"
        conn.execute(
            update(outbox_t)
            .where(outbox_t.c.idempotency_key == key)
            .values(status=OutboxStatus.FAILED.value, attempts=6)
        )

    district = browser(world, username("manager", "WH-HC"))
    page = district.get(f"/reminders?campaign={world.campaign}")
    assert page.status_code == 200, page.text
    rows = reminder_rows(page.text)
    assert {r["unit"] for r in rows} == {"WH-HC-001"}  # never WH-WD-001
    kinds = [r["kind"] for r in rows]
    assert kinds.count(ReminderKind.BEFORE.value) == 3
    assert kinds.count(ReminderKind.OVERDUE.value) == 2
    assert kinds.count(ReminderKind.ESCALATION.value) == 1
    oldest = rows[-1]["text"]
    assert "截止前 3 个工作日" in oldest and "邮件：发送失败" in oldest and "已尝试 6 次" in oldest
    assert all("未读" in r["text"] for r in rows)
    escalation = next(r for r in rows if r["kind"] == ReminderKind.ESCALATION.value)
    told = world.client.get("/api/units/WH-HC", headers=world.as_(username("admin", "WH"))).json()
    assert told["name"] in escalation["text"] and "逾期第 2 个工作日" in escalation["text"]

    only = reminder_rows(
        district.get(f"/reminders?campaign={world.campaign}&kind=escalation&unit=WH-HC-001").text
    )
    assert [r["kind"] for r in only] == [ReminderKind.ESCALATION.value]
    city = reminder_rows(browser(world, username("manager", "WH")).get("/reminders").text)
    assert {r["unit"] for r in city} == {"WH-HC-001", "WH-WD-001"}


def test_reminders_are_for_those_who_run_the_campaign_within_their_subtree(world: World) -> None:
    swept_survey_deadline(world)
    error_page(browser(world, username("clerk", "WH-HC")).get("/reminders"), 403, "无权查看提醒")
    district = browser(world, username("manager", "WH-HC"))
    error_page(district.get("/reminders?unit=WH-WD-001"), 404, "WH-WD-001")
    error_page(district.get("/reminders?kind=postcard"), 422, "kind")
    error_page(district.get("/reminders?page=0"), 422, "page")
    nav = district.get("/reminders").text.split("</nav>", 1)[0]
    assert 'href="/reminders"' in nav
    clerk_nav = browser(world, username("clerk", "WH-HC")).get("/queue").text.split("</nav>")[0]
    assert 'href="/reminders"' not in clerk_nav


def test_every_role_reads_reports_only_managers_file_them_and_see_the_reminders(
    world: World,
) -> None:
    """report.submit (managers) files; campaign.manage (managers, admins) reads the reminders;
    every role reads the reports of its subtree. Refusals are the 403 page, nothing written."""
    campaign = campaign_with_typed_items(world)
    for role in ("clerk", "reviewer", "approver", "finance", "manager", "auditor", "admin"):
        client = browser(world, username(role, "WH-HC-001"))
        page = client.get(f"/reports?campaign={campaign}")
        assert page.status_code == 200, (role, page.text)
        assert ('data-testid="report-form"' in page.text) is (role == "manager"), role
        reminders = client.get(f"/reminders?campaign={campaign}")
        if role in ("manager", "admin"):
            assert reminders.status_code == 200, (role, reminders.text)
        else:
            error_page(reminders, 403, "无权查看提醒")
        if role == "manager":
            continue
        before = everything(world.engine)
        sent = client.post(
            "/reports",
            data={
                "csrf_token": csrf_of(page.text),
                "campaign": str(campaign),
                "unit": "WH-HC-001",
                "figure:06A": "1",
            },
        )
        error_page(sent, 403, "当前角色无权报送")
        assert everything(world.engine) == before


def test_a_report_a_deadline_waits_for_is_offered_and_carries_no_figures(world: World) -> None:
    """The kinds offered are the campaign's: those its tables take figures from and those its
    deadlines wait for (here an interim report, as Bozhou's notice asks)."""
    interim = {
        "key": "interim_report",
        "title": "报送阶段性情况报告",
        "due": "2025-08-15",
        "responsible_level": "district",
        "done_when": {"report_submitted": "interim"},
    }
    deadlines = json.loads(WEIHAI.read_text(encoding="utf-8").replace("2024-", "2025-"))
    spec = weihai_file_in(2025, deadlines=[*deadlines["deadlines"], interim])
    with transaction(world.engine) as conn:
        campaign = load_campaign(conn, spec, world.clock)
    manager = browser(world, username("manager", "WH-HC"))
    page = manager.get(f"/reports?campaign={campaign}")
    assert '<option value="interim"' in page.text and '<option value="statistics"' in page.text
    assert '<option value="demand_summary"' not in page.text
    shown = manager.get(f"/reports?campaign={campaign}&kind=interim")
    assert "该报表不填报数据项" in shown.text
    form = {"csrf_token": csrf_of(shown.text), "campaign": str(campaign), "unit": "WH-HC"}
    before = everything(world.engine)
    refused = manager.post("/reports", data={**form, "kind": "interim", "figure:06A": "1"})
    assert refused.status_code == 422 and "不报送数据项" in refused.text, refused.text
    assert everything(world.engine) == before
    filed = manager.post("/reports", data={**form, "kind": "interim", "note": "进展顺利"})
    assert "已报送第 1 版" in filed.text and history(filed.text)[0].startswith("第 1 版 计入统计")
    assert history(manager.get(f"/reports?campaign={campaign}").text) == []  # statistics: none
