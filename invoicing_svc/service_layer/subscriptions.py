"""Reading, canceling and (in tests and demos) time-travelling subscriptions."""

from dataclasses import replace
from datetime import datetime, timedelta

from invoicing_svc.domain.model import Subscription, SubscriptionStatus
from invoicing_svc.domain.pauses import resumed
from invoicing_svc.domain.plan_changes import canceled_prorations, plans_involved
from invoicing_svc.service_layer.period_close import bill_period, close_due_periods, close_periods
from invoicing_svc.service_layer.replica_pushes import replica_of
from invoicing_svc.service_layer.trials import remind_trials_ending
from invoicing_svc.service_layer.unit_of_work import Invoicing, InvoicingUnitOfWork
from service_kit import pagination
from service_kit.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from service_kit.idempotency import RequestKey

MAX_TEST_CLOCK_STEP = timedelta(days=5 * 366)


async def locked_subscription(
    uow: InvoicingUnitOfWork, merchant_id: str, subscription_id: str, field: str = "id"
) -> Subscription:
    """The merchant's subscription, locked; NOT_FOUND naming `field` when unknown or another's."""
    found = await uow.subscriptions.subscription(merchant_id, subscription_id, lock=True)
    if found is None:
        raise NotFound(f"subscription {subscription_id} not found", field=field)
    return found


async def get_subscription(
    invoicing: Invoicing, merchant_id: str, subscription_id: str
) -> Subscription:
    async with invoicing.unit_of_work() as uow:
        return await locked_subscription(uow, merchant_id, subscription_id)


async def list_subscriptions(
    invoicing: Invoicing,
    merchant_id: str,
    service_id: str,
    user_id: str,
    size: int,
    token: str,
    *,
    plan_id: str = "",
    status: SubscriptionStatus | None = None,
) -> tuple[list[Subscription], str]:
    """The merchant's subscriptions, oldest first; each filter given narrows the list."""
    limit = pagination.page_size(size)
    async with invoicing.unit_of_work() as uow:
        found = await uow.subscriptions.subscriptions(
            merchant_id,
            service_id=service_id or None,
            user_id=user_id or None,
            plan_id=plan_id or None,
            status=status,
            after=pagination.creation_position(token),
            limit=limit + 1,
        )
    return pagination.cut_page(found, limit, lambda s: (s.create_time, s.id))


async def cancel_subscription(
    invoicing: Invoicing,
    merchant_id: str,
    subscription_id: str,
    at_period_end: bool,
    request: RequestKey | None,
) -> Subscription:
    """Now: the partial period is invoiced (actual usage, fixed fee pro-rated by active days)
    and metering stops taking events. At period end: metering refuses events from the period's
    end on, and the period close ends the subscription. Either way metering learns the new state
    before this commits: if it cannot be reached, nothing changes (UNAVAILABLE)."""
    real_now = invoicing.clock.now()
    async with invoicing.unit_of_work() as uow:
        first_id = await uow.idempotency.first_answer(uow.session, merchant_id, request)
        subscription = await locked_subscription(uow, merchant_id, first_id or subscription_id)
        if first_id is not None:
            return subscription
        if subscription.status is SubscriptionStatus.CANCELED:
            raise FailedPrecondition(
                f"subscription {subscription_id} is already canceled", field="id"
            )
        if at_period_end:
            if subscription.status is SubscriptionStatus.PAUSED:
                raise FailedPrecondition(
                    f"subscription {subscription_id} is paused: it has no period to end at; "
                    "cancel it now or resume it",
                    field="at_period_end",
                )
            following = replace(
                subscription, cancel_at_period_end=True, version=subscription.version + 1
            )
            await uow.subscriptions.save_subscription(following)
            await invoicing.metering.push_subscription(following, *await replica_of(uow, following))
            await uow.subscription_changed(following, real_now)
            await uow.emit(merchant_id, "subscription.updated", following, real_now)
        else:
            following = await end_now(invoicing, uow, subscription, real_now)
        await uow.idempotency.remember(uow.session, merchant_id, request, subscription.id)
        await uow.commit()
    return following


async def end_now(
    invoicing: Invoicing, uow: InvoicingUnitOfWork, subscription: Subscription, real_now: datetime
) -> Subscription:
    """Periods that ended but are not closed yet (in their grace window) are closed first, as
    the scheduler would close them; then the final invoice bills the open period up to now (and
    every event metering acknowledged after it). A cancellation at the period end that took
    effect in those closes stands. Returns the canceled subscription."""
    ended_at = subscription.now(real_now)
    if subscription.status is SubscriptionStatus.PAUSED:
        # Resumed and canceled at once: the final invoice bills what was stamped after the
        # pause (acknowledged before it), no fee, and the credit the pause carried.
        plans = await uow.catalog.plans_by_id(
            {(subscription.merchant_id, plan_id) for plan_id in plans_involved(subscription)}
        )
        subscription = resumed(subscription, plans, ended_at)
    while (
        subscription.status is not SubscriptionStatus.CANCELED
        and subscription.current_period_end < ended_at
    ):
        (subscription,) = await close_periods(invoicing, uow, [subscription])
    if subscription.status is SubscriptionStatus.CANCELED:
        return subscription
    following = replace(
        subscription,
        status=SubscriptionStatus.CANCELED,
        cancel_time=ended_at,
        version=subscription.version + 1,
    )
    paid = await uow.catalog.plan(
        subscription.merchant_id, subscription.fee_plan_id or subscription.plan_id
    )
    assert paid is not None
    period = canceled_prorations(subscription, paid, ended_at)
    await bill_period(invoicing, uow, period, following, until=ended_at, now=real_now)
    await uow.emit(subscription.merchant_id, "subscription.canceled", following, real_now)
    return following


async def advance_test_clock(
    invoicing: Invoicing, merchant_id: str, subscription_id: str, step: timedelta
) -> Subscription:
    """Moves the subscription's own time forward and closes every period that ended by then."""
    if not invoicing.settings.test_clock_enabled:
        raise PermissionDenied(
            "test clocks are disabled (INVOICING_TEST_CLOCK_ENABLED)", field="subscription_id"
        )
    if not timedelta(0) < step <= MAX_TEST_CLOCK_STEP:
        raise InvalidArgument("advance_by must be positive and at most 5 years", field="advance_by")
    now = invoicing.clock.now()
    async with invoicing.unit_of_work() as uow:
        subscription = await locked_subscription(
            uow, merchant_id, subscription_id, "subscription_id"
        )
        moved = replace(
            subscription,
            test_clock_time=subscription.now(now) + step,
            version=subscription.version + 1,
        )
        await uow.subscriptions.save_subscription(moved)
        await uow.subscription_changed(moved, now)
        replica = await replica_of(uow, moved)
        await uow.commit()
    await invoicing.metering.push_subscription(moved, *replica)
    await remind_trials_ending(invoicing, subscription_id)
    await close_due_periods(invoicing, subscription_id)
    return await get_subscription(invoicing, merchant_id, subscription_id)
