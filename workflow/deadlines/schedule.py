"""When reminders fall due, in working days (pure: no database).

For a deadline due on D with reminders {before: [3, 1, 0], overdue_every: 1, escalate_after: 2}:
- `before` n: on the n-th working day before D (n = 0 is D itself), while D has not passed;
- `overdue` k: on each k-th working day after D (k = every, 2·every, …);
- `escalation` k: with each overdue notice from `escalate_after` working days on, to the parent.
A sweep that runs late (downtime) sends only the latest occurrence of each kind: a week-old
"3 days left" is noise, and the ledger keeps any occurrence from going out twice.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

from jinqiu.workflow.calendar import WorkingCalendar


class ReminderKind(StrEnum):
    BEFORE = "before"
    OVERDUE = "overdue"
    ESCALATION = "escalation"


@dataclass(frozen=True, slots=True)
class Occurrence:
    kind: ReminderKind
    occurrence: int  # working days before due (before) or overdue (overdue, escalation)


def due_occurrences(
    today: dt.date,
    due: dt.date,
    *,
    before_working_days: list[int],
    overdue_every: int,
    escalate_after: int,
    calendar: WorkingCalendar,
) -> list[Occurrence]:
    if today <= due:
        started = [n for n in before_working_days if calendar.working_days_before(due, n) <= today]
        return [Occurrence(ReminderKind.BEFORE, min(started))] if started else []
    overdue_days = calendar.working_days_between(due, today)
    step = (overdue_days // overdue_every) * overdue_every
    if step < 1:
        return []
    out = [Occurrence(ReminderKind.OVERDUE, step)]
    if step >= escalate_after:
        out.append(Occurrence(ReminderKind.ESCALATION, step))
    return out
