"""Settlements: the on-chain payments of invoices."""

from typing import Annotated, Any

from fastapi import Query

from billing.settlement.v1 import settlement_pb2 as pb
from gateway import responses as r
from gateway.backends import to_json
from gateway.routes import Limit, Merchant, StartingAfter, merchant_router, page
from gateway.schemas import SettlementCreate

router = merchant_router("settlements")


@router.post("/settlements", **r.documented(r.Settlement, 404, 409))
async def create_settlement(merchant: Merchant, payload: SettlementCreate) -> Any:
    """Records the on-chain payment proof; the answer is PENDING until confirmations, then
    CONFIRMED (the invoice is PAID) or FAILED with a reason. The payee is the merchant's payout
    wallet on record: a `merchantWalletAddress` that differs is refused."""

    async def create() -> dict[str, Any]:
        request = pb.SubmitSettlementRequest(**payload.model_dump())
        stub = merchant.gateway.backends.settlement
        return to_json(await merchant.call(stub.SubmitSettlement, request))

    return await merchant.created(create)


@router.get("/settlements", **r.documented(r.Page[r.Settlement], 404))
async def list_settlements(
    merchant: Merchant,
    invoice_id: Annotated[str, Query(alias="invoiceId", max_length=128)] = "",
    limit: Limit = 10,
    starting_after: StartingAfter = "",
) -> Any:
    stub = merchant.gateway.backends.settlement
    request = pb.ListSettlementsRequest(
        invoice_id=invoice_id, page_size=limit, page_token=starting_after
    )
    found = await merchant.call(stub.ListSettlements, request)
    return page([to_json(s) for s in found.settlements], found.next_page_token)


@router.get("/settlements/{settlement_id}", **r.documented(r.Settlement, 404))
async def get_settlement(merchant: Merchant, settlement_id: str) -> Any:
    stub = merchant.gateway.backends.settlement
    return to_json(
        await merchant.call(stub.GetSettlement, pb.GetSettlementRequest(id=settlement_id))
    )
