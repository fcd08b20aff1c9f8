"""The payment request of an invoice or a checkout session, as the REST answers and the hosted pages
show it. Settlement issues one the first time a payable is asked for it (GetPaymentRequest) and
answers FAILED_PRECONDITION while nothing is payable: then there is none (None)."""

from decimal import Decimal
from typing import Any

import structlog

from billing.invoicing.v1 import invoicing_pb2 as ipb
from billing.settlement.v1 import settlement_pb2 as spb
from gateway.backends import Backends, to_json
from gateway.errors import ApiError

log = structlog.get_logger()


async def _payment_request(
    backends: Backends, merchant_id: str, request: spb.GetPaymentRequestRequest, after_change: bool
) -> dict[str, Any] | None:
    try:
        found = await backends.call(backends.settlement.GetPaymentRequest, request, merchant_id)
    except ApiError as error:
        if error.status == 409:
            return None
        if after_change and error.status >= 500:
            # The change is committed: its answer must not become an error a retry would repeat
            # as a second change. The request shows on the next read.
            log.warning("payment_request.deferred", error=error.message)
            return None
        raise
    return to_json(found)


async def of_invoice(
    backends: Backends, merchant_id: str, invoice: ipb.Invoice, *, after_change: bool = False
) -> dict[str, Any] | None:
    """The payment request of an OPEN or PAID invoice; None for any other. `after_change`: the
    answer of a change already made (created, finalized), None while settlement is away."""
    if invoice.status not in (ipb.INVOICE_STATUS_OPEN, ipb.INVOICE_STATUS_PAID):
        return None
    request = spb.GetPaymentRequestRequest(invoice_id=invoice.id)
    return await _payment_request(backends, merchant_id, request, after_change)


async def of_checkout(
    backends: Backends,
    merchant_id: str,
    session: ipb.CheckoutSession,
    *,
    after_change: bool = False,
) -> dict[str, Any] | None:
    """The payment request of a session with an amount due; None for a usage-only plan."""
    if Decimal(session.amount_due or 0) == 0:
        return None
    request = spb.GetPaymentRequestRequest(checkout_session_id=session.id)
    return await _payment_request(backends, merchant_id, request, after_change)
