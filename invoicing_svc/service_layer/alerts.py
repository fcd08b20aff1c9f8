"""Usage alerts: creating and reading them, and the pass that finds their crossings.

Every replica runs the pass (INVOICING_ALERT_CHECK_SECONDS). It reads the subscriptions that an
alert still has something to say about in their current period, in batches, each batch locked
(a period close holding one is skipped, and waits for the batch it meets): their usage so far
from metering in one call, their credits from the replica of balances, and for each alert what
the period has crossed. A crossing is recorded by a unique key of alert, subscription, period
and event type, and only the transaction that recorded it sends its webhook (and, for a SPEND
alert that INVOICEs, finalizes the interim invoice), so each is sent once per period whoever
finds it and however many replicas look at once.
"""

from dataclasses import replace
from decimal import Decimal

import structlog

from invoicing_svc.domain.alerts import (
    AlertAction,
    AlertCrossing,
    AlertKind,
    UsageAlert,
    crossed,
    parse_threshold,
    validate_alert,
    validate_for_plan,
)
from invoicing_svc.domain.invoice_lines import usage_spend
from invoicing_svc.domain.model import Plan, Subscription
from invoicing_svc.domain.period_invoice import current_balance, interim_invoice
from invoicing_svc.domain.periods import BilledUsage
from invoicing_svc.domain.plan_changes import plans_involved
from invoicing_svc.service_layer.invoices import announce_created
from invoicing_svc.service_layer.period_usage import parts_usage
from invoicing_svc.service_layer.unit_of_work import Invoicing, InvoicingUnitOfWork
from service_kit import pagination
from service_kit.errors import InvalidArgument, NotFound
from service_kit.idempotency import RequestKey
from service_kit.identifiers import require_identifier
from service_kit.ids import new_id

log = structlog.get_logger()

# Subscriptions checked per transaction: one metering call and a handful of statements.
ALERT_BATCH = 250


async def create_usage_alert(
    invoicing: Invoicing,
    merchant_id: str,
    *,
    plan_id: str,
    subscription_id: str,
    kind: AlertKind | None,
    event_key: str,
    threshold: str,
    action: AlertAction | None,
    request: RequestKey | None,
) -> UsageAlert:
    if kind is None:
        raise InvalidArgument("alert.kind is required", field="alert.kind")
    alert = UsageAlert(
        id=new_id("alrt"),
        merchant_id=merchant_id,
        plan_id=plan_id,
        subscription_id=subscription_id,
        kind=kind,
        event_key=event_key,
        threshold=parse_threshold(kind, threshold),
        action=action or AlertAction.NOTIFY,
        create_time=invoicing.clock.now(),
    )
    validate_alert(alert)
    async with invoicing.unit_of_work() as uow:
        first_id = await uow.idempotency.first_answer(uow.session, merchant_id, request)
        if first_id is not None:
            return await _alert(uow, merchant_id, first_id)
        validate_for_plan(alert, await _measured_plan(uow, alert))
        await uow.alerts.add(alert)
        await uow.idempotency.remember(uow.session, merchant_id, request, alert.id)
        await uow.commit()
    return alert


async def _measured_plan(uow: InvoicingUnitOfWork, alert: UsageAlert) -> Plan:
    """The alert's plan, or its subscription's; NOT_FOUND when it is not the merchant's."""
    plan_id = alert.plan_id
    if alert.subscription_id:
        require_identifier(alert.subscription_id, "alert.subscription_id")
        subscription = await uow.subscriptions.subscription(
            alert.merchant_id, alert.subscription_id
        )
        if subscription is None:
            raise NotFound(
                f"subscription {alert.subscription_id} not found", field="alert.subscription_id"
            )
        plan_id = subscription.plan_id
    else:
        require_identifier(plan_id, "alert.plan_id")
    plan = await uow.catalog.plan(alert.merchant_id, plan_id)
    if plan is None:
        raise NotFound(f"plan {plan_id} not found", field="alert.plan_id")
    return plan


async def _alert(uow: InvoicingUnitOfWork, merchant_id: str, alert_id: str) -> UsageAlert:
    found = await uow.alerts.get(merchant_id, alert_id)
    if found is None:
        raise NotFound(f"usage alert {alert_id} not found", field="id")
    return found


async def get_usage_alert(invoicing: Invoicing, merchant_id: str, alert_id: str) -> UsageAlert:
    async with invoicing.unit_of_work() as uow:
        return await _alert(uow, merchant_id, alert_id)


async def list_usage_alerts(
    invoicing: Invoicing,
    merchant_id: str,
    *,
    plan_id: str,
    subscription_id: str,
    size: int,
    token: str,
) -> tuple[list[UsageAlert], str]:
    limit = pagination.page_size(size)
    async with invoicing.unit_of_work() as uow:
        found = await uow.alerts.page(
            merchant_id, plan_id, subscription_id, pagination.creation_position(token), limit + 1
        )
    return pagination.cut_page(found, limit, lambda a: (a.create_time, a.id))


