"""For auditors (audit.read): the record of every full read of personal numbers, within their
subtree. The case's own history stays on the case (GET /api/cases/{id}/history), for whoever
works on it."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import Depends, Query
from pydantic import BaseModel

from jinqiu.api.deps import Conn, QueriedCase, api_router, require
from jinqiu.api.errors import ERROR_RESPONSES
from jinqiu.workflow.cases.pii import access_log
from jinqiu.workflow.roles import Actor, Grant

router = api_router(prefix="/api/audit", tags=["audit"], responses=ERROR_RESPONSES)
Auditor = Annotated[Actor, Depends(require(Grant.READ_AUDIT))]


class PiiAccessOut(BaseModel):
    id: int
    case: int | None  # None: a survey register row without a case (survey_entry_id)
    survey_entry_id: int | None
    actor: str
    actor_unit: str | None
    fields: list[str]
    purpose: str
    at: dt.datetime


@router.get("/pii-access", response_model=list[PiiAccessOut])
def pii_access(
    auditor: Auditor,
    case: QueriedCase,
    conn: Conn,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[PiiAccessOut]:
    """Who was shown which identity or bank-card numbers in full, of which case (or, for a
    family surveyed without a case, of which survey register row), when and through what (`purpose`: the route or page), newest first; `case` narrows it to one case."""
    return [PiiAccessOut(**r) for r in access_log(conn, auditor, case_id=case, limit=limit)]
