"""A case submitted with its application complete: its campaign's application type chosen, the
form's required fields filled, and every document that type requires attached (Bozhou 四.2
"上传…", Dalian 五.1 "申报材料（…录取通知书、高考成绩通知单复印件…）"). Missing ones are named."""

from __future__ import annotations

from jinqiu.workflow.cases.facts import GuardContext
from jinqiu.workflow.errors import Reason


def application_complete(ctx: GuardContext) -> list[Reason]:
    types = ctx.campaign.application_types
    if not types:
        return []  # the campaign declares no application types: nothing to require
    code = ctx.case.application_type
    kind = None if code is None else types.get(code)
    if kind is None:
        named = "、".join(t.label for t in types.values())
        return [Reason("application_type_missing", f"未选择申请类型（{named}）")]
    reasons = []
    unfilled = [
        f.label for f in kind.fields if f.required and ctx.case.form.get(f.key) in (None, "")
    ]
    if unfilled:
        reasons.append(
            Reason("form_incomplete", f"{kind.label}申请表未填写：{'、'.join(unfilled)}")
        )
    missing = [d.label for d in kind.documents if d.kind not in ctx.case.attached_kinds]
    if missing:
        reasons.append(
            Reason("documents_missing", f"{kind.label}缺少申报材料：{'、'.join(missing)}")
        )
    return reasons
