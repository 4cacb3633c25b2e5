"""Payment batches (发放批次) and the campaign's funds: build a batch, download the bank's 代发
file, upload the bank's result, put the failures into a retry batch, correct a case's bank card;
the funds reconciled per source. Finance only (the `pay` transition's permission), 403 first."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, File, Query, Request, Response, UploadFile
from pydantic import BaseModel, Field

from jinqiu.api.deps import (
    BatchInScope,
    CampaignInScope,
    Conn,
    CurrentActor,
    ServicesDep,
    api_router,
    campaign_in_scope,
    case_in_scope,
    declare_writes,
    in_handler,
    require,
)
from jinqiu.api.errors import ERROR_RESPONSES, ErrorBody
from jinqiu.api.http.schemas import Strict
from jinqiu.states import Permission
from jinqiu.states.payment_batch import BatchState
from jinqiu.workflow.banks import bank_of
from jinqiu.workflow.cases.schema import BankCard
from jinqiu.workflow.masking import mask_card
from jinqiu.workflow.money import format_yuan
from jinqiu.workflow.payments import bankfile, service
from jinqiu.workflow.payments.models import MAX_BATCH_CASES
from jinqiu.workflow.payments.reconcile import balances
from jinqiu.workflow.validation import DbId

router = api_router(tags=["payments"], responses=ERROR_RESPONSES)
Finance = Depends(require(Permission.PAY_CASE, "只有财务人员可以办理发放"))


class BatchIn(Strict):
    fund_source: str = Field(min_length=1, max_length=32)
    unit: str | None = Field(default=None, min_length=1, max_length=64)
    case_ids: list[DbId] | None = Field(default=None, min_length=1, max_length=MAX_BATCH_CASES)


class Skipped(BaseModel):
    case_id: int
    reasons: list[dict[str, str]]


class BatchOut(BaseModel):
    id: int
    status: BatchState
    case_ids: list[int]
    total: str
    skipped: list[Skipped] = Field(
        default_factory=list, description="cases left out for an invalid bank card, with why"
    )


class BatchRowOut(BaseModel):
    position: int = Field(description="序号")
    case_id: int
    holder: str
    card_number: str = Field(description="masked: the full number is only in the bank file")
    bank_name: str
    amount: str
    outcome: str | None
    failure_reason: str | None


class BatchDetailOut(BaseModel):
    id: int
    status: BatchState
    version: int
    campaign: int
    unit: str
    fund_source: str
    retry_of: int | None
    rows: int
    total: str
    csv_sha256: str | None
    xlsx_sha256: str | None
    result_sha256: str | None
    paid: int | None
    failed: int | None
    items: list[BatchRowOut]


class AppliedOut(BaseModel):
    paid: int
    failed: int


class DonorRef(BaseModel):
    id: int
    name: str


class SourceOut(BaseModel):
    source: str = Field(description="government / donation / union / other, or `donor:<id>`")
    donor: DonorRef | None = Field(default=None, description="a donor's fund: whose")
    budget: str
    free: str
    reserved: str
    paid: str


class FundsOut(BaseModel):
    sources: list[SourceOut]
    reconciled: bool = Field(
        description="every source: budget = free + reserved + paid, and reserved and paid "
        "equal the amounts of its cases waiting for payment and paid"
    )
    problems: dict[str, list[str]]


class CardIn(Strict):
    bank_card_number: BankCard
    bank_card_holder: str | None = Field(default=None, min_length=1, max_length=50)
    version: DbId
    reason: str = Field(min_length=1, max_length=2000, description="why (e.g. the bank's 退票)")


class CardOut(BaseModel):
    id: int
    version: int
    bank_name: str | None


def built_out(built: service.BatchBuilt) -> BatchOut:
    return BatchOut(
        id=built.id,
        status=BatchState(built.state),
        case_ids=built.case_ids,
        total=format_yuan(built.total_fen),
        skipped=[Skipped(**s) for s in built.skipped],
    )


@router.post(
    "/api/campaigns/{campaign_id}/payment-batches",
    status_code=201,
    response_model=BatchOut,
    dependencies=[Finance],
)
def build(
    campaign: Annotated[Any, Depends(in_handler(campaign_in_scope))],
    body: BatchIn,
    actor: CurrentActor,
    svc: ServicesDep,
    conn: Conn,
) -> BatchOut:
    """A draft batch from the campaign's cases waiting for payment from `fund_source`."""
    built = service.build_batch(
        conn,
        campaign_id=campaign.id,
        fund_source=body.fund_source,
        unit_code=body.unit,
        case_ids=body.case_ids,
        actor=actor,
        clock=svc.clock,
    )
    return built_out(built)


