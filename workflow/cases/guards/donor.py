"""A donor fund pays only the cases its donor meant it for (Bozhou: "社会各界捐款资金可按照捐赠方
意愿确定资金使用对象和标准"): the final approval that chooses one lists every reason a case falls
outside the intent."""

from __future__ import annotations

from jinqiu.workflow.cases.aid import AidDecision
from jinqiu.workflow.cases.facts import GuardContext
from jinqiu.workflow.donors.intent import is_donor_fund, mismatches
from jinqiu.workflow.errors import Reason


def donor_intent_matches(ctx: GuardContext) -> list[Reason]:
    source = ctx.data.get("fund_source")
    if not isinstance(source, str) or not is_donor_fund(source):
        return []
    if ctx.donor is None:
        return [Reason("donor_fund_unknown", f"本活动没有捐赠方资金 {source}")]
    aid = ctx.aid
    return mismatches(
        ctx.donor,
        education_level=ctx.student.education_level,
        categories=ctx.worker.categories,
        unit_path=ctx.case.unit_path,
        enrollment_year=ctx.student.enrollment_year,
        campaign_year=ctx.campaign.year,
        amount_fen=aid.amount_fen if isinstance(aid, AidDecision) else None,
    )
