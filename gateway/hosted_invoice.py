"""The hosted invoice page a payment request's `hostedUrl` points to, and the status it follows.

The page shows the merchant, the lines, the amount, the due date and the status; while the
invoice is OPEN, the payee, a QR code of the EIP-681 URI (a plain transfer, proved by its
transaction hash) and "Pay with your wallet" (gateway/static/wallet.js: the wallet signs an
EIP-3009 authorization, the public relay submits it); once PAID, the receipt."""

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from billing.invoicing.v1 import invoicing_pb2 as ipb
from billing.settlement.v1 import settlement_pb2 as spb
from gateway import payment_requests
from gateway.backends import Backends, to_json
from gateway.context import Gateway
from gateway.pages import qr_code, render
from gateway.public_routes import invoice_owner, limit_client

router = APIRouter(
    tags=["invoice page"], include_in_schema=False, dependencies=[Depends(limit_client)]
)
# What the page shows of a settlement, and the status answers.
_SHOWN = ("id", "status", "transactionHash", "blockNumber", "confirmations", "amountPaid")


async def _settlement(
    backends: Backends, merchant_id: str, invoice: ipb.Invoice
) -> dict[str, Any] | None:
    """The settlement that paid the invoice; before that, its latest one (PENDING, FAILED) of
    the first 100 (an invoice has a handful)."""
    if invoice.settlement_id:
        found = await backends.call(
            backends.settlement.GetSettlement,
            spb.GetSettlementRequest(id=invoice.settlement_id),
            merchant_id,
        )
    else:
        listed = await backends.call(
            backends.settlement.ListSettlements,
            spb.ListSettlementsRequest(invoice_id=invoice.id, page_size=100),
            merchant_id,
        )
        if not listed.settlements:
            return None
        found = listed.settlements[-1]  # oldest first
    shown = to_json(found)
    return {name: shown[name] for name in _SHOWN}


@router.get("/pay/{invoice_id}")
async def invoice_page(request: Request, invoice_id: str) -> HTMLResponse:
    gateway: Gateway = request.app.state.gateway
    owner = await invoice_owner(gateway, invoice_id)
    backends = gateway.backends
    invoice = await backends.call(
        backends.invoicing.GetInvoice, ipb.GetInvoiceRequest(id=invoice_id), owner.id
    )
    shown = to_json(invoice)
    status = shown["status"]
    found, settlement = None, None
    if status in ("OPEN", "PAID"):
        settlement = await _settlement(backends, owner.id, invoice)
    if status == "OPEN":
        found = await payment_requests.of_invoice(backends, owner.id, invoice)
    confirming = settlement is not None and settlement["status"] == "PENDING"
    context: dict[str, Any] = {
        "merchant": owner,
        "invoice": shown,
        "due": shown.get("dueTime", "")[:10],
        "request": found,
        "qr": qr_code(found["uri"]) if found else "",
        "receipt": settlement if status == "PAID" else None,
        "confirming": confirming,
        "wallet": {
            "request": found,
            "relay": f"/api/v1/invoices/{invoice_id}/pay",
            "follow": f"/pay/{invoice_id}/status",
            # A payment already on its way (the page was reloaded): follow it at once.
            "following": confirming,
        },
    }
    return render("invoice.html", context)


@router.get("/pay/{invoice_id}/status")
async def invoice_status(request: Request, invoice_id: str) -> dict[str, Any]:
    """What the page follows after a payment: the invoice's status and its settlement."""
    gateway: Gateway = request.app.state.gateway
    owner = await invoice_owner(gateway, invoice_id)
    backends = gateway.backends
    invoice = await backends.call(
        backends.invoicing.GetInvoice, ipb.GetInvoiceRequest(id=invoice_id), owner.id
    )
    return {
        "status": to_json(invoice)["status"],
        "settlement": await _settlement(backends, owner.id, invoice),
    }
