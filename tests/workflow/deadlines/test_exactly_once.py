"""Exactly once, for real: `jinqiu tick` processes against one PostgreSQL schema and a real SMTP
server (aiosmtpd), over 1,100 unit-deadlines.

Two processes sweep and deliver side by side while a third is killed with SIGKILL mid-way;
one more tick (after the dead process's delivery lease has run out) finishes. Counted at the
SMTP server by X-Jinqiu-Idempotency-Key: every due reminder arrives, none is lost, none doubled.

Delivery is at-least-once by design (notifications/delivery.py): a process killed between
sending a batch and recording it leaves that batch leased, and what it had sent is sent again,
with the same key and Message-ID, once the lease runs out. So a duplicate is allowed only for a
message the killed process held in flight — at most one batch (deliver_due's `batch`) per
delivery connection of the killed process; they are printed when it happens."""

from __future__ import annotations

import datetime as dt
import inspect
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, insert, select, text

from jinqiu.demo.units import DISTRICTS
from jinqiu.notifications.delivery import deliver_due
from jinqiu.notifications.models import InboxMessage, OutboxMessage
from jinqiu.workflow.campaigns.service import load_campaign
from jinqiu.workflow.cases.models import Case, Student, Worker
from jinqiu.workflow.clock import ManualClock
from jinqiu.workflow.config import Settings
from jinqiu.workflow.db import transaction
from jinqiu.workflow.deadlines.models import ReminderLedger
from jinqiu.workflow.units.models import Unit
from tests.factories import BY_LEVEL, ROOT, weihai_file
from tests.notifications.test_smtp_delivery import SmtpServer

pytestmark = pytest.mark.postgres

ledger_t = ReminderLedger.__table__  # type: ignore[attr-defined]
outbox_t = OutboxMessage.__table__  # type: ignore[attr-defined]
inbox_t = InboxMessage.__table__  # type: ignore[attr-defined]
unit_t = Unit.__table__  # type: ignore[attr-defined]
case_t = Case.__table__  # type: ignore[attr-defined]
worker_t = Worker.__table__  # type: ignore[attr-defined]
student_t = Student.__table__  # type: ignore[attr-defined]

JINQIU = Path(sys.executable).parent / "jinqiu"
UNITS = 1100
SURVEY_DISTRICTS = DISTRICTS[:4]
T_MINUS_3 = "2024-07-26T08:00:00+08:00"  # Fri: T-3 for Weihai's Wed 7/31
AFTER_LEASE = "2024-07-26T08:05:00+08:00"  # the delivery lease is 2 minutes
TIMEOUT = 150
VICTIM = "jinqiu-victim"
BATCH = inspect.signature(deliver_due).parameters["batch"].default  # what `jinqiu tick` claims
CONNECTIONS = Settings().delivery_connections  # each holds its own batch


def seed(engine: Engine, units: int = UNITS) -> list[str]:
    """The city, four districts and `units` grassroots unions under them, each with one or two
    cases in survey; the Weihai 2024 campaign. Bulk inserts: no engine, no audit."""
    clock = ManualClock(dt.datetime(2024, 7, 20, 9))
    now = clock.now()
    with transaction(engine) as conn:
        conn.execute(
            insert(unit_t).values(
                code="WH",
                name="威海市总工会",
                level="city",
                path="/WH/",
                contact_email="wh@example.org",
            )
        )
        city = conn.execute(select(unit_t.c.id).where(unit_t.c.code == "WH")).scalar_one()
        district_ids = {}
        for code, name, level in DISTRICTS:
            district_ids[code] = conn.execute(
                insert(unit_t)
                .values(
                    code=code,
                    name=name,
                    level=level.value,
                    parent_id=city,
                    path=f"/WH/{code}/",
                    contact_name=f"{name}帮扶中心",
                    contact_email=f"{code.lower()}@example.org",
                )
                .returning(unit_t.c.id)
            ).scalar_one()
        codes = []
        rows = []
        for i in range(units):
            d_code, d_name, _level = SURVEY_DISTRICTS[i % len(SURVEY_DISTRICTS)]
            code = f"{d_code}-{i:04d}"
            codes.append(code)
            rows.append(
                {
                    "code": code,
                    "name": f"{d_name[:-3]}第{i}基层工会",
                    "level": "grassroots",
                    "parent_id": district_ids[d_code],
                    "path": f"/WH/{d_code}/{code}/",
                    "contact_name": "经办人",
                    "contact_email": f"{code.lower()}@example.org",
                }
            )
        unit_ids = list(
            conn.execute(
                insert(unit_t).returning(unit_t.c.id, sort_by_parameter_order=True), rows
            ).scalars()
        )
        campaign = load_campaign(conn, weihai_file(deadlines=BY_LEVEL), clock)
        owners = [u for i, u in enumerate(unit_ids) for _ in range(1 + (i % 3 == 0))]
        n = len(owners)
        workers = list(
            conn.execute(
                insert(worker_t).returning(worker_t.c.id, sort_by_parameter_order=True),
                [
                    {
                        "name": f"职工{k}",
                        "id_number": f"371002197801{k:06d}"[:18],
                        "gender": "男",
                        "birth_date": dt.date(1978, 1, 1),
                        "archive_status": "deep",
                        "archived_on": dt.date(2024, 3, 1),
                        "categories": [],
                    }
                    for k in range(n)
                ],
            ).scalars()
        )
        students = list(
            conn.execute(
                insert(student_t).returning(student_t.c.id, sort_by_parameter_order=True),
                [
                    {
                        "name": f"学生{k}",
                        "id_number": f"371002200601{k:06d}"[:18],
                        "gender": "女",
                        "birth_date": dt.date(2006, 1, 1),
                        "education_level": "undergraduate",
                    }
                    for k in range(n)
                ],
            ).scalars()
        )
        conn.execute(
            insert(case_t),
            [
                {
                    "campaign_id": campaign,
                    "unit_id": owners[k],
                    "worker_id": workers[k],
                    "student_id": students[k],
                    "student_id_number": f"371002200601{k:06d}"[:18],
                    "state": "survey",
                    "version": 1,
                    "approval_step": 0,
                    "objection_open": False,
                    "payment_failures": 0,
                    "audit_seq": 0,
                    "audit_head": "",
                    "created_by": "seed",
                    "created_at": now,
                    "updated_at": now,
                }
                for k in range(n)
            ],
        )
    return codes


