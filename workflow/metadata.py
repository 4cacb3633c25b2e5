"""Every table, imported once so `SQLModel.metadata` (and Alembic) sees them all."""

from sqlmodel import SQLModel

from jinqiu.notifications.models import InboxMessage, InboxRead, OutboxMessage
from jinqiu.workflow.attachments.models import Attachment
from jinqiu.workflow.audit.models import AuditEntry, PiiAccess
from jinqiu.workflow.campaigns.models import (
    Campaign,
    CampaignDeadline,
    CampaignPhase,
    CampaignStateDeadline,
    FundSource,
)
from jinqiu.workflow.cases.counters import unit_case_count
from jinqiu.workflow.cases.models import Case, Student, Worker
from jinqiu.workflow.deadlines.models import ReminderLedger
from jinqiu.workflow.deadlines.reminder_counts import ReminderCount
from jinqiu.workflow.donors.models import Donor, UnitFund
from jinqiu.workflow.employment.models import (
    EmploymentHelp,
    EmploymentRecord,
    EmploymentRecordAudit,
    WorkStudyParticipant,
    WorkStudyPost,
)
from jinqiu.workflow.failures import SweepError
from jinqiu.workflow.followup.models import FollowUpVisit
from jinqiu.workflow.payments.models import PaymentBatch, PaymentBatchAudit, PaymentBatchItem
from jinqiu.workflow.publicity_lists.models import (
    Objection,
    PublicityList,
    PublicityListAudit,
    PublicityListMember,
)
from jinqiu.workflow.statistics.models import ReportSubmission
from jinqiu.workflow.statistics.report_counts import ReportCount
from jinqiu.workflow.survey.models import SurveyEntry, SurveyImport
from jinqiu.workflow.units.counts import UnitCount
from jinqiu.workflow.units.models import Unit
from jinqiu.workflow.users.models import LoginFailure, User

metadata = SQLModel.metadata

__all__ = [
    "Attachment",
    "AuditEntry",
    "Campaign",
    "CampaignDeadline",
    "CampaignPhase",
    "CampaignStateDeadline",
    "Case",
    "Donor",
    "EmploymentHelp",
    "EmploymentRecord",
    "EmploymentRecordAudit",
    "FollowUpVisit",
    "FundSource",
    "InboxMessage",
    "InboxRead",
    "LoginFailure",
    "Objection",
    "OutboxMessage",
    "PaymentBatch",
    "PaymentBatchAudit",
    "PaymentBatchItem",
    "PiiAccess",
    "PublicityList",
    "PublicityListAudit",
    "PublicityListMember",
    "ReminderCount",
    "ReminderLedger",
    "ReportCount",
    "ReportSubmission",
    "Student",
    "SurveyEntry",
    "SurveyImport",
    "SweepError",
    "Unit",
    "UnitCount",
    "UnitFund",
    "User",
    "WorkStudyParticipant",
    "WorkStudyPost",
    "Worker",
    "metadata",
    "unit_case_count",
]
