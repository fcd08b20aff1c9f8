"""Closing billing periods: usage read from metering, priced, invoiced once, subscription rolled.

Metering learns the next state of the subscription *before* its usage is read: from then on it
refuses events of the closed period (every event, once the subscription is canceled), and events
in flight commit first (its ingestion share-locks the subscription), so the usage read is final.
A prepaid-only subscription's push counts the closed period's usage against the credits still;
once its invoice has spent them, the stored state (one version newer, `after_credits_spent`)
goes out with the balance settlement answered.

Periods close in batches: one transaction claims up to CLOSE_BATCH due subscriptions, pushes
their next states to metering in one call, reads their usage in one call, writes the invoices,
lines, subscriptions and outbox messages in a statement each, and spends the credits of the
subscribers who hold some in one call to settlement (none when nobody does).
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

import structlog

from invoicing_svc.domain.credits import credit_key
from invoicing_svc.domain.discounts import Discount, take_discounts
from invoicing_svc.domain.invoice_lines import PartUsage
from invoicing_svc.domain.model import (
    Invoice,
    InvoiceStatus,
    Plan,
    Subscription,
    SubscriptionStatus,
)
from invoicing_svc.domain.period_invoice import carried_credit, period_invoice, takes_discount
from invoicing_svc.domain.periods import after_credits_spent, billed_end, following_state
from invoicing_svc.domain.plan_changes import plans_involved
from invoicing_svc.domain.trials import after_trial
from invoicing_svc.service_layer.period_usage import parts_usage
from invoicing_svc.service_layer.prepaid_credits import CreditsUnavailable, spend_credits
from invoicing_svc.service_layer.replica_pushes import allowances
from invoicing_svc.service_layer.unit_of_work import Invoicing, InvoicingUnitOfWork
from service_kit.ids import new_id

log = structlog.get_logger()


# Periods closed per transaction: two metering calls and a handful of statements for all of them.
CLOSE_BATCH = 250
# The webhook of a period close that ended the subscription or (a trial's end) paused it.
_EVENT_OF_STATUS = {
    SubscriptionStatus.CANCELED: "subscription.canceled",
    SubscriptionStatus.PAUSED: "subscription.paused",
}


@dataclass(frozen=True)
class PeriodEnd:
    """A subscription's period to invoice, which ends at `until` (its end, or the cancellation
    time), and the state the subscription moves to."""

    subscription: Subscription
    following: Subscription
    until: datetime


async def _plans(
    uow: InvoicingUnitOfWork, subscriptions: Sequence[Subscription]
) -> dict[str, Plan]:
    """Every plan the subscriptions' periods involve (`plans_involved`), by id, in one
    statement, read after the subscriptions (whose pushes carry the plans' entitlements)."""
    keys = {(s.merchant_id, plan_id) for s in subscriptions for plan_id in plans_involved(s)}
    plans = await uow.catalog.plans_by_id(keys)
    assert len(plans) == len(keys)
    return plans


async def _discounts(
    uow: InvoicingUnitOfWork, endings: Sequence[PeriodEnd], usages: Sequence[list[PartUsage]]
) -> tuple[list[Discount], list[tuple[str, str, str] | None]]:
    """The batch's running discounts (locked: the close spends them), and per period the
    (merchant, subscription, user) that may take one: those whose invoice charges something."""
    running = await uow.discounts.running_for(
        {(e.subscription.merchant_id, e.subscription.id, e.subscription.user_id) for e in endings}
    )
    if not running:
        return running, [None] * len(endings)
    return running, [
        (e.subscription.merchant_id, e.subscription.id, e.subscription.user_id)
        if takes_discount(e.subscription, parts, e.until)
        else None
        for e, parts in zip(endings, usages, strict=True)
    ]


async def bill_periods(
    invoicing: Invoicing,
    uow: InvoicingUnitOfWork,
    endings: Sequence[PeriodEnd],
    plans: Mapping[str, Plan],
    now: datetime,
) -> tuple[list[Invoice | None], list[Subscription]]:
    """Invoices each period (`plans` holds the subscriptions' plans by id) and stores each
    following state. Returns, in order, the invoice of each period (None for a period that had
    an invoice already) and the stored following states."""
    frozen = [ending.following for ending in endings]
    unbilled = {e.following.id: e.subscription.current_period_start for e in endings}
    await invoicing.metering.push_subscriptions(
        frozen, plans, await allowances(uow.credit_balances, frozen, plans, since=unbilled)
    )
    usages = await parts_usage(
        invoicing.metering,
        [(e.subscription, billed_end(e.subscription, e.following)) for e in endings],
        plans,
    )
    # The alert pass that may add an interim invoice holds the subscription's row, as the close
    # does: what it billed is known here.
    interim = await uow.invoices.interim_billed(
        {(e.subscription.id, e.subscription.current_period_start) for e in endings}
    )
    running, charging = await _discounts(uow, endings, usages)
    coupons, _ = take_discounts(running, charging, now)
    priced = [
        period_invoice(
            ending.subscription,
            parts,
            until=ending.until,
            invoice_id=new_id("in"),
            now=now,
            payment_terms=invoicing.settings.payment_terms,
            interim_billed=interim.get(
                (ending.subscription.id, ending.subscription.current_period_start), Decimal(0)
            ),
            final=ending.following.status is SubscriptionStatus.CANCELED,
            discount=coupon,
        )
        for ending, parts, coupon in zip(endings, usages, coupons, strict=True)
    ]
    created = await uow.invoices.add_many(priced)
    made = [
        period if invoice.id in created else None
        for period, invoice in zip(charging, priced, strict=True)
    ]
    _, spent = take_discounts(running, made, now)
    await uow.discounts.update_discounts(spent)
    credited = await spend_credits(
        invoicing, uow, [(i, credit_key(i)) for i in priced if i.id in created]
    )
    by_id = {invoice.id: invoice for invoice in credited}
    invoices = [by_id.get(invoice.id, invoice) for invoice in priced]
    stored = [
        after_credits_spent(
            carried_credit(invoice, following) if invoice.id in created else following,
            plans[following.plan_id],
        )
        for following, invoice in zip(frozen, invoices, strict=True)
    ]
    await uow.subscriptions.update_subscriptions(stored)
    for following, invoice in zip(stored, invoices, strict=True):
        await uow.subscription_changed(following, now)
        if invoice.id not in created:
            log.warning(
                "period.already_invoiced",
                subscription=invoice.subscription_id,
                period_start=str(invoice.period_start),
            )
            continue
        await uow.invoice_created(invoice, now)
        issued = "invoice.held" if invoice.hold_reason else "invoice.finalized"
        for event_type in ("invoice.created", issued):
            await uow.emit(invoice.merchant_id, event_type, invoice, now)
        if invoice.status is InvoiceStatus.PAID:
            await uow.emit(invoice.merchant_id, "invoice.paid", invoice, now)
    return [invoice if invoice.id in created else None for invoice in invoices], stored


async def bill_period(
    invoicing: Invoicing,
    uow: InvoicingUnitOfWork,
    subscription: Subscription,
    following: Subscription,
    *,
    until: datetime,
    now: datetime,
) -> Invoice | None:
    """`bill_periods` of one period (a cancellation)."""
    plans = await _plans(uow, [subscription])
    ending = PeriodEnd(subscription, following, until)
    (invoice,), _ = await bill_periods(invoicing, uow, [ending], plans, now)
    return invoice


async def close_periods(
    invoicing: Invoicing, uow: InvoicingUnitOfWork, subscriptions: Sequence[Subscription]
) -> list[Subscription]:
    """Invoices the ended periods and rolls each subscription to its next one (or ends it).
    Returns the following states, in order."""
    now = invoicing.clock.now()
    plans = await _plans(uow, subscriptions)
    endings = [
        PeriodEnd(
            s,
            after_trial(s, plans[s.plan_id]) or following_state(s, plans),
            until=s.current_period_end,
        )
        for s in subscriptions
    ]
    _, stored = await bill_periods(invoicing, uow, endings, plans, now)
    for following in stored:
        event_type = _EVENT_OF_STATUS.get(following.status, "subscription.updated")
        await uow.emit(following.merchant_id, event_type, following, now)
    return stored


async def close_ended(
    invoicing: Invoicing, uow: InvoicingUnitOfWork, subscription: Subscription, now: datetime
) -> Subscription:
    """Closes the locked subscription's periods that ended but are not closed yet (in their
    grace window), as the scheduler would: a change made now belongs to the period it happens
    in. Returns its state after them."""
    while subscription.status not in (
        SubscriptionStatus.CANCELED,
        SubscriptionStatus.PAUSED,
    ) and subscription.current_period_end <= subscription.now(now):
        (subscription,) = await close_periods(invoicing, uow, [subscription])
    return subscription


async def close_due_periods(
    invoicing: Invoicing, subscription_id: str | None = None, batch_size: int = CLOSE_BATCH
) -> int:
    """One scheduler pass: closes every period that ended at least the grace window ago, up to
    `batch_size` per transaction. Replicas share the work (SKIP LOCKED). Returns the periods
    closed. When settlement cannot spend credits, the pass goes on with the subscribers who hold
    none, and the others' periods wait for a later pass (a subscription asked for by id raises)."""
    closed = 0
    holding_credits = True
    while True:
        try:
            async with invoicing.unit_of_work() as uow:
                due = await uow.subscriptions.claim_due(
                    invoicing.clock.now(),
                    invoicing.settings.late_event_grace,
                    batch_size,
                    subscription_id,
                    holding_credits=holding_credits,
                )
                if not due:
                    return closed
                await close_periods(invoicing, uow, due)
                await uow.commit()
        except CreditsUnavailable as error:
            if subscription_id or not holding_credits:
                raise
            log.warning("period_close.credits_unavailable", error=str(error))
            holding_credits = False
            continue
        closed += len(due)


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