@dataclass
class Tick:
    proc: subprocess.Popen[str]

    @property
    def workers(self) -> list[str]:
        """The outbox's claimed_by values of this process: its delivery connections' lease
        holders (notifications.delivery: worker_name, then /1, /2, … per connection)."""
        name = f"{socket.gethostname()}:{self.proc.pid}"
        return [name] if CONNECTIONS == 1 else [f"{name}/{i}" for i in range(1, CONNECTIONS + 1)]

    def finish(self) -> str:
        out, err = self.proc.communicate(timeout=TIMEOUT)
        assert self.proc.returncode == 0, (
            f"jinqiu tick exited {self.proc.returncode}:\n{out}\n{err}"
        )
        return out


def start_tick(env: dict[str, str], now: str, name: str = "jinqiu-tick") -> Tick:
    env = {**env, "PGAPPNAME": name}  # libpq: pg_stat_activity.application_name
    proc = subprocess.Popen(
        [str(JINQIU), "tick", "--now", now],
        cwd=ROOT,
        env=env,
        text=True,
        encoding="utf-8",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    return Tick(proc)


def environment(postgres_schema_url: tuple[str, str], smtp: SmtpServer) -> dict[str, str]:
    """The schema in the URL itself, as psycopg passes `options` on to the server."""
    url, schema = postgres_schema_url
    joiner = "&" if "?" in url else "?"
    env = {key: value for key, value in os.environ.items() if key != "PGOPTIONS"}
    return {
        **env,
        "JINQIU_DATABASE_URL": f"{url}{joiner}options=-csearch_path%3D{schema}",
        "JINQIU_SMTP_HOST": "127.0.0.1",
        "JINQIU_SMTP_PORT": str(smtp.port),
        "JINQIU_SMTP_FROM": "jinqiu@weihai.example.org",
        "JINQIU_BASE_URL": "https://jinqiu.example.org",
        "PYTHONUTF8": "1",
        # Chunks of 500 (PostgreSQL's default is 2,000): the 1,100 reminders take three
        # transactions, so the victim can be killed with one committed and one open.
        "JINQIU_SWEEP_CHUNK": "500",
    }


def count(engine: Engine, table: Any, *where: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one())


def wait_until(
    condition: Callable[[], bool], what: str, ticks: list[Tick], limit: float = 60.0
) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        if all(t.proc.poll() is not None for t in ticks):
            failed = [t.proc.communicate() for t in ticks]
            pytest.fail(f"every jinqiu tick ended before {what}: {failed}")
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.005)


def victim_is(engine: Engine, statement: str) -> bool:
    """The victim has a transaction open whose latest statement starts with `statement`."""
    with engine.connect() as conn:
        return bool(
            conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = :name"
                    " AND xact_start IS NOT NULL AND query ILIKE :statement"
                ),
                {"name": VICTIM, "statement": f"{statement}%"},
            ).scalar_one()
        )


def new_reminders(output: str) -> int:
    line = next(ln for ln in output.splitlines() if ln.strip().startswith("reminders:"))
    return int(line.split(":")[1].split("new")[0])


