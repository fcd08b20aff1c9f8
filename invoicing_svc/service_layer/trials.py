"""The reminder that a trial is about to end."""

from dataclasses import replace

from invoicing_svc.domain.trials import REMINDER_LEAD
from invoicing_svc.service_layer.unit_of_work import Invoicing

# Reminders sent per transaction.
REMINDER_BATCH = 500


async def remind_trials_ending(invoicing: Invoicing, subscription_id: str | None = None) -> int:
    """One scheduler pass: `subscription.trial_will_end` for every trial ending within three
    days (at once for a shorter one), once per subscription however many replicas look (the row
    is locked and marked in the webhook's transaction). Returns the reminders sent."""
    sent = 0
    while True:
        now = invoicing.clock.now()
        async with invoicing.unit_of_work() as uow:
            due = await uow.subscriptions.trials_to_remind(
                now, REMINDER_LEAD, REMINDER_BATCH, subscription_id
            )
            if not due:
                return sent
            for subscription in due:
                reminded = replace(subscription, trial_reminded=True)
                await uow.subscriptions.save_subscription(reminded)
                await uow.emit(reminded.merchant_id, "subscription.trial_will_end", reminded, now)
            await uow.commit()
        sent += len(due)