async def delete_usage_alert(invoicing: Invoicing, merchant_id: str, alert_id: str) -> None:
    async with invoicing.unit_of_work() as uow:
        if not await uow.alerts.delete(merchant_id, alert_id, invoicing.clock.now()):
            raise NotFound(f"usage alert {alert_id} not found", field="id")
        await uow.commit()


async def list_alert_crossings(
    invoicing: Invoicing, merchant_id: str, subscription_id: str, size: int, token: str
) -> tuple[list[AlertCrossing], str]:
    require_identifier(subscription_id, "subscription_id")
    limit = pagination.page_size(size)
    async with invoicing.unit_of_work() as uow:
        if await uow.subscriptions.subscription(merchant_id, subscription_id) is None:
            raise NotFound(f"subscription {subscription_id} not found", field="subscription_id")
        found = await uow.alerts.crossings(
            subscription_id, pagination.creation_position(token), limit + 1
        )
    return pagination.cut_page(found, limit, lambda c: c.position)


async def check_alerts(invoicing: Invoicing) -> int:
    """One pass over every subscription an alert watches; returns the crossings it recorded."""
    recorded, after = 0, ""
    while True:
        async with invoicing.unit_of_work() as uow:
            ids = await uow.alerts.watched(after, ALERT_BATCH)
            if not ids:
                return recorded
            after = ids[-1]
            subscriptions = await uow.subscriptions.lock_active(ids)
            if subscriptions:
                recorded += await _check(invoicing, uow, subscriptions)
            await uow.commit()


async def _check(
    invoicing: Invoicing, uow: InvoicingUnitOfWork, subscriptions: list[Subscription]
) -> int:
    """Records and announces what the locked subscriptions' periods have crossed."""
    now = invoicing.clock.now()
    plans = await uow.catalog.plans_by_id(
        {(s.merchant_id, plan_id) for s in subscriptions for plan_id in plans_involved(s)}
    )
    alerts = await uow.alerts.watching([(s.merchant_id, s.plan_id, s.id) for s in subscriptions])
    credits = await uow.credit_balances.balances(
        {(s.merchant_id, s.user_id) for s in subscriptions}
    )
    parts_of = await parts_usage(
        invoicing.metering, [(s, s.current_period_end) for s in subscriptions], plans
    )
    # Alerts watch the whole period's usage: a period split by a plan change is read whole too.
    split = [s for s, parts in zip(subscriptions, parts_of, strict=True) if len(parts) > 1]
    wholes = await invoicing.metering.period_usages(
        [
            BilledUsage(s.merchant_id, s.id, s.current_period_start, s.current_period_end)
            for s in split
        ]
    )
    whole_of = {s.id: usage for s, usage in zip(split, wholes, strict=True)}
    found: list[AlertCrossing] = []
    for subscription, parts in zip(subscriptions, parts_of, strict=True):
        usage = whole_of.get(subscription.id, parts[0].usage)
        plan = plans[subscription.plan_id]
        credit = credits.get((subscription.merchant_id, subscription.user_id), Decimal(0))
        balance = current_balance(subscription, parts, credit, now)
        _, spend = usage_spend(parts)
        for alert in alerts[subscription.id]:
            for event_type, threshold, value in crossed(alert, plan, usage, balance, spend):
                found.append(
                    AlertCrossing(
                        alert=alert,
                        subscription_id=subscription.id,
                        user_id=subscription.user_id,
                        event_type=event_type,
                        threshold=threshold,
                        value=value,
                        period_start=subscription.current_period_start,
                        period_end=subscription.current_period_end,
                        cross_time=subscription.now(now),
                    )
                )
    parts_by_id = {s.id: parts for s, parts in zip(subscriptions, parts_of, strict=True)}
    recorded = await uow.alerts.record(found)
    by_id = {subscription.id: subscription for subscription in subscriptions}
    invoicing_ones = [c for c in recorded if c.alert.action is AlertAction.INVOICE]
    billed = await uow.invoices.interim_billed(
        {(c.subscription_id, c.period_start) for c in invoicing_ones}
    )
    for crossing in recorded:
        if crossing.alert.action is AlertAction.INVOICE:
            subscription = by_id[crossing.subscription_id]
            key = (subscription.id, subscription.current_period_start)
            invoice = interim_invoice(
                subscription,
                parts_by_id[subscription.id],
                billed.get(key, Decimal(0)),
                invoice_id=new_id("in"),
                now=now,
                payment_terms=invoicing.settings.payment_terms,
            )
            if invoice is not None:
                await uow.invoices.add(invoice)
                await announce_created(uow, invoice, now)
                await uow.alerts.set_invoice(crossing, invoice.id)
                billed[key] = billed.get(key, Decimal(0)) + invoice.amount
                crossing = replace(crossing, invoice_id=invoice.id)
        await uow.emit(crossing.alert.merchant_id, crossing.event_type, crossing, now)
    if recorded:
        log.info("alerts.crossed", crossings=len(recorded))
    return len(recorded)