@router.get(
    "/api/payment-batches/{batch_id}", response_model=BatchDetailOut, dependencies=[Finance]
)
def read(batch: BatchInScope, conn: Conn) -> BatchDetailOut:
    """The batch and its rows, card numbers masked."""
    return BatchDetailOut(
        id=batch.id,
        status=BatchState(batch.state),
        version=batch.version,
        campaign=batch.campaign_id,
        unit=batch.unit_code,
        fund_source=batch.fund_source,
        retry_of=batch.retry_of,
        rows=batch.rows,
        total=format_yuan(batch.total_fen),
        csv_sha256=batch.csv_sha256,
        xlsx_sha256=batch.xlsx_sha256,
        result_sha256=batch.result_sha256,
        paid=batch.paid,
        failed=batch.failed,
        items=[
            BatchRowOut(
                position=i.position,
                case_id=i.case_id,
                holder=i.holder,
                card_number=mask_card(i.card_number) or "",
                bank_name=i.bank_name,
                amount=format_yuan(i.amount_fen),
                outcome=i.outcome,
                failure_reason=i.failure_reason,
            )
            for i in service.batch_items(conn, batch.id)
        ],
    )


def _writes(request: Request) -> None:
    declare_writes(request, True)  # the download records the export (hash, audit, pii_access)


@router.get(
    "/api/payment-batches/{batch_id}/file",
    dependencies=[Finance, Depends(_writes)],
    response_class=Response,
    responses={200: {"content": {"text/csv": {}, service.MEDIA_TYPES["xlsx"]: {}}}},
)
def download(
    batch: BatchInScope,
    actor: CurrentActor,
    svc: ServicesDep,
    conn: Conn,
    format: Annotated[str, Query(pattern=r"^(csv|xlsx)$")] = "csv",
) -> Response:
    """The bank's 代发 file (CSV in GB18030, or .xlsx); the batch becomes exported and keeps
    the file's SHA-256 (also in the `X-Content-SHA256` header)."""
    file = service.export_file(
        conn,
        batch.id,
        format,
        actor=actor,
        clock=svc.clock,
        purpose="GET /api/payment-batches/{id}/file",
    )
    return Response(
        file.content,
        media_type=file.media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{file.filename}"',
            "X-Content-SHA256": file.sha256,
        },
    )


@router.post(
    "/api/payment-batches/{batch_id}/result",
    response_model=AppliedOut,
    dependencies=[Finance],
    responses={413: {"model": ErrorBody, "description": "回盘文件超过 5 MB"}},
)
async def upload_result(
    batch: BatchInScope,
    actor: CurrentActor,
    svc: ServicesDep,
    conn: Conn,
    file: Annotated[UploadFile, File(description="the bank's result: .csv or .xlsx, ≤ 5 MB")],
) -> AppliedOut:
    """Validates the bank's result file whole, then applies it: paid cases to follow-up, failed
    ones stay payable. The same file again answers what it did, applied once."""
    content = await file.read(bankfile.MAX_RESULT_BYTES + 1)
    applied = service.import_result(
        conn, batch.id, content, file.filename or "", actor=actor, clock=svc.clock
    )
    return AppliedOut(paid=applied.paid, failed=applied.failed)


@router.post(
    "/api/payment-batches/{batch_id}/retry",
    status_code=201,
    response_model=BatchOut,
    dependencies=[Finance],
)
def retry(batch: BatchInScope, actor: CurrentActor, svc: ServicesDep, conn: Conn) -> BatchOut:
    """A new batch of the failed rows' cases (cards corrected); the failed batch closes."""
    return built_out(service.retry_batch(conn, batch.id, actor=actor, clock=svc.clock))


@router.get("/api/campaigns/{campaign_id}/funds", response_model=FundsOut)
def funds(campaign: CampaignInScope, conn: Conn) -> FundsOut:
    """Per fund source: budget, free, reserved and paid money, reconciled with the cases."""
    found = balances(conn, campaign.id)
    return FundsOut(
        sources=[
            SourceOut(
                source=b.source,
                donor=None
                if b.donor_id is None
                else DonorRef(id=b.donor_id, name=b.donor_name or ""),
                budget=format_yuan(b.budget_fen),
                free=format_yuan(b.free_fen),
                reserved=format_yuan(b.reserved_fen),
                paid=format_yuan(b.paid_fen),
            )
            for b in found
        ],
        reconciled=not any(b.problems for b in found),
        problems={b.source: b.problems for b in found if b.problems},
    )


@router.put("/api/cases/{case_id}/bank-card", response_model=CardOut, dependencies=[Finance])
def correct_card(
    case_id: Annotated[int, Depends(in_handler(case_in_scope))],
    body: CardIn,
    actor: CurrentActor,
    svc: ServicesDep,
    conn: Conn,
) -> CardOut:
    """Corrects the bank card of a case waiting for payment (after a 退票): checked in full,
    an audited amendment on the case's chain."""
    version = service.correct_bank_card(
        conn,
        case_id,
        card_number=body.bank_card_number,
        holder=body.bank_card_holder,
        reason=body.reason,
        expected_version=body.version,
        actor=actor,
        clock=svc.clock,
    )
    return CardOut(id=case_id, version=version, bank_name=bank_of(body.bank_card_number))
