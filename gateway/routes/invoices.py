"""Invoices: made by the period close, or by the merchant (Retempo's way)."""

from typing import Annotated, Any

from fastapi import Query

from billing.invoicing.v1 import invoicing_pb2 as pb
from gateway import responses as r
from gateway.backends import to_json
from gateway.routes import Limit, Merchant, StartingAfter, merchant_router, page
from gateway.schemas import InvoiceCreate, text
from service_kit.proto_time import to_timestamp

router = merchant_router("invoices")


@router.post("/invoices", **r.documented(r.Invoice, 404, 409))
async def create_invoice(merchant: Merchant, payload: InvoiceCreate) -> Any:
    """Retempo's way: the amount is computed by the merchant; paymentPlanId is required."""

    async def create() -> dict[str, Any]:
        request = pb.CreateInvoiceRequest(
            subscription_id=payload.subscription_id,
            payment_plan_id=payload.payment_plan_id,
            amount=text(payload.amount),
        )
        if payload.period_start is not None:
            request.period_start.CopyFrom(to_timestamp(payload.period_start))
        if payload.period_end is not None:
            request.period_end.CopyFrom(to_timestamp(payload.period_end))
        stub = merchant.gateway.backends.invoicing
        return to_json(await merchant.call(stub.CreateInvoice, request))

    return await merchant.created(create)


@router.get("/invoices", **r.documented(r.Page[r.Invoice], 404))
async def list_invoices(
    merchant: Merchant,
    subscription_id: Annotated[str, Query(alias="subscriptionId", max_length=128)] = "",
    limit: Limit = 10,
    starting_after: StartingAfter = "",
) -> Any:
    stub = merchant.gateway.backends.invoicing
    request = pb.ListInvoicesRequest(
        subscription_id=subscription_id, page_size=limit, page_token=starting_after
    )
    found = await merchant.call(stub.ListInvoices, request)
    return page([to_json(i) for i in found.invoices], found.next_page_token)


@router.get("/invoices/{invoice_id}", **r.documented(r.Invoice, 404))
async def get_invoice(merchant: Merchant, invoice_id: str) -> Any:
    stub = merchant.gateway.backends.invoicing
    return to_json(await merchant.call(stub.GetInvoice, pb.GetInvoiceRequest(id=invoice_id)))
