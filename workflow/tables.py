"""Every table, imported once so `SQLModel.metadata` (and Alembic) sees them all."""

from sqlmodel import SQLModel

from workflow.audit.models import AuditEntry
from workflow.campaigns.models import Campaign, CampaignDeadline, CampaignPhase, FundSource
from workflow.cases.models import Case, Student, Worker
from workflow.units.models import Unit
from workflow.users.models import User

metadata = SQLModel.metadata

__all__ = [
    "AuditEntry",
    "Campaign",
    "CampaignDeadline",
    "CampaignPhase",
    "Case",
    "FundSource",
    "Student",
    "Unit",
    "User",
    "Worker",
    "metadata",
]
