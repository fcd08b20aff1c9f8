"""Invoicing's domain types."""

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from invoicing_svc.domain.entitlements import UsageLimit
from pricing.charges import UsageCharge
from service_kit.clock import own_time


class TrialEndAction(StrEnum):
    """What ends a trial the subscriber set up no auto-pay mandate for (Stripe's
    `trial_settings.end_behavior.missing_payment_method`)."""

    # Billing goes on: the next periods are invoiced, to be paid on their hosted pages.
    CONVERT = "CONVERT"
    CANCEL = "CANCEL"
    PAUSE = "PAUSE"


class PricingType(StrEnum):
    FIXED_RECURRING = "FIXED_RECURRING"
    USAGE_BASED = "USAGE_BASED"
    HYBRID = "HYBRID"


class BillingInterval(StrEnum):
    DAY = "DAY"
    WEEK = "WEEK"
    MONTH = "MONTH"
    YEAR = "YEAR"


class CheckoutStatus(StrEnum):
    OPEN = "OPEN"
    AWAITING_PAYMENT = "AWAITING_PAYMENT"
    COMPLETE = "COMPLETE"


class SubscriptionStatus(StrEnum):
    ACTIVE = "ACTIVE"
    PAST_DUE = "PAST_DUE"
    # No period runs, no invoice is made, metering refuses usage (pauses.py).
    PAUSED = "PAUSED"
    CANCELED = "CANCELED"


class PaymentFailureReason(StrEnum):
    """Why settlement's attempt to collect an invoice failed."""

    INSUFFICIENT_BALANCE = "INSUFFICIENT_BALANCE"
    ALLOWANCE_TOO_LOW = "ALLOWANCE_TOO_LOW"
    CAP_EXCEEDED = "CAP_EXCEEDED"
    MANDATE_REVOKED = "MANDATE_REVOKED"
    MANDATE_EXPIRED = "MANDATE_EXPIRED"
    NO_MANDATE = "NO_MANDATE"
    REVERTED = "REVERTED"


class InvoiceStatus(StrEnum):
    DRAFT = "DRAFT"
    OPEN = "OPEN"
    PAID = "PAID"
    VOID = "VOID"
    UNCOLLECTIBLE = "UNCOLLECTIBLE"


@dataclass(frozen=True)
class Service:
    id: str
    merchant_id: str
    name: str
    description: str
    create_time: datetime


@dataclass(frozen=True)
class Plan:
    id: str
    merchant_id: str
    service_id: str
    name: str
    pricing_type: PricingType
    billing_interval: BillingInterval
    interval_count: int
    # The recurring fee (FIXED_RECURRING), base fee (HYBRID) or simple unit price (USAGE_BASED).
    amount: Decimal | None
    charges: tuple[UsageCharge, ...]
    create_time: datetime
    currency: str = "USDC"
    # Auto-pay: the most usage a period may add above the fixed fee under a mandate (USDC).
    usage_ceiling: Decimal = Decimal(0)
    # Entitlements, enforced by metering: the features included, and the usage limits per event
    # key and billing period.
    features: tuple[str, ...] = ()
    limits: tuple[UsageLimit, ...] = ()
    # Usage is paid from the subscriber's credits as it happens: metering refuses an event they
    # cannot pay for (USAGE_BASED plans only).
    prepaid_only: bool = False
    # Trials (trials.py): days with no fee before the first period, whether their usage is
    # billed, and what happens at their end without a mandate.
    trial_days: int = 0
    trial_usage_billed: bool = False
    trial_end_action: TrialEndAction = TrialEndAction.CONVERT
    # Versions (plan_versions.py): editing prices makes a new plan, the next version of the same
    # plan; `version_of` is version 1's id ("" for version 1 itself), `superseded_by` the next
    # version's ("" for the latest).
    version: int = 1
    version_of: str = ""
    superseded_by: str = ""

    @property
    def family_id(self) -> str:
        """The id every version of this plan shares: version 1's."""
        return self.version_of or self.id


@dataclass(frozen=True)
class PaymentProof:
    transaction_hash: str
    payer_wallet_address: str


@dataclass(frozen=True)
class CheckoutSession:
    id: str
    merchant_id: str
    plan_id: str
    user_id: str
    success_url: str
    cancel_url: str
    status: CheckoutStatus
    amount_due: Decimal
    create_time: datetime
    payment: PaymentProof | None = None
    settlement_id: str = ""
    subscription_id: str = ""
    complete_time: datetime | None = None


