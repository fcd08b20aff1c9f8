"""The hosted invoice page a payment request's `hostedUrl` points to: the invoice, a QR code of
the EIP-681 URI (segno, inline SVG), and "Pay with your wallet" (EIP-1193 typed-data signing,
then the public relay). Plain HTML escaped by Jinja2 and a small script; no external assets."""

import io
from typing import Any

import jinja2
import segno
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from billing.invoicing.v1 import invoicing_pb2 as ipb
from gateway.backends import to_json
from gateway.context import Gateway
from gateway.errors import ApiError
from gateway.invoice_payments import invoice_owner, invoice_status
from gateway.merchants import merchant
from gateway.routes.invoices import payment_request

router = APIRouter(tags=["invoice page"], include_in_schema=False)

_PAGE = jinja2.Environment(
    loader=jinja2.PackageLoader("gateway", "templates"), autoescape=True
).get_template("invoice.html")


def _qr(uri: str) -> Markup:
    """The URI as an inline SVG; segno writes only its own markup."""
    out = io.BytesIO()
    segno.make(uri, error="m").save(out, kind="svg", xmldecl=False, svgns=True, scale=4)
    return Markup(out.getvalue().decode())


@router.get("/pay/{invoice_id}")
async def invoice_page(request: Request, invoice_id: str) -> HTMLResponse:
    gateway: Gateway = request.app.state.gateway
    owner_id = await invoice_owner(gateway, invoice_id)
    async with gateway.sessions() as db:
        owner = await merchant(db, owner_id)
    if owner is None:
        raise ApiError(404, "invalid_request_error", "not_found", "no such invoice")
    backends = gateway.backends
    invoice = await backends.call(
        backends.invoicing.GetInvoice, ipb.GetInvoiceRequest(id=invoice_id), owner_id
    )
    shown = to_json(invoice)
    found = await payment_request(gateway, owner_id, invoice)
    status = await invoice_status(request, invoice_id)
    context: dict[str, Any] = {
        "merchant": owner,
        "invoice": shown,
        "due": shown.get("dueTime", "")[:10],
        "status": shown["status"],
        "request": found,
        "qr": _qr(found["uri"]) if found else "",
        "receipt": status["settlement"] if shown["status"] == "PAID" else None,
    }
    return HTMLResponse(_PAGE.render(context))
