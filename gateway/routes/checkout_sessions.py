"""Checkout sessions: a subscriber's way in, through the hosted page at the session's `url`."""

from typing import Any

from billing.invoicing.v1 import invoicing_pb2 as pb
from gateway import payment_requests
from gateway import responses as r
from gateway.backends import to_json
from gateway.context import MerchantRequest
from gateway.routes import Merchant, merchant_router
from gateway.schemas import CheckoutComplete, CheckoutCreate
from gateway.tables import CheckoutOwnerRow

router = merchant_router("checkout sessions")


async def _with_payment_request(
    merchant: MerchantRequest, session: pb.CheckoutSession, after_change: bool = False
) -> dict[str, Any]:
    """The session's JSON and its `paymentRequest` (null without an amount due)."""
    found = to_json(session)
    found["paymentRequest"] = await payment_requests.of_checkout(
        merchant.gateway.backends, merchant.merchant.id, session, after_change=after_change
    )
    return found


@router.post("/checkout-sessions", **r.documented(r.CheckoutSession, 404, 409))
async def create_checkout_session(merchant: Merchant, payload: CheckoutCreate) -> Any:
    """Returns the session with the `url` of its hosted checkout page."""

    async def create() -> dict[str, Any]:
        session = pb.CheckoutSession(
            plan_id=payload.plan_id,
            user_id=payload.user_id,
            new_subscriber=pb.NewSubscriber(email=payload.email, name=payload.name),
            success_url=payload.success_url,
            cancel_url=payload.cancel_url,
        )
        stub = merchant.gateway.backends.invoicing
        created = await merchant.call(
            stub.CreateCheckoutSession, pb.CreateCheckoutSessionRequest(session=session)
        )
        # The public hosted page needs to know whose session it shows.
        async with merchant.gateway.sessions() as db, db.begin():
            await db.merge(
                CheckoutOwnerRow(session_id=created.id, merchant_id=merchant.merchant.id)
            )
        return await _with_payment_request(merchant, created, after_change=True)

    return await merchant.created(create)


@router.get("/checkout-sessions/{session_id}", **r.documented(r.CheckoutSession, 404))
async def get_checkout_session(merchant: Merchant, session_id: str) -> Any:
    stub = merchant.gateway.backends.invoicing
    session = await merchant.call(
        stub.GetCheckoutSession, pb.GetCheckoutSessionRequest(id=session_id)
    )
    return await _with_payment_request(merchant, session)


@router.post(
    "/checkout-sessions/{session_id}/complete", **r.documented(r.CheckoutSession, 404, 409)
)
async def complete_checkout_session(
    merchant: Merchant, session_id: str, payload: CheckoutComplete
) -> Any:
    async def complete() -> dict[str, Any]:
        request = pb.CompleteCheckoutSessionRequest(id=session_id)
        if payload.transaction_hash or payload.payer_wallet_address:
            request.payment.CopyFrom(
                pb.PaymentProof(
                    transaction_hash=payload.transaction_hash,
                    payer_wallet_address=payload.payer_wallet_address,
                )
            )
        stub = merchant.gateway.backends.invoicing
        session = await merchant.call(stub.CompleteCheckoutSession, request)
        return await _with_payment_request(merchant, session, after_change=True)

    return await merchant.created(complete)
