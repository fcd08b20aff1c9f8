"""Dunning: the failed collection attempts settlement reports, and the merchant's setting for
the end of the schedule."""

from dataclasses import replace
from datetime import datetime

from invoicing_svc.domain import dunning as rules
from invoicing_svc.domain.dunning import DunningFinalAction, MerchantSettings, PaymentFailure
from invoicing_svc.domain.model import Invoice, PaymentAttempt, PaymentFailureReason
from invoicing_svc.service_layer.subscriptions import end_now
from invoicing_svc.service_layer.unit_of_work import Invoicing
from service_kit.errors import NotFound


async def report_payment_attempt_failure(
    invoicing: Invoicing,
    merchant_id: str,
    invoice_id: str,
    *,
    number: int,
    reason: PaymentFailureReason,
    detail: str,
    next_attempt_time: datetime | None,
) -> Invoice:
    """Records a failed attempt to collect an OPEN invoice, in one transaction with its effects:
    the invoice.payment_failed webhook, an ACTIVE subscription made PAST_DUE, and after the last
    attempt (no next time) the subscription canceled now when the merchant's
    dunning_final_action is CANCEL. A number already recorded returns the invoice unchanged
    (settlement delivers its reports at least once)."""
    rules.require_attempt_fields(number, detail)
    now = invoicing.clock.now()
    async with invoicing.unit_of_work() as uow:
        invoice = await uow.invoices.get(merchant_id, invoice_id, lock=True)
        if invoice is None:
            raise NotFound(f"invoice {invoice_id} not found", field="invoice_id")
        if rules.reported(invoice, number) is not None:
            return invoice
        attempt = PaymentAttempt(number, now, reason, detail, next_attempt_time)
        failed = rules.record_failure(invoice, attempt)
        await uow.invoices.add_payment_attempt(failed, attempt)
        await uow.emit(merchant_id, "invoice.payment_failed", PaymentFailure(failed, attempt), now)
        subscription = await uow.subscriptions.subscription(
            merchant_id, failed.subscription_id, lock=True
        )
        assert subscription is not None
        settings = await uow.merchant_settings.get(merchant_id)
        outcome = rules.after_failure(subscription, attempt, settings.dunning_final_action)
        if outcome.past_due is not None:
            subscription = outcome.past_due
            await uow.subscriptions.save_subscription(subscription)
            await uow.subscription_changed(subscription, now)
            await uow.emit(merchant_id, "subscription.updated", subscription, now)
        if outcome.cancel:
            # As CancelSubscription does now: the partial period billed, metering told first.
            await end_now(invoicing, uow, subscription, now)
        await uow.commit()
    return failed


async def get_merchant_settings(invoicing: Invoicing, merchant_id: str) -> MerchantSettings:
    async with invoicing.unit_of_work() as uow:
        return await uow.merchant_settings.get(merchant_id)


async def update_merchant_settings(
    invoicing: Invoicing, merchant_id: str, dunning_final_action: DunningFinalAction
) -> MerchantSettings:
    """Sets the merchant's settings; a repeated update sets the same values again."""
    async with invoicing.unit_of_work() as uow:
        current = await uow.merchant_settings.get(merchant_id)
        changed = replace(
            current,
            dunning_final_action=dunning_final_action,
            update_time=invoicing.clock.now(),
        )
        await uow.merchant_settings.save(changed)
        await uow.commit()
    return changed
