"""`python -m bench delivery [--db URL] [--messages N] [--batch N] [--old N]`: outbox e-mails
delivered by `notifications.delivery.deliver_due` to a local SMTP server, in messages/s, against
the same messages sent with bare smtplib over one connection (same run, same server).

The world: `--messages` reminder e-mails (default 5,000) rendered from the sweep's own templates
(text + HTML; before / overdue / escalation, 0–6 pending states, short and long unit names:
2.7 to 4.9 KB on the wire), enqueued due now. The server is aiosmtpd in a process of its own
(`bench/smtp_sink.py`), so its CPU is not counted as ours (it is reported: `sink_cpu_ms_each`);
it parses only the headers.

Timed (wall clock, and this process's CPU time), in this order:
- `bare`: the outbox rows, read beforehand, as the same bytes deliver_due sends
  (`SmtpSender.wire`) with `smtplib.SMTP.sendmail` over `--connections` connections side by
  side (default 2, each a thread with its share of the rows), no database — the transport's
  floor;
- `batched`: `deliver_due` with `--connections` threads, claims of `--batch` (default 100), one
  SMTP connection per batch, outcomes recorded in one transaction per batch;
- on the first `--old` messages again (default 1,000; 0 skips both), re-enqueued under new keys:
  `bare_package`: built by the `email` package (`SmtpSender.build`) and sent with
  `send_message` over one connection, as a plain smtplib program would; and `per_message`:
  the path this replaced, as it was — claims of 100, then per message the package's message
  on a connection of its own and a transaction for its outcome.
Checked: every message arrived (at least once) with its stable Message-ID, the outbox shows
all of them sent (attempts 1), and the batched path used one connection per batch.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import smtplib
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import partial
from typing import Any

from sqlalchemy import Engine, func, select

from bench.common import add_db_option, bench_database, say
from bench.seeding import loadavg
from jinqiu.notifications.channels import SmtpSender
from jinqiu.notifications.delivery import Transaction, deliver_due
from jinqiu.notifications.models import Channel
from jinqiu.notifications.outbox import (
    Outgoing,
    claim_due,
    enqueue,
    mark_sent,
    message_id,
    outbox_t,
)
from jinqiu.notifications.render import environment
from jinqiu.states import MACHINE
from jinqiu.workflow.db import transaction
from jinqiu.workflow.deadlines.schedule import ReminderKind

SENDER = "jinqiu@bench.example.org"
KINDS = [
    (ReminderKind.BEFORE, 3),
    (ReminderKind.BEFORE, 1),
    (ReminderKind.BEFORE, 0),
    (ReminderKind.OVERDUE, 1),
    (ReminderKind.OVERDUE, 3),
    (ReminderKind.ESCALATION, 3),
]
UNIT_NAMES = [
    "第{n}中学工会",
    "威海市环翠区{n}街道总工会",
    "山东省威海市文登区某某集团有限公司第{n}分公司工会委员会",
    "乳山市{n}号机械厂工会",
    "荣成市石岛管理区{n}海洋渔业股份有限公司工会联合会",
]


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench delivery", description=(__doc__ or "").split("\n")[0]
    )
    add_db_option(parser)
    parser.add_argument("--messages", type=int, default=5000, help="e-mails (default 5,000)")
    parser.add_argument("--batch", type=int, default=100, help="deliver_due's batch (100)")
    parser.add_argument(
        "--old", type=int, default=1000, help="messages for the per-message path (1,000; 0: none)"
    )
    parser.add_argument(
        "--connections",
        type=int,
        default=2,
        help="SMTP connections side by side, for deliver_due and bare smtplib alike (2: the "
        "default of JINQIU_DELIVERY_CONNECTIONS)",
    )
    args = parser.parse_args(argv)
    if args.messages < 1 or args.batch < 1 or args.old < 0 or not 1 <= args.connections <= 16:
        parser.error("--messages and --batch at least 1, --old at least 0, --connections 1–16")
    return args


def reminders(prefix: str, n: int) -> list[Outgoing]:
    """`n` reminder e-mails as the sweep renders them (its templates, its kinds of context)."""
    env = environment()
    subject_t, text_t, html_t = (
        env.get_template(name) for name in ("reminder_subject.txt", "reminder.txt", "reminder.html")
    )
    labels = [MACHINE.state_labels[s] for s in MACHINE.open_states]
    out = []
    for i in range(n):
        kind, days = KINDS[i % len(KINDS)]
        name = UNIT_NAMES[i % len(UNIT_NAMES)].format(n=i)
        pending = [
            {"label": labels[j % len(labels)], "count": 1 + (i + 7 * j) % 40} for j in range(i % 7)
        ]
        context: dict[str, Any] = {
            "kind": kind.value,
            "working_days": days,
            "campaign_name": "2024年度金秋助学活动",
            "deadline_title": "报送新增困难职工档案申报材料和《困难职工子女金秋助学情况摸底表》",
            "due": "2024-07-31",
            "unit_name": name,
            "unit_code": f"U{i:06d}",
            "late_unit_name": name,
            "recipient_name": f"{name}联系人",
            "pending": pending,
            "pending_total": sum(p["count"] for p in pending),
            "report_label": "统计表",
            "link": f"https://jinqiu.example.org/queue?campaign=1&unit=U{i:06d}",
        }
        subject = subject_t.render(**context).strip()
        context["subject"] = subject
        out.append(
            Outgoing(
                f"{prefix}:{i}",
                Channel.EMAIL.value,
                f"u{i:06d}@example.org",
                subject,
                text_t.render(**context),
                html_t.render(**context),
                unit_code=f"U{i:06d}",
            )
        )
    return out


class SinkProcess:
    """The SMTP server of bench/smtp_sink.py, in a child process."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.smtp_sink"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None and self.proc.stdin is not None
        self.port = int(json.loads(self.proc.stdout.readline())["port"])
        self.cpu_s = self.cpu_s_before = 0.0
        self.connections = 0  # opened between the last two takes

    def take(self) -> list[tuple[str, str, int]]:
        """What arrived since the last take: (key, Message-ID, client port) each."""
        assert self.proc.stdout is not None and self.proc.stdin is not None
        self.proc.stdin.write("take\n")
        self.proc.stdin.flush()
        answer = json.loads(self.proc.stdout.readline())
        self.cpu_s_before, self.cpu_s = self.cpu_s, float(answer["cpu_s"])
        self.connections = int(answer["connections"])
        return [(k, m, p) for k, m, p in answer["received"]]

    def cpu_ms_each(self, n: int) -> float:
        """The server's CPU time per message between the last two takes."""
        return round((self.cpu_s - self.cpu_s_before) / n * 1e3, 3)

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


