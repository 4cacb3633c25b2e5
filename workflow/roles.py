"""Who may do what: the one permission table. Printed in the README (`jinqiu roles`).

阳光就业 and 勤工俭学 (`employment.record`): the clerk who keeps the families' files registers
graduates, records help, moves records on and keeps work-study posts; the manager may do all a
clerk does. Every other role reads them (any read is scoped to the caller's subtree)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

from jinqiu.states import Permission
from jinqiu.workflow.users.models import Role


class Grant(StrEnum):
    """Permissions beyond firing events."""

    CREATE_CASE = "case.create"
    OVERRIDE_GUARD = "case.override"  # with a reason, audited
    READ_PII = "pii.read"  # full identity and bank-card numbers, each read audited
    READ_AUDIT = "audit.read"
    MANAGE_CAMPAIGN = "campaign.manage"
    MANAGE_UNITS = "unit.manage"
    MANAGE_USERS = "user.manage"
    SUBMIT_REPORT = "report.submit"
    READ_EVIDENCE = "evidence.read"  # a case's evidence bundle (api/http/forms.py)


PermissionName = Permission | Grant

ROLE_PERMISSIONS: dict[Role, frozenset[PermissionName]] = {
    Role.CLERK: frozenset(
        {
            Grant.CREATE_CASE,
            Permission.SUBMIT_CASE,
            Permission.WITHDRAW_CASE,
            Permission.FOLLOW_UP_CASE,
            Permission.RECORD_EMPLOYMENT,
        }
    ),
    Role.REVIEWER: frozenset({Permission.REVIEW_CASE, Permission.FOLLOW_UP_CASE}),
    # An approving union may also send a case back or reject it at its level.
    Role.APPROVER: frozenset({Permission.APPROVE_CASE, Permission.REVIEW_CASE}),
    Role.FINANCE: frozenset({Permission.PAY_CASE, Grant.READ_PII}),
    Role.MANAGER: frozenset(
        {
            Grant.CREATE_CASE,
            Grant.OVERRIDE_GUARD,
            Grant.MANAGE_CAMPAIGN,
            Grant.SUBMIT_REPORT,
            Grant.READ_PII,
            Grant.READ_EVIDENCE,
            Permission.SUBMIT_CASE,
            Permission.WITHDRAW_CASE,
            Permission.REVIEW_CASE,
            Permission.FOLLOW_UP_CASE,
            Permission.RECORD_EMPLOYMENT,
        }
    ),
    Role.AUDITOR: frozenset({Grant.READ_AUDIT, Grant.READ_PII, Grant.READ_EVIDENCE}),
    Role.ADMIN: frozenset({Grant.MANAGE_UNITS, Grant.MANAGE_USERS, Grant.MANAGE_CAMPAIGN}),
    Role.SCHEDULER: frozenset({Permission.RUN_SCHEDULE}),
}


def permissions_of(roles: tuple[str, ...] | list[str]) -> frozenset[PermissionName]:
    return _permissions_of(tuple(roles))


@lru_cache(maxsize=256)  # asked for every transition an actor fires (a bulk: per item)
def _permissions_of(roles: tuple[str, ...]) -> frozenset[PermissionName]:
    granted: set[PermissionName] = set()
    for role in roles:
        granted |= ROLE_PERMISSIONS.get(Role(role), frozenset())
    return frozenset(granted)


@dataclass(frozen=True, slots=True)
class Actor:
    """Who fires an event: their name, their unit (code, materialised path, level) and roles."""

    username: str
    unit_code: str | None
    unit_path: str  # "/" for the scheduler: the whole tree
    unit_level: str | None
    roles: tuple[str, ...]

    @property
    def permissions(self) -> frozenset[PermissionName]:
        return permissions_of(self.roles)

    def may(self, permission: str) -> bool:
        """A Permission, a Grant, or the permission a declared transition names (states/)."""
        return permission in self.permissions

    def sees(self, unit_path: str) -> bool:
        return unit_path.startswith(self.unit_path)

    def concerned_by(self, organizer_path: str) -> bool:
        """A campaign concerns the units under its organiser and the organiser's superiors."""
        return self.unit_path.startswith(organizer_path) or organizer_path.startswith(
            self.unit_path
        )


SCHEDULER = Actor(
    username="scheduler", unit_code=None, unit_path="/", unit_level=None, roles=(Role.SCHEDULER,)
)


def permission_table() -> list[tuple[str, list[str]]]:
    return [
        (role.value, sorted(p.value for p in perms)) for role, perms in ROLE_PERMISSIONS.items()
    ]
