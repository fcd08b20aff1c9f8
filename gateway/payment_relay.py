"""The public relay of signed EIP-3009 authorizations: a subscriber pays an invoice or a checkout
session without gas and without an API key, and the platform's relayer submits the transfer.

The body is x402's `exact` EVM payload, so an x402 client's payload is taken as it is. Settlement
checks the authorization against the payable's live payment request before anything is sent and
names the wrong field; the gateway only spells that field as the body does."""

from typing import Any

from fastapi import Request

from billing.invoicing.v1 import invoicing_pb2 as ipb
from billing.settlement.v1 import settlement_pb2 as spb
from gateway import responses as r
from gateway.backends import to_json
from gateway.context import Gateway
from gateway.errors import ApiError
from gateway.public_routes import checkout_owner, invoice_owner, public_router
from gateway.schemas import SignedAuthorization

router = public_router("payments (public)")
# The body's field of each of settlement's ("fromAddress" as camel() spells its error field).
_BODY_FIELD = {
    "fromAddress": "authorization.from",
    "toAddress": "authorization.to",
    "value": "authorization.value",
    "validAfter": "authorization.validAfter",
    "validBefore": "authorization.validBefore",
    "nonce": "authorization.nonce",
}


def _authorization(payload: SignedAuthorization) -> spb.Authorization:
    fields = payload.authorization
    return spb.Authorization(
        from_address=fields.from_,
        to_address=fields.to,
        value=fields.value,
        valid_after=fields.valid_after,
        valid_before=fields.valid_before,
        nonce=fields.nonce,
        signature=payload.signature,
    )


async def _relay(
    gateway: Gateway, merchant_id: str, request: spb.RelayAuthorizationRequest
) -> spb.Settlement:
    backends = gateway.backends
    try:
        return await backends.call(backends.settlement.RelayAuthorization, request, merchant_id)
    except ApiError as error:
        error.param = _BODY_FIELD.get(error.param, error.param)
        raise


async def _refuse_void(gateway: Gateway, merchant_id: str, invoice_id: str) -> None:
    """Settlement's RelayAuthorization still relays for an invoice voided while its payment
    request is live; a VOID invoice is owed nothing, so the public relay refuses it first."""
    backends = gateway.backends
    invoice = await backends.call(
        backends.invoicing.GetInvoice, ipb.GetInvoiceRequest(id=invoice_id), merchant_id
    )
    if invoice.status == ipb.INVOICE_STATUS_VOID:
        raise ApiError(
            409,
            "conflict_error",
            "failed_precondition",
            f"invoice {invoice_id} is VOID: nothing is owed",
            "invoiceId",
        )


@router.post("/invoices/{invoice_id}/pay", **r.public(r.Settlement))
async def pay_invoice(request: Request, invoice_id: str, payload: SignedAuthorization) -> Any:
    """Relays a signed authorization paying the invoice's payment request (`paymentRequest` of
    the invoice, `nonce` = its `referenceHash`); answers the PENDING settlement it will confirm.
    The same authorization again answers the same settlement and sends nothing."""
    gateway: Gateway = request.app.state.gateway
    owner = await invoice_owner(gateway, invoice_id)
    await _refuse_void(gateway, owner.id, invoice_id)
    relay = spb.RelayAuthorizationRequest(
        invoice_id=invoice_id, authorization=_authorization(payload)
    )
    return to_json(await _relay(gateway, owner.id, relay))


@router.post("/checkout-sessions/{session_id}/pay", **r.public(r.Settlement))
async def pay_checkout(request: Request, session_id: str, payload: SignedAuthorization) -> Any:
    """The hosted checkout page's wallet payment of a session's amount due: relayed, then the
    session waits for it to confirm, as the page's form does with a transaction hash."""
    gateway: Gateway = request.app.state.gateway
    owner = await checkout_owner(gateway, session_id)
    relay = spb.RelayAuthorizationRequest(
        checkout_session_id=session_id, authorization=_authorization(payload)
    )
    settlement = await _relay(gateway, owner.id, relay)
    proof = ipb.PaymentProof(
        transaction_hash=settlement.transaction_hash,
        payer_wallet_address=settlement.payer_wallet_address,
    )
    backends = gateway.backends
    await backends.call(
        backends.invoicing.CompleteCheckoutSession,
        ipb.CompleteCheckoutSessionRequest(id=session_id, payment=proof),
        owner.id,
    )
    return to_json(settlement)