@contextmanager
def sink_process() -> Iterator[SinkProcess]:
    sink = SinkProcess()
    try:
        yield sink
    finally:
        sink.close()


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def timed(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def bare_wire(sender: SmtpSender, rows: list[Any], connections: int = 1) -> None:
    """The bytes deliver_due sends, with nothing else: over one connection, or the rows dealt
    round-robin to `connections` threads with one connection each."""
    if connections > 1:
        with ThreadPoolExecutor(max_workers=connections) as pool:
            list(pool.map(lambda i: bare_wire(sender, rows[i::connections]), range(connections)))
        return
    with smtplib.SMTP(sender.host, sender.port, timeout=sender.timeout) as smtp:
        for row in rows:
            raw, built = sender.wire(row)
            if raw is not None:
                smtp.sendmail(sender.sender, [row.recipient], raw)
            else:
                assert built is not None
                smtp.send_message(built)


def bare_package(sender: SmtpSender, rows: list[Any]) -> None:
    """The `email` package's message, over one connection."""
    with smtplib.SMTP(sender.host, sender.port, timeout=sender.timeout) as smtp:
        for row in rows:
            smtp.send_message(sender.build(row))


def per_message(begin: Transaction, sender: SmtpSender, worker: str) -> int:
    """The delivery loop as it was before batching (its success path): claims of 100, then per
    message the package's message on a connection of its own (SmtpSender.send as it was) and
    its outcome in a transaction of its own."""
    sent = 0
    while True:
        with begin() as conn:
            claimed = claim_due(
                conn, worker=worker, now=now(), lease=dt.timedelta(minutes=2), limit=100
            )
        if not claimed:
            return sent
        for message in claimed:
            with smtplib.SMTP(sender.host, sender.port, timeout=sender.timeout) as smtp:
                smtp.send_message(sender.build(message))
            with begin() as conn:
                mark_sent(conn, [message.id], worker=worker, now=now())
            sent += 1


def arrived_well(taken: list[tuple[str, str, int]], keys: list[str]) -> bool:
    """Every key arrived at least once, nothing else did, each with its stable Message-ID."""
    return set(k for k, _m, _p in taken) == set(keys) and all(
        m == message_id(k) for k, m, _p in taken
    )


def all_sent(engine: Engine, prefix: str, n: int) -> bool:
    with engine.connect() as conn:
        counted = conn.execute(
            select(func.count()).where(
                outbox_t.c.idempotency_key.like(f"{prefix}:%"),
                outbox_t.c.status == "sent",
                outbox_t.c.attempts == 1,
            )
        ).scalar_one()
    return int(counted) == n


def rate(n: int, seconds: float) -> float:
    return round(n / seconds, 1) if seconds > 0 else math.inf


def phase(
    sink: SinkProcess, n: int, fn: Callable[[], Any], keys: list[str], what: str
) -> tuple[Any, dict[str, Any], list[tuple[str, str, int]]]:
    """Times `fn` sending `n` messages; what arrived, checked against `keys`."""
    result, wall, cpu = timed(fn)
    taken = sink.take()
    figures = {
        "s": round(wall, 3),
        "per_s": rate(n, wall),
        "cpu_ms_each": round(cpu / n * 1e3, 3),
        "sink_cpu_ms_each": sink.cpu_ms_each(n),
        "connections": sink.connections,
        "ok": arrived_well(taken, keys),
    }
    say(f"{what}: {figures['per_s']}/s, {figures['cpu_ms_each']} ms CPU each")
    return result, figures, taken


def main(argv: list[str]) -> dict[str, Any]:
    args = parse_args(argv)
    load_before = loadavg()
    messages = reminders("bench", args.messages)
    with bench_database(args.db, name="delivery") as db, sink_process() as sink:
        begin = partial(transaction, db.engine)
        sender = SmtpSender("127.0.0.1", sink.port, SENDER)
        keys = [m.idempotency_key for m in messages]
        with begin() as conn:
            enqueue(conn, messages, now())
        with db.engine.connect() as conn:
            rows = list(conn.execute(select(outbox_t).order_by(outbox_t.c.id)))
        sizes = sorted(len(sender.wire(r)[0] or b"") for r in rows)
        direct = sum(1 for r in rows if sender.wire(r)[0] is not None)
        say(f"{args.messages:,} e-mails of {sizes[0]:,}–{sizes[-1]:,} bytes; port {sink.port}")

        _, bare, taken = phase(
            sink,
            args.messages,
            lambda: bare_wire(sender, rows, args.connections),
            keys,
            f"bare smtplib, {args.connections} connection(s)",
        )
        bare["ok"] = bare["ok"] and Counter(k for k, _m, _p in taken) == Counter(keys)
        report, ours, _ = phase(
            sink,
            args.messages,
            lambda: deliver_due(
                begin,
                now,
                {Channel.EMAIL.value: sender},
                batch=args.batch,
                worker="bench",
                connections=args.connections,
            ),
            keys,
            f"deliver_due, batches of {args.batch}, {args.connections} connection(s)",
        )
        ours["ok"] = (
            ours["ok"]
            and report.sent == args.messages
            and (report.retried, report.failed) == (0, 0)
            and all_sent(db.engine, "bench", args.messages)
            and ours["connections"] == math.ceil(args.messages / args.batch)
        )
        result: dict[str, Any] = {
            "bench": "delivery",
            "db": db.kind,
            "messages": args.messages,
            "batch": args.batch,
            "connections": args.connections,
            "bytes": {"min": sizes[0], "median": sizes[len(sizes) // 2], "max": sizes[-1]},
            "direct_bytes": direct,  # messages written by notifications/mime.py
            "batched": ours,
            "bare": bare,
            "ratio": round(ours["s"] / bare["s"], 2),
            "messages_per_s": ours["per_s"],  # the batched path's rate (the contract's key)
        }
        if args.old:
            olds = reminders("old", args.old)
            old_keys = [m.idempotency_key for m in olds]
            with begin() as conn:
                enqueue(conn, olds, now())
            with db.engine.connect() as conn:
                old_rows = list(
                    conn.execute(
                        select(outbox_t)
                        .where(outbox_t.c.idempotency_key.like("old:%"))
                        .order_by(outbox_t.c.id)
                    )
                )
            _, package, _ = phase(
                sink, args.old, lambda: bare_package(sender, old_rows), old_keys, "bare, package"
            )
            sent, before, _ = phase(
                sink,
                args.old,
                lambda: per_message(begin, sender, "bench-old"),
                old_keys,
                "per-message path (before)",
            )
            before["ok"] = (
                before["ok"] and sent == args.old and all_sent(db.engine, "old", args.old)
            )
            result["bare_package"] = package
            result["per_message"] = before
            result["speedup"] = round(ours["per_s"] / before["per_s"], 1)
    checks = [
        result[k]["ok"] for k in ("batched", "bare", "bare_package", "per_message") if k in result
    ]
    result["ok"] = all(checks)
    result["loadavg"] = {"start": load_before, "end": loadavg()}
    return result
