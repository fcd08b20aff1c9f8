"""Subscribers' credit balances as settlement reports them, the real-time balance of a
subscription, and the auto top-ups they drive.

A report is kept unless a newer version is held. Whenever a kept report (or a change of an auto
top-up) shows a subscriber below the threshold of one of its subscriptions' auto top-ups, a
top-up invoice is finalized on the longest standing one, which its mandate collects; while a
top-up of the subscriber is unpaid, no other is made, so credits are never bought twice for one
shortfall. The subscriber's advisory lock orders these decisions.
"""

from datetime import datetime
from decimal import Decimal

from invoicing_svc.domain import invoices as rules
from invoicing_svc.domain.credits import AutoTopUp, SubscriptionBalance
from invoicing_svc.domain.model import Invoice, Subscription, SubscriptionStatus
from invoicing_svc.domain.period_invoice import current_balance
from invoicing_svc.domain.plan_changes import plans_involved
from invoicing_svc.service_layer.invoices import announce_created
from invoicing_svc.service_layer.period_usage import parts_usage
from invoicing_svc.service_layer.unit_of_work import Invoicing, InvoicingUnitOfWork
from service_kit.decimals import MAX_AMOUNT, parse_decimal
from service_kit.errors import InvalidArgument, NotFound
from service_kit.identifiers import require_identifier
from service_kit.ids import new_id


async def _subscription(
    uow: InvoicingUnitOfWork, merchant_id: str, subscription_id: str
) -> Subscription:
    found = await uow.subscriptions.subscription(merchant_id, subscription_id)
    if found is None:
        raise NotFound(f"subscription {subscription_id} not found", field="subscription_id")
    return found


async def report_credit_balance(
    invoicing: Invoicing, merchant_id: str, user_id: str, balance_text: str, version: int
) -> None:
    """Stores settlement's report of the subscriber's balance, unless a newer one is stored;
    a kept one may invoice an auto top-up. The subscriber's prepaid-only subscription goes to
    metering again, with the credits reported."""
    require_identifier(user_id, "user_id")
    balance = parse_decimal(balance_text, field="balance", max_places=6, max_value=MAX_AMOUNT)
    if version < 1:
        raise InvalidArgument("version must be at least 1", field="version")
    now = invoicing.clock.now()
    async with invoicing.unit_of_work() as uow:
        await uow.credit_balances.lock_subscriber(merchant_id, user_id)
        # Before the balance's row: a period close holds its subscriptions, then writes the
        # balances settlement answered it (a stale report only pushes once more).
        for subscription in await uow.subscriptions.bump_prepaid_versions(merchant_id, user_id):
            await uow.subscription_changed(subscription, now)
        if await uow.credit_balances.report(merchant_id, user_id, balance, version, now):
            await _top_up_when_low(invoicing, uow, merchant_id, user_id, balance, now)
        await uow.commit()


async def set_auto_top_up(
    invoicing: Invoicing,
    merchant_id: str,
    subscription_id: str,
    terms: tuple[str, str] | None,
) -> AutoTopUp | None:
    """Sets the subscription's auto top-up to (threshold, amount), or removes it (None); a
    subscriber below the threshold already gets its top-up invoice at once."""
    parsed = None
    if terms is not None:
        threshold = parse_decimal(terms[0], field="threshold", max_places=6, max_value=MAX_AMOUNT)
        amount = parse_decimal(
            terms[1], field="amount", max_places=6, max_value=MAX_AMOUNT, allow_zero=False
        )
        parsed = (threshold, amount)
    now = invoicing.clock.now()
    async with invoicing.unit_of_work() as uow:
        subscription = await _subscription(uow, merchant_id, subscription_id)
        user_id = subscription.user_id
        await uow.credit_balances.lock_subscriber(merchant_id, user_id)
        if parsed is None:
            await uow.auto_top_ups.remove(subscription.id)
            await uow.commit()
            return None
        auto_top_up = AutoTopUp(merchant_id, subscription.id, user_id, *parsed, update_time=now)
        await uow.auto_top_ups.save(auto_top_up)
        balance = await uow.credit_balances.balance(merchant_id, user_id)
        await _top_up_when_low(invoicing, uow, merchant_id, user_id, balance, now)
        await uow.commit()
    return auto_top_up


async def get_auto_top_up(
    invoicing: Invoicing, merchant_id: str, subscription_id: str
) -> AutoTopUp | None:
    async with invoicing.unit_of_work() as uow:
        await _subscription(uow, merchant_id, subscription_id)
        return await uow.auto_top_ups.of_subscription(subscription_id)


async def subscription_balance(
    invoicing: Invoicing, merchant_id: str, subscription_id: str
) -> SubscriptionBalance:
    """The subscriber's credits less what the current period has consumed so far, from
    metering's summaries of the period (its rollups, current as each event is acknowledged)."""
    async with invoicing.unit_of_work() as uow:
        subscription = await _subscription(uow, merchant_id, subscription_id)
        plans = await uow.catalog.plans_by_id(
            {(merchant_id, plan_id) for plan_id in plans_involved(subscription)}
        )
        credits = await uow.credit_balances.balance(merchant_id, subscription.user_id)
    (parts,) = await parts_usage(
        invoicing.metering, [(subscription, subscription.current_period_end)], plans
    )
    return current_balance(subscription, parts, credits, invoicing.clock.now())


async def _top_up_when_low(
    invoicing: Invoicing,
    uow: InvoicingUnitOfWork,
    merchant_id: str,
    user_id: str,
    balance: Decimal,
    now: datetime,
) -> Invoice | None:
    """Under the subscriber's lock: the top-up invoice its balance calls for, finalized and
    stored, or None (above every threshold, a top-up unpaid, no ACTIVE subscription with one)."""
    wanted = [a for a in await uow.auto_top_ups.of_user(merchant_id, user_id) if a.wanted(balance)]
    if not wanted or await uow.invoices.has_unpaid_top_up(merchant_id, user_id):
        return None
    for auto_top_up in wanted:
        subscription = await uow.subscriptions.subscription(
            merchant_id, auto_top_up.subscription_id
        )
        if subscription is None or subscription.status is not SubscriptionStatus.ACTIVE:
            continue
        draft = rules.merchant_invoice(
            subscription, auto_top_up.amount, invoice_id=new_id("in"), now=now, top_up=True
        )
        invoice = rules.finalize(draft, now, now + invoicing.settings.payment_terms)
        await uow.invoices.add(invoice)
        await announce_created(uow, invoice, now)
        return invoice
    return None
