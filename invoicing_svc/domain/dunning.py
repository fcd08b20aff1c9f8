"""Dunning: what a failed collection attempt does to its invoice and subscription, and the
merchant's setting for the end of the schedule. Settlement keeps the schedule and makes the
attempts; invoicing records each failure and owns the subscription's state."""

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from invoicing_svc.domain.model import (
    Invoice,
    InvoiceStatus,
    PaymentAttempt,
    Subscription,
    SubscriptionStatus,
)
from service_kit.errors import FailedPrecondition, InvalidArgument

MAX_ATTEMPT_NUMBER = 100
MAX_DETAIL = 1_000


class DunningFinalAction(StrEnum):
    """What happens to the subscription after the last failed attempt."""

    # It stays PAST_DUE: the merchant decides.
    PAST_DUE = "PAST_DUE"
    CANCEL = "CANCEL"


@dataclass(frozen=True)
class MerchantSettings:
    merchant_id: str
    dunning_final_action: DunningFinalAction = DunningFinalAction.PAST_DUE
    # None while every setting is its default (nothing stored).
    update_time: datetime | None = None


@dataclass(frozen=True)
class PaymentFailure:
    """The subject of an invoice.payment_failed webhook: the invoice with the attempt."""

    invoice: Invoice
    attempt: PaymentAttempt


@dataclass(frozen=True)
class FailureOutcome:
    """The subscription's moves after a failure: PAST_DUE (from ACTIVE), then canceled."""

    past_due: Subscription | None
    cancel: bool


def require_attempt_fields(number: int, detail: str) -> None:
    if not 1 <= number <= MAX_ATTEMPT_NUMBER:
        raise InvalidArgument(
            f"attempt_number must be 1-{MAX_ATTEMPT_NUMBER}", field="attempt_number"
        )
    if len(detail) > MAX_DETAIL:
        raise InvalidArgument(f"detail is longer than {MAX_DETAIL} characters", field="detail")


def reported(invoice: Invoice, number: int) -> PaymentAttempt | None:
    """The attempt of that number already recorded, if any (a repeated report)."""
    return next((a for a in invoice.payment_attempts if a.number == number), None)


def record_failure(invoice: Invoice, attempt: PaymentAttempt) -> Invoice:
    """The invoice with a new failed attempt. Only an OPEN invoice is collected, and no attempt
    comes after the one that ended the schedule."""
    if invoice.status is not InvoiceStatus.OPEN:
        raise FailedPrecondition(
            f"invoice {invoice.id} is {invoice.status}: only an OPEN invoice is collected",
            field="invoice_id",
        )
    last = next((a for a in invoice.payment_attempts if a.next_attempt_time is None), None)
    if last is not None and attempt.number > last.number:
        raise FailedPrecondition(
            f"the collection of invoice {invoice.id} ended with attempt {last.number}",
            field="attempt_number",
        )
    attempts = sorted((*invoice.payment_attempts, attempt), key=lambda a: a.number)
    return replace(invoice, payment_attempts=tuple(attempts))


def after_failure(
    subscription: Subscription, attempt: PaymentAttempt, action: DunningFinalAction
) -> FailureOutcome:
    """An ACTIVE subscription becomes PAST_DUE at a failure; after the last attempt it is
    canceled when the merchant says so. A canceled subscription stays as it is."""
    past_due = None
    if subscription.status is SubscriptionStatus.ACTIVE:
        past_due = replace(
            subscription, status=SubscriptionStatus.PAST_DUE, version=subscription.version + 1
        )
    cancel = (
        attempt.next_attempt_time is None
        and action is DunningFinalAction.CANCEL
        and subscription.status is not SubscriptionStatus.CANCELED
    )
    return FailureOutcome(past_due, cancel)
