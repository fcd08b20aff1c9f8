"""Webhook endpoints and their deliveries."""

from typing import Any

from google.protobuf.field_mask_pb2 import FieldMask

from billing.invoicing.v1 import invoicing_pb2 as pb
from gateway import responses as r
from gateway.backends import to_json
from gateway.routes import Limit, Merchant, StartingAfter, merchant_router, page
from gateway.schemas import WebhookEndpointCreate, WebhookEndpointUpdate

router = merchant_router("webhook endpoints")


@router.post("/webhook-endpoints", **r.documented(r.WebhookEndpoint, 409))
async def create_webhook_endpoint(merchant: Merchant, payload: WebhookEndpointCreate) -> Any:
    """The answer carries the signing secret, shown this once."""

    async def create() -> dict[str, Any]:
        endpoint = pb.WebhookEndpoint(
            url=payload.url, event_types=payload.event_types, description=payload.description
        )
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


@router.post("/webhook-endpoints/{endpoint_id}", **r.documented(r.WebhookEndpoint, 404, 409))
async def update_webhook_endpoint(
    merchant: Merchant, endpoint_id: str, payload: WebhookEndpointUpdate
) -> Any:
    """Changes the fields sent (url, eventTypes, description), each checked as on creation."""
    sent = payload.model_dump(exclude_unset=True)

    async def update() -> dict[str, Any]:
        request = pb.UpdateWebhookEndpointRequest(
            endpoint=pb.WebhookEndpoint(id=endpoint_id, **sent),
            update_mask=FieldMask(paths=sorted(sent)),
        )
        stub = merchant.gateway.backends.invoicing
        return to_json(await merchant.call(stub.UpdateWebhookEndpoint, request))

    return await merchant.created(update)


@router.post(
    "/webhook-endpoints/{endpoint_id}/disable", **r.documented(r.WebhookEndpoint, 404, 409)
)
async def disable_webhook_endpoint(merchant: Merchant, endpoint_id: str) -> Any:
    """It is sent nothing until enabled again; its pending deliveries fail (retry them)."""
    stub = merchant.gateway.backends.invoicing
    request = pb.DisableWebhookEndpointRequest(id=endpoint_id)
    return await merchant.created(lambda: merchant.answer(stub.DisableWebhookEndpoint, request))


@router.post("/webhook-endpoints/{endpoint_id}/enable", **r.documented(r.WebhookEndpoint, 404, 409))
async def enable_webhook_endpoint(merchant: Merchant, endpoint_id: str) -> Any:
    stub = merchant.gateway.backends.invoicing
    request = pb.EnableWebhookEndpointRequest(id=endpoint_id)
    return await merchant.created(lambda: merchant.answer(stub.EnableWebhookEndpoint, request))


@router.delete("/webhook-endpoints/{endpoint_id}", **r.documented(r.WebhookEndpointDeleted, 404))
async def delete_webhook_endpoint(merchant: Merchant, endpoint_id: str) -> Any:
    """It is sent nothing more and found no more."""
    stub = merchant.gateway.backends.invoicing
    await merchant.call(stub.DeleteWebhookEndpoint, pb.DeleteWebhookEndpointRequest(id=endpoint_id))
    return {"id": endpoint_id, "deleted": True}


@router.post(
    "/webhook-endpoints/{endpoint_id}/roll-secret", **r.documented(r.WebhookEndpoint, 404, 409)
)
async def roll_webhook_endpoint_secret(merchant: Merchant, endpoint_id: str) -> Any:
    """A new `secret`, shown this once. Until `previousSecretExpireTime` (24 hours) the old
    secret signs every delivery too: webhook-signature carries both signatures."""
    stub = merchant.gateway.backends.invoicing
    request = pb.RollWebhookEndpointSecretRequest(id=endpoint_id)
    return await merchant.created(lambda: merchant.answer(stub.RollWebhookEndpointSecret, request))


@router.post("/webhook-endpoints/{endpoint_id}/test", **r.documented(r.WebhookDelivery, 404, 409))
async def send_test_webhook_event(merchant: Merchant, endpoint_id: str) -> Any:
    """Sends a `webhook_endpoint.test` event to this endpoint only; answers its delivery."""
    stub = merchant.gateway.backends.invoicing
    request = pb.SendTestWebhookEventRequest(endpoint_id=endpoint_id)
    return await merchant.created(lambda: merchant.answer(stub.SendTestWebhookEvent, request))


@router.post(
    "/webhook-endpoints/{endpoint_id}/deliveries/{delivery_id}/retry",
    **r.documented(r.WebhookDelivery, 404, 409),
)
async def retry_webhook_delivery(merchant: Merchant, endpoint_id: str, delivery_id: str) -> Any:
    """Sends the delivery again now, whatever its status (409 while an attempt is in flight or
    the endpoint is disabled)."""
    stub = merchant.gateway.backends.invoicing
    request = pb.RetryWebhookDeliveryRequest(endpoint_id=endpoint_id, delivery_id=delivery_id)
    return await merchant.created(lambda: merchant.answer(stub.RetryWebhookDelivery, request))
