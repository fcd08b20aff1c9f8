"""Checkout sessions, subscriptions and invoices."""

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query

from billing.invoicing.v1 import invoicing_pb2 as pb
from gateway import responses as r
from gateway.backends import to_json
from gateway.openapi_bodies import body
from gateway.routes import Limit, Merchant, StartingAfter, page
from gateway.schemas import (
    CheckoutComplete,
    CheckoutCreate,
    InvoiceCreate,
    SubscriptionCancel,
    TestClockAdvance,
    text,
)
from gateway.tables import CheckoutOwnerRow
from service_kit.proto_time import to_timestamp

router = APIRouter(prefix="/api/v1", tags=["billing"])


@router.post(
    "/checkout-sessions",
    openapi_extra=body(CheckoutCreate),
    **r.documented(r.CheckoutSession, 404, 409),
)
async def create_checkout_session(merchant: Merchant) -> Any:
    """Returns the session with the `url` of its hosted checkout page."""
    payload = merchant.parse(CheckoutCreate)

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
        return to_json(created)

    return await merchant.created(create)


@router.get("/checkout-sessions/{session_id}", **r.documented(r.CheckoutSession, 404))
async def get_checkout_session(merchant: Merchant, session_id: str) -> Any:
    stub = merchant.gateway.backends.invoicing
    return to_json(
        await merchant.call(stub.GetCheckoutSession, pb.GetCheckoutSessionRequest(id=session_id))
    )


@router.post(
    "/checkout-sessions/{session_id}/complete",
    openapi_extra=body(CheckoutComplete),
    **r.documented(r.CheckoutSession, 404, 409),
)
async def complete_checkout_session(merchant: Merchant, session_id: str) -> Any:
    payload = merchant.parse(CheckoutComplete)

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
        return to_json(await merchant.call(stub.CompleteCheckoutSession, request))

    return await merchant.created(complete)


@router.get("/subscriptions/{subscription_id}", **r.documented(r.Subscription, 404))
async def get_subscription(merchant: Merchant, subscription_id: str) -> Any:
    stub = merchant.gateway.backends.invoicing
    return to_json(
        await merchant.call(stub.GetSubscription, pb.GetSubscriptionRequest(id=subscription_id))
    )


@router.post(
    "/subscriptions/{subscription_id}/cancel",
    openapi_extra=body(SubscriptionCancel),
    **r.documented(r.Subscription, 404, 409),
)
async def cancel_subscription(merchant: Merchant, subscription_id: str) -> Any:
    payload = merchant.parse(SubscriptionCancel)

    async def cancel() -> dict[str, Any]:
        stub = merchant.gateway.backends.invoicing
        request = pb.CancelSubscriptionRequest(
            id=subscription_id, at_period_end=payload.at_period_end
        )
        return to_json(await merchant.call(stub.CancelSubscription, request))

    return await merchant.created(cancel)


@router.post(
    "/subscriptions/{subscription_id}/test-clock/advance",
    openapi_extra=body(TestClockAdvance),
    **r.documented(r.Subscription, 403, 404, 409),
)
async def advance_test_clock(merchant: Merchant, subscription_id: str) -> Any:
    """Test mode only (403 unless INVOICING_TEST_CLOCK_ENABLED): moves the subscription's time
    forward and closes every billing period that ended by then."""
    payload = merchant.parse(TestClockAdvance)

    async def advance() -> dict[str, Any]:
        request = pb.AdvanceTestClockRequest(subscription_id=subscription_id)
        request.advance_by.FromTimedelta(timedelta(seconds=payload.seconds))
        stub = merchant.gateway.backends.invoicing
        return to_json(await merchant.call(stub.AdvanceTestClock, request))

    return await merchant.created(advance)


@router.post("/invoices", openapi_extra=body(InvoiceCreate), **r.documented(r.Invoice, 404, 409))
async def create_invoice(merchant: Merchant) -> Any:
    """Retempo's way: the amount is computed by the merchant; paymentPlanId is required."""
    payload = merchant.parse(InvoiceCreate)

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