@pytest.fixture
def smtp() -> Any:
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.mark.parametrize("kill_when", ["sweeping", "delivering"])
def test_two_sweepers_and_one_killed_deliver_every_reminder_exactly_once(
    pg: Engine, postgres_schema_url: tuple[str, str], smtp: SmtpServer, kill_when: str
) -> None:
    codes = seed(pg)
    env = environment(postgres_schema_url, smtp)

    victim = start_tick(env, T_MINUS_3, VICTIM)
    if kill_when == "sweeping":
        # The two sweepers start while the victim has its first chunk open; it is killed inside
        # a later chunk, so it dies with one chunk committed and one not.
        wait_until(lambda: victim_is(pg, "INSERT INTO"), "the victim's first chunk", [victim])
        sweepers = [start_tick(env, T_MINUS_3), start_tick(env, T_MINUS_3)]
        wait_until(
            lambda: count(pg, ledger_t) > 0 and victim_is(pg, "INSERT INTO"),
            "the victim inside a later chunk",
            [victim, *sweepers],
        )
    else:  # claiming, sending and marking, with some reminders already delivered
        sweepers = [start_tick(env, T_MINUS_3), start_tick(env, T_MINUS_3)]
        # Delivering: inside a claim or a recording, or holding a leased batch while it sends
        # (a batch's two transactions are a few ms; its sending, most of its time).
        wait_until(
            lambda: (
                count(pg, outbox_t, outbox_t.c.status == "sent") > 0
                and (
                    victim_is(pg, "UPDATE outbox_message")
                    or count(
                        pg,
                        outbox_t,
                        outbox_t.c.claimed_by.in_(victim.workers),
                        outbox_t.c.status == "pending",
                        outbox_t.c.claimed_until.is_not(None),
                    )
                    > 0
                )
            ),
            "the victim delivering",
            [victim, *sweepers],
        )
    assert victim.proc.poll() is None, "the victim finished before it could be killed"
    os.kill(victim.proc.pid, signal.SIGKILL)
    victim.proc.wait(timeout=TIMEOUT)
    assert victim.proc.returncode == -signal.SIGKILL
    at_kill = {
        "ledger": count(pg, ledger_t),
        "sent": count(pg, outbox_t, outbox_t.c.status == "sent"),
    }
    outputs = [s.finish() for s in sweepers]

    with pg.connect() as conn:  # what the dead process still held (its lease runs until 08:02)
        in_flight = {
            r.idempotency_key
            for r in conn.execute(
                select(outbox_t.c.idempotency_key).where(
                    outbox_t.c.claimed_by.in_(victim.workers), outbox_t.c.status == "pending"
                )
            )
        }
        sent_by_victim = count(
            pg, outbox_t, outbox_t.c.claimed_by.in_(victim.workers), outbox_t.c.status == "sent"
        )
    final = start_tick(env, AFTER_LEASE).finish()

    received = smtp.received
    keys = Counter(r.key for r in received)
    duplicates = {k: n for k, n in keys.items() if n > 1}
    new_by = [new_reminders(o) for o in [*outputs, final]]
    print(
        f"\n[exactly-once, kill while {kill_when}] units due {len(codes)}; at kill: "
        f"{at_kill['ledger']} ledger rows, {at_kill['sent']} sent; reminders claimed by the "
        f"two sweepers {new_by[:2]}, by the final tick {new_by[2]}, so by the killed process "
        f"{len(codes) - sum(new_by)}; killed process sent {sent_by_victim} and held "
        f"{len(in_flight)} in flight; SMTP received {len(received)}, distinct keys {len(keys)}, "
        f"lost {len(codes) - len(keys)}, duplicated keys {len(duplicates)} "
        f"(extra copies {sum(duplicates.values()) - len(duplicates)})"
    )

    expected = {f"reminder:1:{uid}:before:3:email" for uid in unit_ids(pg, codes)}
    ledger = count(pg, ledger_t)
    outbox = count(pg, outbox_t)
    assert ledger == outbox == count(pg, inbox_t) == len(keys) == len(codes)
    assert set(keys) == expected  # none lost, nothing else
    assert count(pg, outbox_t, outbox_t.c.status == "sent") == len(codes)
    assert count(pg, ledger_t, ledger_t.c.kind == "before", ledger_t.c.occurrence == 3) == ledger
    # At-least-once window: only a message the killed process had in flight may arrive twice.
    assert set(duplicates) <= in_flight
    assert all(n == 2 for n in duplicates.values())
    assert len(in_flight) <= BATCH * CONNECTIONS  # what one claim per connection leases
    code_of = unit_codes(pg)
    for r in received:  # each to its own unit
        assert r.rcpt_tos == [f"{code_of[int(r.key.split(':')[2])].lower()}@example.org"]


def unit_ids(engine: Engine, codes: list[str]) -> list[int]:
    with engine.connect() as conn:
        return list(conn.execute(select(unit_t.c.id).where(unit_t.c.code.in_(codes))).scalars())


def unit_codes(engine: Engine) -> dict[int, str]:
    with engine.connect() as conn:
        return {r.id: r.code for r in conn.execute(select(unit_t.c.id, unit_t.c.code))}
