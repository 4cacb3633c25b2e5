"""One scheduler tick: a sweep as of `now`, then delivery of the outbox messages that are due.
`jinqiu tick`, the scheduler inside `jinqiu serve` and the demo all run this."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial

from sqlalchemy import Engine

from jinqiu.notifications.channels import Sender, SmtpSender, WebhookSender
from jinqiu.notifications.delivery import DeliveryReport, deliver_due
from jinqiu.notifications.models import Channel
from jinqiu.workflow.clock import Clock
from jinqiu.workflow.config import Settings
from jinqiu.workflow.db import transaction
from jinqiu.workflow.deadlines.sweep import SweepReport, sweep
from jinqiu.workflow.failures import failed, record_failures

log = logging.getLogger("jinqiu.sweep")


@dataclass
class TickReport:
    sweep: SweepReport
    delivery: DeliveryReport


def senders_from(settings: Settings) -> dict[str, Sender]:
    return {
        Channel.EMAIL.value: SmtpSender(settings.smtp_host, settings.smtp_port, settings.smtp_from),
        Channel.WEBHOOK.value: WebhookSender(policy=settings.webhook_policy()),
    }


def tick(
    engine: Engine,
    clock: Clock,
    settings: Settings,
    senders: dict[str, Sender] | None = None,
    *,
    within: str | None = None,
) -> TickReport:
    """`within` (default: the settings' `sweep_within`): sweep only the campaigns organised in
    that unit's subtree."""
    try:
        swept = sweep(
            engine,
            clock,
            base_url=settings.base_url,
            within=within or settings.sweep_within,
            chunk=settings.sweep_chunk,
        )
    except Exception as exc:  # not one campaign's: still deliver what is due, and say so
        swept = SweepReport(now=clock.now(), failures=[failed(None, "", "定时任务", exc)])
        try:
            record_failures(engine, swept.failures, swept.now, settings.base_url)
        except Exception:
            log.exception("sweep: the failure could not be recorded")
    delivered = deliver_due(
        partial(transaction, engine),
        clock.now,
        senders or senders_from(settings),
        connections=settings.delivery_connections,
    )
    return TickReport(sweep=swept, delivery=delivered)
