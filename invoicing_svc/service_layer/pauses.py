"""Pausing and resuming subscriptions."""

from invoicing_svc.domain import pauses as rules
from invoicing_svc.domain.model import Subscription
from invoicing_svc.domain.plan_changes import plans_involved, unused_time_credited
from invoicing_svc.service_layer.period_close import bill_period, close_ended
from invoicing_svc.service_layer.replica_pushes import replica_of
from invoicing_svc.service_layer.subscriptions import locked_subscription
from invoicing_svc.service_layer.unit_of_work import Invoicing
from service_kit.idempotency import RequestKey


async def pause_subscription(
    invoicing: Invoicing, merchant_id: str, subscription_id: str, request: RequestKey | None
) -> Subscription:
    """The current period ends now: its invoice bills it up to now (a fee paid up front is
    credited for the time after, on the resumed period's invoices), metering refuses usage from
    now on, and no period runs until it resumes. Metering learns the new state before its usage
    is read: if it cannot be reached, nothing changes (UNAVAILABLE)."""
    real_now = invoicing.clock.now()
    async with invoicing.unit_of_work() as uow:
        answer = await uow.idempotency.first_answer(uow.session, merchant_id, request)
        subscription = await locked_subscription(uow, merchant_id, answer or subscription_id)
        if answer is not None:
            return subscription
        subscription = await close_ended(invoicing, uow, subscription, real_now)
        plans = await uow.catalog.plans_by_id(
            {(merchant_id, plan_id) for plan_id in plans_involved(subscription)}
        )
        rules.validate_pause(subscription, plans[subscription.plan_id])
        at = subscription.now(real_now)
        paid = plans[subscription.fee_plan_id or subscription.plan_id]
        period = unused_time_credited(subscription, paid, at)
        await bill_period(
            invoicing, uow, period, rules.paused(subscription, at), until=at, now=real_now
        )
        stored = await locked_subscription(uow, merchant_id, subscription.id)
        await uow.emit(merchant_id, "subscription.paused", stored, real_now)
        await uow.idempotency.remember(uow.session, merchant_id, request, stored.id)
        await uow.commit()
    return stored


async def resume_subscription(
    invoicing: Invoicing, merchant_id: str, subscription_id: str, request: RequestKey | None
) -> Subscription:
    """A new period starts now (on the plan a change scheduled, if one did), billed in arrears
    with the credit the pause carried; metering takes usage again (told before this commits)."""
    real_now = invoicing.clock.now()
    async with invoicing.unit_of_work() as uow:
        answer = await uow.idempotency.first_answer(uow.session, merchant_id, request)
        subscription = await locked_subscription(uow, merchant_id, answer or subscription_id)
        if answer is not None:
            return subscription
        plans = await uow.catalog.plans_by_id(
            {(merchant_id, plan_id) for plan_id in plans_involved(subscription)}
        )
        following = rules.resumed(subscription, plans, subscription.now(real_now))
        await uow.subscriptions.save_subscription(following)
        await invoicing.metering.push_subscription(following, *await replica_of(uow, following))
        await uow.subscription_changed(following, real_now)
        await uow.emit(merchant_id, "subscription.resumed", following, real_now)
        await uow.idempotency.remember(uow.session, merchant_id, request, following.id)
        await uow.commit()
    return following
