"""The one place that knows what time it is. Domain code takes a `Clock`, never the wall clock."""

from __future__ import annotations

import datetime as dt
from typing import Protocol
from zoneinfo import ZoneInfo

CHINA = ZoneInfo("Asia/Shanghai")


class Clock(Protocol):
    def now(self) -> dt.datetime:
        """An aware datetime in Asia/Shanghai."""
        ...


class SystemClock:
    def now(self) -> dt.datetime:
        return dt.datetime.now(CHINA)  # clock-ok: the only wall-clock read


class ManualClock:
    """A clock the tests and the demo move by hand."""

    def __init__(self, start: dt.datetime) -> None:
        self._now = as_china(start)

    def now(self) -> dt.datetime:
        return self._now

    def set(self, when: dt.datetime) -> None:
        self._now = as_china(when)

    def advance(self, delta: dt.timedelta) -> None:
        self._now = self._now + delta


def as_china(when: dt.datetime) -> dt.datetime:
    """Aware in Asia/Shanghai; a naive value is taken to be Chinese local time."""
    if when.tzinfo is None:
        return when.replace(tzinfo=CHINA)
    return when.astimezone(CHINA)


def today(clock: Clock) -> dt.date:
    return clock.now().date()
