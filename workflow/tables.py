"""Every table, imported once so `SQLModel.metadata` (and Alembic) sees them all."""

from sqlmodel import SQLModel

from notifications.models import InboxMessage, OutboxMessage
from workflow.audit.models import AuditEntry, PiiAccess
from workflow.campaigns.models import (
    Campaign,
    CampaignDeadline,
    CampaignPhase,
    CampaignStateDeadline,
    FundSource,
)
from workflow.cases.models import Case, Student, Worker
from workflow.dashboard.counters import CaseCount
from workflow.deadlines.failures import SweepError
from workflow.deadlines.models import ReminderLedger, ReportSubmission
from workflow.units.models import Unit
from workflow.users.models import LoginFailure, User

metadata = SQLModel.metadata

__all__ = [
    "AuditEntry",
    "Campaign",
    "CampaignDeadline",
    "CampaignPhase",
    "CampaignStateDeadline",
    "Case",
    "CaseCount",
    "FundSource",
    "InboxMessage",
    "LoginFailure",
    "OutboxMessage",
    "PiiAccess",
    "ReminderLedger",
    "ReportSubmission",
    "Student",
    "SweepError",
    "Unit",
    "User",
    "Worker",
    "metadata",
]
