"""What metering's replica of a subscription is made of, read in this order: the subscription,
its plan (entitlements), and for a prepaid-only plan its allowance (the subscriber's credits).
A change of the plan or of the credits raises the subscription's version in its own
transaction, so what is read after the subscription is never older than the version pushed.

Metering refuses an event that would take a prepaid-only subscription's usage past the
allowance. Its credits are the balance settlement last reported, or answered when a period
close spent them; a kept report raises the version of the subscriber's prepaid-only
subscription, which pushes it again.
"""

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal

from invoicing_svc.adapters.credit_balance_store import CreditBalanceStore
from invoicing_svc.domain.credits import PrepaidAllowance
from invoicing_svc.domain.model import Plan, Subscription
from invoicing_svc.service_layer.unit_of_work import InvoicingUnitOfWork


async def allowances(
    credit_balances: CreditBalanceStore,
    subscriptions: Sequence[Subscription],
    plans: Mapping[str, Plan],
    since: Mapping[str, datetime] | None = None,
) -> dict[str, PrepaidAllowance]:
    """The allowance of each prepaid-only subscription by id; its usage counts from `since` (by
    id), by default from the start of its period."""
    prepaid = [s for s in subscriptions if plans[s.plan_id].prepaid_only]
    balances = await credit_balances.balances({(s.merchant_id, s.user_id) for s in prepaid})
    return {
        s.id: PrepaidAllowance(
            credits=balances.get((s.merchant_id, s.user_id), Decimal(0)),
            since=(since or {}).get(s.id, s.current_period_start),
        )
        for s in prepaid
    }


async def replica_of(
    uow: InvoicingUnitOfWork, subscription: Subscription
) -> tuple[Plan, PrepaidAllowance | None]:
    """The plan and allowance that go with a subscription this transaction read."""
    plan = await uow.catalog.plan(subscription.merchant_id, subscription.plan_id)
    assert plan is not None
    found = await allowances(uow.credit_balances, [subscription], {plan.id: plan})
    return plan, found.get(subscription.id)
