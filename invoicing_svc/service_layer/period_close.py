"""Closing billing periods: usage read from metering, priced, invoiced once, subscription rolled.

Metering learns the next state of the subscription *before* its usage is read: from then on it
refuses events of the closed period, and events in flight commit first (its ingestion
share-locks the subscription), so the usage read is final.
"""

from dataclasses import replace
from datetime import datetime
from fractions import Fraction

import structlog

from invoicing_svc.domain.billing import active_share, invoice_total, period_lines
from invoicing_svc.domain.model import Invoice, InvoiceStatus, Subscription, SubscriptionStatus
from invoicing_svc.domain.periods import period_bounds
from invoicing_svc.service_layer.unit_of_work import Invoicing, InvoicingUnitOfWork
from service_kit.ids import new_id

log = structlog.get_logger()


async def bill_period(
    invoicing: Invoicing,
    uow: InvoicingUnitOfWork,
    subscription: Subscription,
    following: Subscription,
    *,
    until: datetime,
    now: datetime,
) -> Invoice | None:
    """Invoices the subscription's period, which ends at `until` (its end, or the cancellation
    time), and stores `following` as its next state. Returns None when the period was invoiced
    already. The fixed fee is pro-rated to `until`; usage counts every event metering accepted
    for the period, also one stamped at or just after a cancellation."""
    plan = await uow.catalog.plan(subscription.merchant_id, subscription.plan_id)
    assert plan is not None
    await invoicing.metering.push_subscription(following)
    start, end = subscription.current_period_start, subscription.current_period_end
    usage = await invoicing.metering.usage(subscription.merchant_id, subscription.id, start, end)
    prepaid = subscription.fee_prepaid_until is not None and subscription.fee_prepaid_until >= end
    share = Fraction(0) if prepaid else active_share(start, end, until)
    lines = tuple(period_lines(plan, usage, share))
    total = invoice_total(list(lines))
    # On a test clock the invoice lives in the subscription's time, like its period.
    issued = subscription.now(now)
    # Nothing to collect: a zero invoice is paid as it is issued.
    status = InvoiceStatus.OPEN if total > 0 else InvoiceStatus.PAID
    invoice = Invoice(
        id=new_id("in"),
        merchant_id=subscription.merchant_id,
        subscription_id=subscription.id,
        service_id=subscription.service_id,
        user_id=subscription.user_id,
        plan_id=plan.id,
        status=status,
        period_start=start,
        period_end=until,
        amount=total,
        create_time=issued,
        lines=lines,
        finalize_time=issued,
        due_time=issued + invoicing.settings.payment_terms,
        paid_time=None if total > 0 else issued,
    )
    created = await uow.invoices.add(invoice)
    await uow.subscriptions.save_subscription(following)
    await uow.subscription_changed(following, now)
    if not created:
        log.warning(
            "period.already_invoiced", subscription=subscription.id, period_start=str(start)
        )
        return None
    await uow.invoice_created(invoice, now)
    for event_type in ("invoice.created", "invoice.finalized"):
        await uow.emit(invoice.merchant_id, event_type, invoice, now)
    if invoice.status is InvoiceStatus.PAID:
        await uow.emit(invoice.merchant_id, "invoice.paid", invoice, now)
    return invoice


async def close_period(
    invoicing: Invoicing, uow: InvoicingUnitOfWork, subscription: Subscription
) -> None:
    """Invoices the ended period and rolls the subscription to the next one (or ends it)."""
    now = invoicing.clock.now()
    plan = await uow.catalog.plan(subscription.merchant_id, subscription.plan_id)
    assert plan is not None
    if subscription.cancel_at_period_end:
        following = replace(
            subscription,
            status=SubscriptionStatus.CANCELED,
            cancel_time=subscription.current_period_end,
            version=subscription.version + 1,
        )
    else:
        index = subscription.period_index + 1
        start, end = period_bounds(
            subscription.billing_anchor, plan.billing_interval, plan.interval_count, index
        )
        following = replace(
            subscription,
            period_index=index,
            current_period_start=start,
            current_period_end=end,
            version=subscription.version + 1,
        )
    await bill_period(
        invoicing, uow, subscription, following, until=subscription.current_period_end, now=now
    )
    event_type = (
        "subscription.canceled"
        if following.status is SubscriptionStatus.CANCELED
        else "subscription.updated"
    )
    await uow.emit(subscription.merchant_id, event_type, following, now)


async def close_due_periods(invoicing: Invoicing, subscription_id: str | None = None) -> int:
    """One scheduler pass: closes, one transaction each, every period that ended at least the
    grace window ago. Replicas share the work (SKIP LOCKED). Returns the periods closed."""
    closed = 0
    while True:
        async with invoicing.unit_of_work() as uow:
            due = await uow.subscriptions.claim_due(
                invoicing.clock.now(), invoicing.settings.late_event_grace, 1, subscription_id
            )
            if not due:
                return closed
            await close_period(invoicing, uow, due[0])
            await uow.commit()
        closed += 1


async def mark_overdue(invoicing: Invoicing) -> int:
    """ACTIVE subscriptions with an OPEN invoice past its due time become PAST_DUE."""
    now = invoicing.clock.now()
    marked = 0
    async with invoicing.unit_of_work() as uow:
        for merchant_id, subscription_id in await uow.invoices.subscriptions_newly_overdue(now):
            subscription = await uow.subscriptions.subscription(
                merchant_id, subscription_id, lock=True
            )
            if subscription is None or subscription.status is not SubscriptionStatus.ACTIVE:
                continue
            past_due = replace(
                subscription, status=SubscriptionStatus.PAST_DUE, version=subscription.version + 1
            )
            await uow.subscriptions.save_subscription(past_due)
            await uow.subscription_changed(past_due, now)
            await uow.emit(merchant_id, "subscription.updated", past_due, now)
            marked += 1
        await uow.commit()
    return marked
