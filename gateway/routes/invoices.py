"""Invoices: made by the period close, or by the merchant (Retempo's way)."""

from typing import Annotated, Any

from fastapi import Query

from billing.invoicing.v1 import invoicing_pb2 as pb
from gateway import payment_requests
from gateway import responses as r
from gateway.backends import to_json
from gateway.context import MerchantRequest
from gateway.routes import Limit, Merchant, StartingAfter, merchant_router, page
from gateway.schemas import InvoiceCreate, text
from service_kit.proto_time import to_timestamp

router = merchant_router("invoices")


async def _with_payment_request(
    merchant: MerchantRequest, invoice: pb.Invoice, after_change: bool = False
) -> dict[str, Any]:
    """The invoice's JSON and its `paymentRequest` (null while nothing is payable)."""
    found = to_json(invoice)
    found["paymentRequest"] = await payment_requests.of_invoice(
        merchant.gateway.backends, merchant.merchant.id, invoice, after_change=after_change
    )
    return found


@router.post("/invoices", **r.documented(r.Invoice, 404, 409))
async def create_invoice(merchant: Merchant, payload: InvoiceCreate) -> Any:
    """Retempo's way: the amount is computed by the merchant; paymentPlanId is required.
    `topUp` sells the customer that much of prepaid credits instead, granted once it is paid."""

    async def create() -> dict[str, Any]:
        request = pb.CreateInvoiceRequest(
            subscription_id=payload.subscription_id,
            payment_plan_id=payload.payment_plan_id,
            amount=text(payload.amount),
            draft=payload.draft,
            top_up=payload.top_up,
        )
        if payload.period_start is not None:
            request.period_start.CopyFrom(to_timestamp(payload.period_start))
        if payload.period_end is not None:
            request.period_end.CopyFrom(to_timestamp(payload.period_end))
        stub = merchant.gateway.backends.invoicing
        invoice = await merchant.call(stub.CreateInvoice, request)
        return await _with_payment_request(merchant, invoice, after_change=True)

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
    """With its `paymentRequest`: what to pay, to whom, bound on chain by which reference."""
    stub = merchant.gateway.backends.invoicing
    invoice = await merchant.call(stub.GetInvoice, pb.GetInvoiceRequest(id=invoice_id))
    return await _with_payment_request(merchant, invoice)


@router.get("/invoices/{invoice_id}/lines", **r.documented(r.Page[r.InvoiceLine], 404))
async def list_invoice_lines(merchant: Merchant, invoice_id: str) -> Any:
    """What the invoice bills, line by line (a DRAFT's too, before it is finalized); one page."""
    stub = merchant.gateway.backends.invoicing
    invoice = await merchant.call(stub.GetInvoice, pb.GetInvoiceRequest(id=invoice_id))
    return page([to_json(line) for line in invoice.lines], "")


@router.post("/invoices/{invoice_id}/finalize", **r.documented(r.Invoice, 404, 409))
async def finalize_invoice(merchant: Merchant, invoice_id: str) -> Any:
    """DRAFT -> OPEN: the invoice is owed from now, due after the payment terms."""
    stub = merchant.gateway.backends.invoicing
    request = pb.FinalizeInvoiceRequest(id=invoice_id)

    async def finalize() -> dict[str, Any]:
        invoice = await merchant.call(stub.FinalizeInvoice, request)
        return await _with_payment_request(merchant, invoice, after_change=True)

    return await merchant.created(finalize)


@router.post("/invoices/{invoice_id}/void", **r.documented(r.Invoice, 404, 409))
async def void_invoice(merchant: Merchant, invoice_id: str) -> Any:
    """DRAFT, OPEN or UNCOLLECTIBLE -> VOID: nothing is owed any more."""
    stub = merchant.gateway.backends.invoicing
    request = pb.VoidInvoiceRequest(id=invoice_id)
    return await merchant.created(lambda: merchant.answer(stub.VoidInvoice, request))


@router.post("/invoices/{invoice_id}/mark-uncollectible", **r.documented(r.Invoice, 404, 409))
async def mark_invoice_uncollectible(merchant: Merchant, invoice_id: str) -> Any:
    """OPEN -> UNCOLLECTIBLE: written off, though a payment still makes it PAID."""
    stub = merchant.gateway.backends.invoicing
    request = pb.MarkInvoiceUncollectibleRequest(id=invoice_id)
    return await merchant.created(lambda: merchant.answer(stub.MarkInvoiceUncollectible, request))
