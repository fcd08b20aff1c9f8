"""Checkout sessions, and the subscriptions they start."""

import re
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Any

import structlog

from invoicing_svc.domain.model import (
    CheckoutSession,
    CheckoutStatus,
    PaymentProof,
    Plan,
    Subscription,
    SubscriptionStatus,
)
from invoicing_svc.domain.periods import period_bounds
from invoicing_svc.domain.plans import fixed_fee
from invoicing_svc.domain.trials import trial_end
from invoicing_svc.domain.urls import require_http_url
from invoicing_svc.service_layer.replica_pushes import replica_of
from invoicing_svc.service_layer.unit_of_work import Invoicing, InvoicingUnitOfWork
from service_kit.decimals import round_usdc
from service_kit.errors import FailedPrecondition, InvalidArgument, NotFound
from service_kit.idempotency import RequestKey
from service_kit.identifiers import require_identifier
from service_kit.ids import new_id

log = structlog.get_logger()
_TRANSACTION_HASH = re.compile(r"^0x[0-9a-fA-F]{64}$")
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
MAX_EMAIL = 320
MAX_NAME = 200


def check_payment(payment: PaymentProof, field: str) -> None:
    if not _TRANSACTION_HASH.match(payment.transaction_hash):
        raise InvalidArgument(
            "transaction_hash must be 0x and 64 hex digits", field=f"{field}.transaction_hash"
        )
    if not _ADDRESS.match(payment.payer_wallet_address):
        raise InvalidArgument(
            "payer_wallet_address must be 0x and 40 hex digits",
            field=f"{field}.payer_wallet_address",
        )


async def create_checkout_session(
    invoicing: Invoicing,
    draft: CheckoutSession,
    subscriber_email: str,
    subscriber_name: str,
    request: RequestKey | None,
) -> CheckoutSession:
    """Opens a session for a plan. Without a user id, a new subscriber is created."""
    for field, url in (
        ("session.success_url", draft.success_url),
        ("session.cancel_url", draft.cancel_url),
    ):
        require_http_url(url, field)
    if draft.user_id:
        require_identifier(draft.user_id, "session.user_id")
    if len(subscriber_email) > MAX_EMAIL or len(subscriber_name) > MAX_NAME:
        raise InvalidArgument(
            "new_subscriber email or name is too long", field="session.new_subscriber"
        )
    async with invoicing.unit_of_work() as uow:
        first_id = await uow.idempotency.first_answer(uow.session, draft.merchant_id, request)
        if first_id is not None:
            return await _checkout(uow, draft.merchant_id, first_id)
        named = await uow.catalog.plan(draft.merchant_id, draft.plan_id)
        if named is None:
            raise NotFound(f"plan {draft.plan_id} not found", field="session.plan_id")
        # A checkout subscribes to the plan's latest version.
        plan = await uow.catalog.latest_version(named)
        session = replace(
            draft,
            plan_id=plan.id,
            user_id=draft.user_id or new_id("usr"),
            # A trial comes first, with no fee: nothing is paid up front.
            amount_due=Decimal(0) if plan.trial_days else round_usdc(fixed_fee(plan)),
            status=CheckoutStatus.OPEN,
        )
        await uow.catalog.ensure_subscriber(
            session.merchant_id,
            session.user_id,
            subscriber_email,
            subscriber_name,
            session.create_time,
        )
        await uow.subscriptions.save_checkout(session)
        await uow.idempotency.remember(uow.session, session.merchant_id, request, session.id)
        await uow.commit()
    return session


async def _checkout(uow: InvoicingUnitOfWork, merchant_id: str, session_id: str) -> CheckoutSession:
    found = await uow.subscriptions.checkout(merchant_id, session_id, lock=True)
    if found is None:
        raise NotFound(f"checkout session {session_id} not found", field="id")
    return found


async def get_checkout_session(
    invoicing: Invoicing, merchant_id: str, session_id: str
) -> CheckoutSession:
    async with invoicing.unit_of_work() as uow:
        return await _checkout(uow, merchant_id, session_id)


async def complete_checkout_session(
    invoicing: Invoicing, merchant_id: str, session_id: str, payment: PaymentProof | None
) -> CheckoutSession:
    """Completes a usage-only session at once; a session with an amount due takes a payment proof
    and waits for settlement to confirm it. Completing twice returns the completed session."""
    if payment is not None:
        check_payment(payment, "payment")
    now = invoicing.clock.now()
    async with invoicing.unit_of_work() as uow:
        session = await _checkout(uow, merchant_id, session_id)
        if session.status is CheckoutStatus.COMPLETE:
            return session
        if session.status is CheckoutStatus.AWAITING_PAYMENT:
            if payment == session.payment:
                return session
            raise FailedPrecondition(
                "the session already awaits the verification of another payment", field="payment"
            )
        if session.amount_due > 0:
            if payment is None:
                raise InvalidArgument(
                    f"the plan is paid up front: a proof of {session.amount_due} USDC is required",
                    field="payment",
                )
            session = replace(session, status=CheckoutStatus.AWAITING_PAYMENT, payment=payment)
            await uow.subscriptions.save_checkout(session)
        else:
            session = await _start_subscription(uow, session, prepaid=False, now=now)
        await uow.commit()
    if session.subscription_id:
        await _announce_to_metering(invoicing, merchant_id, session.subscription_id)
    return session


