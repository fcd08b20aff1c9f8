"""Settlements and webhook endpoints."""

from typing import Annotated, Any

from fastapi import APIRouter, Query

from billing.invoicing.v1 import invoicing_pb2 as ipb
from billing.settlement.v1 import settlement_pb2 as pb
from gateway import responses as r
from gateway.backends import to_json
from gateway.openapi_bodies import body
from gateway.routes import Limit, Merchant, StartingAfter, page
from gateway.schemas import SettlementCreate, WebhookEndpointCreate

router = APIRouter(prefix="/api/v1", tags=["payments"])


@router.post(
    "/settlements", openapi_extra=body(SettlementCreate), **r.documented(r.Settlement, 404, 409)
)
async def create_settlement(merchant: Merchant) -> Any:
    """Records the on-chain payment proof; the answer is PENDING until confirmations, then
    CONFIRMED (the invoice is PAID) or FAILED with a reason. The payee is the merchant's payout
    wallet on record: a `merchantWalletAddress` that differs is refused."""
    payload = merchant.parse(SettlementCreate)

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


@router.get("/payout-wallet", **r.documented(r.PayoutWallet, 404))
async def get_payout_wallet(merchant: Merchant) -> Any:
    """The wallet this merchant is paid in: every settlement must pay it. The operator sets it
    (`python -m gateway set-wallet`); no API key can change it."""
    stub = merchant.gateway.backends.settlement
    return to_json(await merchant.call(stub.GetPayoutWallet, pb.GetPayoutWalletRequest()))


@router.post(
    "/webhook-endpoints",
    openapi_extra=body(WebhookEndpointCreate),
    **r.documented(r.WebhookEndpoint, 409),
)
async def create_webhook_endpoint(merchant: Merchant) -> Any:
    """The answer carries the signing secret, shown this once."""
    payload = merchant.parse(WebhookEndpointCreate)

    async def create() -> dict[str, Any]:
        endpoint = ipb.WebhookEndpoint(url=payload.url, event_types=payload.event_types)
        stub = merchant.gateway.backends.invoicing
        request = ipb.CreateWebhookEndpointRequest(endpoint=endpoint)
        return to_json(await merchant.call(stub.CreateWebhookEndpoint, request))

    return await merchant.created(create)


@router.get("/webhook-endpoints", **r.documented(r.Page[r.WebhookEndpoint]))
async def list_webhook_endpoints(
    merchant: Merchant, limit: Limit = 10, starting_after: StartingAfter = ""
) -> Any:
    stub = merchant.gateway.backends.invoicing
    request = ipb.ListWebhookEndpointsRequest(page_size=limit, page_token=starting_after)
    found = await merchant.call(stub.ListWebhookEndpoints, request)
    return page([to_json(e) for e in found.endpoints], found.next_page_token)


@router.get(
    "/webhook-endpoints/{endpoint_id}/deliveries", **r.documented(r.Page[r.WebhookDelivery], 404)
)
async def list_webhook_deliveries(
    merchant: Merchant, endpoint_id: str, limit: Limit = 10, starting_after: StartingAfter = ""
) -> Any:
    stub = merchant.gateway.backends.invoicing
    request = ipb.ListWebhookDeliveriesRequest(
        endpoint_id=endpoint_id, page_size=limit, page_token=starting_after
    )
    found = await merchant.call(stub.ListWebhookDeliveries, request)
    return page([to_json(d) for d in found.deliveries], found.next_page_token)
