"""Finding 2: `jinqiu serve` with its default options (one worker) runs the scheduler.

The real console script is started on a SQLite file holding a campaign with a deadline due
today (the real date: serve sweeps on the wall clock) and a district union with a contact
address; its start-up sweep must deliver the reminder to the SMTP server this test runs."""

from __future__ import annotations

import datetime as dt
import os
import time
from pathlib import Path

import chinese_calendar
import httpx
import pytest

from jinqiu.demo.server import start_server
from jinqiu.workflow.campaigns.schema import CampaignFile
from jinqiu.workflow.campaigns.service import load_campaign
from jinqiu.workflow.clock import SystemClock
from jinqiu.workflow.db import make_engine, transaction
from jinqiu.workflow.migrate import upgrade
from jinqiu.workflow.units.models import UnitLevel
from jinqiu.workflow.units.service import UnitCreate, create_unit
from tests.api.test_serve_concurrency import SECRET
from tests.factories import ROOT
from tests.notifications.test_smtp_delivery import SmtpServer

TITLE = "报送活动总结和统计表（今日截止）"


def official_calendar_knows(year: int) -> bool:
    try:
        chinese_calendar.is_workday(dt.date(year, 6, 1))
    except NotImplementedError:
        return False
    return True


def campaign_due_today(today: dt.date) -> CampaignFile:
    """One phase and one deadline, both today; calendar overrides for the years around today
    the official calendar does not know yet (reminders look back and overdue notices ahead)."""
    years = {(today + dt.timedelta(days=d)).year for d in (-90, 0, 150)}
    unknown = sorted(y for y in years if not official_calendar_knows(y))
    return CampaignFile.model_validate(
        {
            "name": f"{today.year}年度金秋助学活动（调度测试）",
            "year": today.year,
            "organizer": "WH",
            "approval_levels": ["district", "city"],
            "phases": [
                {
                    "key": "summary",
                    "name": "总结",
                    "starts": today.isoformat(),
                    "ends": today.isoformat(),
                }
            ],
            "deadlines": [
                {
                    "key": "statistics_report",
                    "title": TITLE,
                    "due": today.isoformat(),
                    "responsible_level": "district",
                    "done_when": {"report_submitted": "statistics"},
                }
            ],
            "aid_rules": [
                {"education_level": "college", "amount": "2500", "local_decision": "测试活动"}
            ],
            "funds": [{"source": "union", "budget": "100000"}],
            "calendar": {"years": unknown},
        }
    )


def seed(path: Path) -> None:
    engine = make_engine(f"sqlite:///{path}")
    try:
        upgrade(engine)
        clock = SystemClock()
        with transaction(engine) as conn:
            create_unit(conn, UnitCreate(code="WH", name="威海市总工会", level=UnitLevel.CITY))
            create_unit(
                conn,
                UnitCreate(
                    code="WH-HC",
                    name="环翠区总工会",
                    level=UnitLevel.DISTRICT,
                    parent="WH",
                    contact_email="wh-hc@example.org",
                ),
            )
            load_campaign(conn, campaign_due_today(clock.now().date()), clock)
    finally:
        engine.dispose()


def test_serve_with_default_options_sweeps_at_start_up_and_delivers_a_reminder(
    tmp_path: Path,
) -> None:
    database = tmp_path / "serve.db"
    seed(database)
    smtp = SmtpServer().start()
    env = {
        **os.environ,
        "JINQIU_DATABASE_URL": f"sqlite:///{database}",
        "JINQIU_SECRET_KEY": SECRET,
        "JINQIU_SMTP_HOST": "127.0.0.1",
        "JINQIU_SMTP_PORT": str(smtp.port),
        "PYTHONUTF8": "1",
    }
    env.pop("JINQIU_RUN_SCHEDULER", None)
    # Default host and workers (one), as an operator starts it.
    server = start_server(env, tmp_path / "serve.log", host=None, cwd=ROOT)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not smtp.received:
            if not server.running():
                pytest.fail(f"jinqiu serve exited {server.process.returncode}:\n{server.tail()}")
            time.sleep(0.2)
        received = smtp.received
        health = httpx.get(f"{server.base_url}/api/health", timeout=10).json()
    finally:
        server.stop()
        smtp.stop()
    assert [r.rcpt_tos for r in received] == [["wh-hc@example.org"]], server.tail()
    assert TITLE in str(received[0].message["Subject"])
    assert health["status"] == "ok"
