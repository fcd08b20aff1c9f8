"""Paying without an API key: the public relay of signed EIP-3009 authorizations, and the status
the hosted pages follow. Reached by the unguessable invoice or checkout id alone and authorized by
the payer's signature (settlement checks it); rate-limited per client address.

The body is the x402 `exact` EVM payload, so an x402 client's payload is accepted as it is:
{"authorization": {"from", "to", "value", "validAfter", "validBefore", "nonce"}, "signature"}.
"""

from typing import Any

import grpc
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from billing.invoicing.v1 import invoicing_pb2 as ipb
from billing.settlement.v1 import settlement_pb2 as spb
from gateway.backends import to_json
from gateway.context import Gateway
from gateway.errors import ApiError, camel, from_grpc
from gateway.json_bodies import parse_exact_json, read_body
from gateway.tables import CheckoutOwnerRow

router = APIRouter(tags=["payments"], include_in_schema=False)
MAX_BODY_BYTES = 2048
# x402's names of the authorization's fields, and settlement's.
FIELDS = {
    "from": "from_address",
    "to": "to_address",
    "value": "value",
    "validAfter": "valid_after",
    "validBefore": "valid_before",
    "nonce": "nonce",
}
# Settlement's field as the gateway spells it ("fromAddress") -> the body's path.
PARAMS = {camel(ours): f"authorization.{theirs}" for theirs, ours in FIELDS.items()}


def _invalid(message: str, param: str = "") -> ApiError:
    return ApiError(400, "invalid_request_error", "invalid_argument", message, param)


def _authorization(body: bytes) -> spb.Authorization:
    value = parse_exact_json(body)
    if not isinstance(value, dict) or set(value) != {"authorization", "signature"}:
        raise _invalid('the body must be {"authorization": {...}, "signature": "0x..."}')
    fields, signature = value["authorization"], value["signature"]
    if not isinstance(fields, dict) or set(fields) != set(FIELDS):
        raise _invalid("authorization must have exactly " + ", ".join(FIELDS), "authorization")
    for name, field in (*fields.items(), ("signature", signature)):
        if not isinstance(field, str):
            raise _invalid(f"{name} must be a string", name)
    return spb.Authorization(
        signature=signature, **{FIELDS[name]: field for name, field in fields.items()}
    )


def _client_limited(request: Request, gateway: Gateway) -> None:
    client = request.client.host if request.client else "unknown"
    decision = gateway.public_limiter.take(f"client:{client}")
    if not decision.allowed:
        raise ApiError(
            429,
            "rate_limit_error",
            "rate_limited",
            "too many payment requests from this address; retry later",
            retry_after=decision.reset_seconds,
        )


async def invoice_owner(gateway: Gateway, invoice_id: str) -> str:
    """The merchant of a recorded invoice (404 otherwise), from settlement's ledger."""
    try:
        found = await gateway.backends.settlement.LocateInvoice(
            spb.LocateInvoiceRequest(invoice_id=invoice_id),
            timeout=gateway.backends.deadline,
            wait_for_ready=True,
        )
    except grpc.aio.AioRpcError as error:
        raise from_grpc(error) from None
    return str(found.merchant_id)


async def _relay(
    gateway: Gateway, merchant_id: str, request: spb.RelayAuthorizationRequest
) -> spb.Settlement:
    backends = gateway.backends
    try:
        return await backends.call(backends.settlement.RelayAuthorization, request, merchant_id)
    except ApiError as error:
        # The x402 spelling of the field that is wrong.
        error.param = PARAMS.get(error.param, error.param)
        raise


@router.post("/api/v1/invoices/{invoice_id}/pay", status_code=202)
async def pay_invoice(request: Request, invoice_id: str) -> JSONResponse:
    gateway: Gateway = request.app.state.gateway
    _client_limited(request, gateway)
    authorization = _authorization(await read_body(request, MAX_BODY_BYTES))
    owner = await invoice_owner(gateway, invoice_id)
    relay = spb.RelayAuthorizationRequest(invoice_id=invoice_id, authorization=authorization)
    settlement = await _relay(gateway, owner, relay)
    return JSONResponse(to_json(settlement), status_code=202)


@router.post("/api/v1/checkout-sessions/{session_id}/pay", status_code=202)
async def pay_checkout(request: Request, session_id: str) -> JSONResponse:
    """The checkout page's wallet payment: relayed, then the session waits for it, as the
    page's manual form does with a transaction hash."""
    gateway: Gateway = request.app.state.gateway
    _client_limited(request, gateway)
    authorization = _authorization(await read_body(request, MAX_BODY_BYTES))
    async with gateway.sessions() as db:
        owner = await db.get(CheckoutOwnerRow, session_id)
    if owner is None:
        raise ApiError(404, "invalid_request_error", "not_found", "no such checkout session")
    relay = spb.RelayAuthorizationRequest(
        checkout_session_id=session_id, authorization=authorization
    )
    settlement = await _relay(gateway, owner.merchant_id, relay)
    proof = ipb.PaymentProof(
        transaction_hash=settlement.transaction_hash,
        payer_wallet_address=settlement.payer_wallet_address,
    )
    backends = gateway.backends
    await backends.call(
        backends.invoicing.CompleteCheckoutSession,
        ipb.CompleteCheckoutSessionRequest(id=session_id, payment=proof),
        owner.merchant_id,
    )
    return JSONResponse(to_json(settlement), status_code=202)


@router.get("/pay/{invoice_id}/status")
async def invoice_status(request: Request, invoice_id: str) -> dict[str, Any]:
    """What the hosted page follows: the invoice's status and its latest settlement."""
    gateway: Gateway = request.app.state.gateway
    _client_limited(request, gateway)
    owner = await invoice_owner(gateway, invoice_id)
    backends = gateway.backends
    invoice = await backends.call(
        backends.invoicing.GetInvoice, ipb.GetInvoiceRequest(id=invoice_id), owner
    )
    listed = await backends.call(
        backends.settlement.ListSettlements,
        spb.ListSettlementsRequest(invoice_id=invoice_id, page_size=100),
        owner,
    )
    latest = listed.settlements[-1] if listed.settlements else None
    settlement = None
    if latest is not None:
        shown = ("id", "status", "transactionHash", "blockNumber", "confirmations", "amountPaid")
        settlement = {k: v for k, v in to_json(latest).items() if k in shown}
    return {"status": to_json(invoice)["status"], "settlement": settlement}