async def confirm_checkout_payment(
    invoicing: Invoicing,
    merchant_id: str,
    session_id: str,
    settlement_id: str,
    settlement: dict[str, Any] | None = None,
) -> CheckoutSession:
    """Settlement verified the up-front payment: the subscription starts, its first fee paid.
    A session still OPEN was paid without its page hearing back (settlement's chain watcher
    found the payment, or the page was closed after the relay): the settlement is its proof."""
    if not settlement_id:
        raise InvalidArgument("settlement_id is required", field="settlement_id")
    now = invoicing.clock.now()
    async with invoicing.unit_of_work() as uow:
        session = await _checkout(uow, merchant_id, session_id)
        if session.status is CheckoutStatus.COMPLETE and session.settlement_id == settlement_id:
            return session
        if session.status is CheckoutStatus.COMPLETE:
            raise FailedPrecondition(
                f"checkout session {session_id} is COMPLETE with another payment", field="id"
            )
        if session.status is CheckoutStatus.OPEN and settlement is not None:
            session = replace(
                session,
                payment=PaymentProof(
                    settlement.get("transactionHash", ""),
                    settlement.get("payerWalletAddress", ""),
                ),
            )
        session = replace(session, settlement_id=settlement_id)
        session = await _start_subscription(uow, session, prepaid=True, now=now)
        if settlement is not None:
            await uow.emit(merchant_id, "settlement.confirmed", settlement, now)
        await uow.commit()
    await _announce_to_metering(invoicing, merchant_id, session.subscription_id)
    return session


async def _announce_to_metering(
    invoicing: Invoicing, merchant_id: str, subscription_id: str
) -> None:
    """Usage may be recorded as soon as checkout answers, so metering hears of the new
    subscription now rather than at the outbox's next pass (which delivers it all the same)."""
    async with invoicing.unit_of_work() as uow:
        subscription = await uow.subscriptions.subscription(merchant_id, subscription_id)
        assert subscription is not None
        replica = await replica_of(uow, subscription)
    try:
        await invoicing.metering.push_subscription(subscription, *replica)
    except Exception as error:
        log.warning("metering.push_deferred", subscription=subscription_id, error=str(error))


async def _require_no_other_prepaid(uow: InvoicingUnitOfWork, plan: Plan, user_id: str) -> None:
    """Before a subscription of `plan` starts: FAILED_PRECONDITION when it is prepaid-only and the
    subscriber has an ACTIVE prepaid-only subscription with the merchant already. Holds the
    subscriber's lock until commit, so two checkouts cannot both pass."""
    if not plan.prepaid_only:
        return
    await uow.credit_balances.lock_subscriber(plan.merchant_id, user_id)
    found = await uow.subscriptions.prepaid_subscriptions(plan.merchant_id, user_id)
    if found:
        raise FailedPrecondition(
            f"subscriber {user_id} already has the prepaid-only subscription {found[0].id}: "
            "its credits pay for one at a time",
            field="session.plan_id",
        )


async def _start_subscription(
    uow: InvoicingUnitOfWork, session: CheckoutSession, *, prepaid: bool, now: datetime
) -> CheckoutSession:
    plan = await uow.catalog.plan(session.merchant_id, session.plan_id)
    assert plan is not None
    await _require_no_other_prepaid(uow, plan, session.user_id)
    subscription = new_subscription(plan, session.user_id, now=now, prepaid=prepaid)
    await uow.subscriptions.save_subscription(subscription)
    await uow.subscription_changed(subscription, now)
    completed = replace(
        session,
        status=CheckoutStatus.COMPLETE,
        subscription_id=subscription.id,
        complete_time=now,
    )
    await uow.subscriptions.save_checkout(completed)
    await uow.emit(session.merchant_id, "subscription.created", subscription, now)
    await uow.emit(session.merchant_id, "checkout.session.completed", completed, now)
    return completed


def new_subscription(plan: Plan, user_id: str, *, now: datetime, prepaid: bool) -> Subscription:
    """Its first period starts now; with a trial, the trial is its first period, and the
    billing periods are counted from its end."""
    anchor, index = now, 0
    start, end = period_bounds(now, plan.billing_interval, plan.interval_count, 0)
    if (trial_ends := trial_end(plan, now)) is not None:
        anchor, index, start, end = trial_ends, -1, now, trial_ends
    return Subscription(
        id=new_id("sub"),
        merchant_id=plan.merchant_id,
        service_id=plan.service_id,
        plan_id=plan.id,
        user_id=user_id,
        status=SubscriptionStatus.ACTIVE,
        billing_anchor=anchor,
        period_index=index,
        current_period_start=start,
        current_period_end=end,
        cancel_at_period_end=False,
        fee_prepaid_until=end if prepaid else None,
        version=1,
        create_time=now,
        trial_end=trial_ends,
    )