@dataclass(frozen=True)
class InvoiceLine:
    description: str
    event_key: str
    quantity: Decimal
    amount: Decimal


@dataclass(frozen=True)
class PlanSegment:
    """An earlier part of a subscription's current period, before a change of plan: its usage
    is priced by `plan_id`, and its fixed fee is `fee_plan_id`'s (the plan its time is charged
    at, or was paid at up front)."""

    plan_id: str
    fee_plan_id: str
    end: datetime


@dataclass(frozen=True)
class Subscription:
    id: str
    merchant_id: str
    service_id: str
    plan_id: str
    user_id: str
    status: SubscriptionStatus
    # Periods are counted from the anchor, so month ends never drift (Jan 31 -> Feb 28 -> Mar 31).
    billing_anchor: datetime
    period_index: int
    current_period_start: datetime
    current_period_end: datetime
    cancel_at_period_end: bool
    # The fixed fee of the first period was paid at checkout, up to this time.
    fee_prepaid_until: datetime | None
    version: int
    create_time: datetime
    cancel_time: datetime | None = None
    test_clock_time: datetime | None = None
    # Plan changes (plan_changes): the parts of the current period before the last change, the
    # plan the current part's fixed fee is charged at ("" = plan_id), the plan the subscription
    # moves to when the period ends ("" = none), and prorations for the period's invoice.
    plan_segments: tuple[PlanSegment, ...] = ()
    fee_plan_id: str = ""
    scheduled_plan_id: str = ""
    pending_lines: tuple[InvoiceLine, ...] = ()
    # Pauses: when the subscription was paused (None unless PAUSED), and where the usage of a
    # resumed period starts (the pause: events acknowledged before it, stamped after it, are
    # the resumed period's); None = the period's start.
    pause_time: datetime | None = None
    usage_from: datetime | None = None
    # Trials: when the trial ends (None without one; its period is the trial while it ends at
    # or before then), and whether `subscription.trial_will_end` was sent.
    trial_end: datetime | None = None
    trial_reminded: bool = False
    # The subscriber's auto-pay mandate, as settlement reported it ("" for none or revoked).
    mandate_id: str = ""
    mandate_expire_time: datetime | None = None

    def now(self, real_now: datetime) -> datetime:
        """The subscription's present: a test clock may have moved it ahead of real time."""
        return own_time(real_now, self.test_clock_time)

    @property
    def in_trial(self) -> bool:
        """Whether the current period is the trial."""
        return self.trial_end is not None and self.current_period_end <= self.trial_end


@dataclass(frozen=True)
class PaymentAttempt:
    """A failed attempt to collect an invoice; `next_attempt_time` None ends the schedule."""

    number: int
    attempt_time: datetime
    reason: PaymentFailureReason
    detail: str
    next_attempt_time: datetime | None


@dataclass(frozen=True)
class Invoice:
    id: str
    merchant_id: str
    subscription_id: str
    service_id: str
    user_id: str
    plan_id: str
    status: InvoiceStatus
    period_start: datetime | None
    period_end: datetime | None
    amount: Decimal
    create_time: datetime
    lines: tuple[InvoiceLine, ...] = field(default=())
    settlement_id: str = ""
    finalize_time: datetime | None = None
    due_time: datetime | None = None
    paid_time: datetime | None = None
    currency: str = "USDC"
    # Why a period's invoice is held as a DRAFT (it priced at or beyond the bound of money);
    # "" for every other invoice.
    hold_reason: str = ""
    # Failed collection attempts (dunning), by number.
    payment_attempts: tuple[PaymentAttempt, ...] = field(default=())
    # The subscriber's prepaid credits spent on it as it was finalized ("Credits applied").
    credits_applied: Decimal = Decimal(0)
    # A credit top-up: paying it buys the subscriber its amount in prepaid credits.
    top_up: bool = False
    # Progressive billing: the usage of its period so far, billed before the period's end.
    interim: bool = False

    @property
    def next_payment_attempt_time(self) -> datetime | None:
        """While OPEN, when settlement tries to collect again: the last failed attempt's next
        time (None after the last attempt, or with no failed attempt)."""
        if self.status is not InvoiceStatus.OPEN or not self.payment_attempts:
            return None
        return self.payment_attempts[-1].next_attempt_time
