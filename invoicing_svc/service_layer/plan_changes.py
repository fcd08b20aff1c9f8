"""Changing a subscription's plan, now or at its period's end."""

from invoicing_svc.domain import plan_changes as rules
from invoicing_svc.domain.model import Invoice, Subscription
from invoicing_svc.domain.period_invoice import proration_invoice
from invoicing_svc.service_layer.catalog import required_plan
from invoicing_svc.service_layer.invoices import announce_created
from invoicing_svc.service_layer.period_close import close_ended
from invoicing_svc.service_layer.replica_pushes import replica_of
from invoicing_svc.service_layer.subscriptions import locked_subscription
from invoicing_svc.service_layer.unit_of_work import Invoicing, InvoicingUnitOfWork
from service_kit.idempotency import RequestKey
from service_kit.ids import new_id


async def _replay(
    uow: InvoicingUnitOfWork, merchant_id: str, answer: str
) -> tuple[Subscription, Invoice | None]:
    """The first run's answer: the prorations' invoice it issued, or the subscription."""
    invoice = await uow.invoices.get(merchant_id, answer)
    found = await uow.subscriptions.subscription(
        merchant_id, invoice.subscription_id if invoice else answer
    )
    assert found is not None
    return found, invoice


async def change_plan(
    invoicing: Invoicing,
    merchant_id: str,
    subscription_id: str,
    plan_id: str,
    timing: rules.ChangeTiming,
    behavior: rules.ProrationBehavior,
    request: RequestKey | None,
) -> tuple[Subscription, Invoice | None]:
    """Now: the current period is split at this moment (usage before it is priced by the old
    plan, after it by the new one, on the period's invoice), metering enforces the new plan's
    entitlements, and the fixed fee follows `behavior`; prorations of a fee paid up front that
    add up to a charge are invoiced at once under ALWAYS_INVOICE (returned). At the period's
    end: the period close moves the subscription to the plan. Metering learns the new state
    before this commits: if it cannot be reached, nothing changes (UNAVAILABLE)."""
    real_now = invoicing.clock.now()
    async with invoicing.unit_of_work() as uow:
        answer = await uow.idempotency.first_answer(uow.session, merchant_id, request)
        if answer is not None:
            return await _replay(uow, merchant_id, answer)
        subscription = await locked_subscription(uow, merchant_id, subscription_id)
        target = await required_plan(uow, merchant_id, plan_id, "plan_id")
        if timing is rules.ChangeTiming.NOW:
            subscription = await close_ended(invoicing, uow, subscription, real_now)
        current = await required_plan(uow, merchant_id, subscription.plan_id, "id")
        rules.validate_change(subscription, current, target, timing)
        invoice = None
        if timing is rules.ChangeTiming.PERIOD_END:
            changed = rules.scheduled(subscription, target)
        else:
            paid_id = subscription.fee_plan_id or subscription.plan_id
            paid = await required_plan(uow, merchant_id, paid_id, "id")
            change = rules.changed_now(
                subscription, target, paid, subscription.now(real_now), behavior
            )
            changed = change.subscription
            if change.invoice_now:
                invoice = proration_invoice(
                    changed,
                    change.prorations,
                    invoice_id=new_id("in"),
                    now=real_now,
                    payment_terms=invoicing.settings.payment_terms,
                )
        await uow.subscriptions.save_subscription(changed)
        await invoicing.metering.push_subscription(changed, *await replica_of(uow, changed))
        await uow.subscription_changed(changed, real_now)
        await uow.emit(merchant_id, "subscription.updated", changed, real_now)
        if invoice is not None:
            await uow.invoices.add(invoice)
            await announce_created(uow, invoice, real_now)
        answered = invoice.id if invoice else changed.id
        await uow.idempotency.remember(uow.session, merchant_id, request, answered)
        await uow.commit()
    return changed, invoice
