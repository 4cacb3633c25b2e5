"""The attachment table and the document kinds, where the parts below use them: the kinds in
campaigns/documents.py (a campaign's application types name the documents they require), the
table in cases/models.py (submit's guard reads which kinds a case has)."""

from __future__ import annotations

from jinqiu.workflow.campaigns.documents import DOCUMENT_LABELS, DocumentKind
from jinqiu.workflow.cases.models import Attachment

__all__ = ["DOCUMENT_LABELS", "Attachment", "DocumentKind"]
