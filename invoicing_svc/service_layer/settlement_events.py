"""Settlement outcomes that reach merchants through invoicing's webhooks."""

from dataclasses import replace
from datetime import datetime
from typing import Any

from invoicing_svc.domain.model import CheckoutStatus
from invoicing_svc.service_layer.unit_of_work import Invoicing
from service_kit.errors import NotFound
from service_kit.idempotency import RequestKey


async def report_settlement_failure(
    invoicing: Invoicing, merchant_id: str, settlement: dict[str, Any], request: RequestKey
) -> None:
    """Sends the settlement.failed webhook once per settlement, however often it is reported.
    A checkout waiting for that payment opens again, so the subscriber can pay once more."""
    now = invoicing.clock.now()
    async with invoicing.unit_of_work() as uow:
        if await uow.idempotency.first_answer(uow.session, merchant_id, request) is not None:
            return
        await uow.emit(merchant_id, "settlement.failed", settlement, now)
        session_id = settlement.get("checkoutSessionId", "")
        checkout = (
            await uow.subscriptions.checkout(merchant_id, session_id, lock=True)
            if session_id
            else None
        )
        if (
            checkout is not None
            and checkout.status is CheckoutStatus.AWAITING_PAYMENT
            and checkout.payment is not None
            and checkout.payment.transaction_hash.lower() == settlement["transactionHash"].lower()
        ):
            await uow.subscriptions.save_checkout(
                replace(checkout, status=CheckoutStatus.OPEN, payment=None)
            )
        await uow.idempotency.remember(uow.session, merchant_id, request, request.request_id)
        await uow.commit()


async def report_mandate_change(
    invoicing: Invoicing,
    merchant_id: str,
    event_type: str,
    mandate: dict[str, Any],
    request: RequestKey,
    *,
    expire_time: datetime | None,
) -> None:
    """Sends the mandate.created or mandate.revoked webhook once per mandate and change, however
    often it is reported; the subscription must be the merchant's. The subscription keeps its
    mandate (id and expiry; cleared when that mandate is revoked): a trial's end asks it."""
    now = invoicing.clock.now()
    async with invoicing.unit_of_work() as uow:
        if await uow.idempotency.first_answer(uow.session, merchant_id, request) is not None:
            return
        subscription_id = mandate["subscriptionId"]
        subscription = await uow.subscriptions.subscription(merchant_id, subscription_id, lock=True)
        if subscription is None:
            raise NotFound(
                f"subscription {subscription_id} not found", field="mandate.subscription_id"
            )
        if event_type == "mandate.created":
            subscription = replace(
                subscription, mandate_id=mandate["mandateId"], mandate_expire_time=expire_time
            )
        elif subscription.mandate_id == mandate["mandateId"]:
            subscription = replace(subscription, mandate_id="", mandate_expire_time=None)
        await uow.subscriptions.save_subscription(subscription)
        await uow.emit(merchant_id, event_type, mandate, now)
        await uow.idempotency.remember(uow.session, merchant_id, request, request.request_id)
        await uow.commit()
