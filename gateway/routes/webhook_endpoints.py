"""Webhook endpoints and their deliveries."""

from typing import Any

from billing.invoicing.v1 import invoicing_pb2 as pb
from gateway import responses as r
from gateway.backends import to_json
from gateway.routes import Limit, Merchant, StartingAfter, merchant_router, page
from gateway.schemas import WebhookEndpointCreate

router = merchant_router("webhook endpoints")


@router.post("/webhook-endpoints", **r.documented(r.WebhookEndpoint, 409))
async def create_webhook_endpoint(merchant: Merchant, payload: WebhookEndpointCreate) -> Any:
    """The answer carries the signing secret, shown this once."""

    async def create() -> dict[str, Any]:
        endpoint = pb.WebhookEndpoint(url=payload.url, event_types=payload.event_types)
        stub = merchant.gateway.backends.invoicing
        request = pb.CreateWebhookEndpointRequest(endpoint=endpoint)
        return to_json(await merchant.call(stub.CreateWebhookEndpoint, request))

    return await merchant.created(create)


@router.get("/webhook-endpoints", **r.documented(r.Page[r.WebhookEndpoint]))
async def list_webhook_endpoints(
    merchant: Merchant, limit: Limit = 10, starting_after: StartingAfter = ""
) -> Any:
    stub = merchant.gateway.backends.invoicing
    request = pb.ListWebhookEndpointsRequest(page_size=limit, page_token=starting_after)
    found = await merchant.call(stub.ListWebhookEndpoints, request)
    return page([to_json(e) for e in found.endpoints], found.next_page_token)


@router.get(
    "/webhook-endpoints/{endpoint_id}/deliveries", **r.documented(r.Page[r.WebhookDelivery], 404)
)
async def list_webhook_deliveries(
    merchant: Merchant, endpoint_id: str, limit: Limit = 10, starting_after: StartingAfter = ""
) -> Any:
    stub = merchant.gateway.backends.invoicing
    request = pb.ListWebhookDeliveriesRequest(
        endpoint_id=endpoint_id, page_size=limit, page_token=starting_after
    )
    found = await merchant.call(stub.ListWebhookDeliveries, request)
    return page([to_json(d) for d in found.deliveries], found.next_page_token)
