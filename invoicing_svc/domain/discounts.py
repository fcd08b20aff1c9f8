"""Coupons and the discounts they make (Stripe's and Lago's vocabulary).

A coupon is a merchant's offer: a percentage or a fixed amount of USDC off, for one period
invoice (ONCE), the next N (REPEATING) or every one (FOREVER), redeemable a limited number of
times and until a date. A discount is a coupon applied to a subscription or to a customer (every
subscription of theirs with the merchant); a subscription's own discount takes precedence over
its customer's. A period's invoice takes the discount off its charges (fixed fees, usage,
prorations), rounded once, before anything already paid (interim invoices), credits carried from
an earlier invoice and, last, prepaid credits.
"""

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from enum import StrEnum

from invoicing_svc.domain.model import InvoiceLine
from service_kit.decimals import MAX_AMOUNT, USDC_QUANTUM
from service_kit.errors import FailedPrecondition, InvalidArgument

MAX_PERIODS = 120
MAX_NAME = 200
PERCENT_PLACES = Decimal("0.01")


class CouponDuration(StrEnum):
    ONCE = "ONCE"
    REPEATING = "REPEATING"
    FOREVER = "FOREVER"


@dataclass(frozen=True)
class Coupon:
    id: str
    merchant_id: str
    name: str
    # Exactly one of them: a percentage (0 < p <= 100, two decimals) or USDC off an invoice.
    percent_off: Decimal | None
    amount_off: Decimal | None
    duration: CouponDuration
    # REPEATING: how many period invoices it covers.
    duration_periods: int
    # How many discounts it may make (None: no limit), and until when (None: no end).
    max_redemptions: int | None
    redeem_by: datetime | None
    create_time: datetime
    times_redeemed: int = 0


@dataclass(frozen=True)
class Discount:
    """A coupon applied to a subscription (`subscription_id`) or to a customer (`user_id` with
    no subscription). `periods_left`: the period invoices it still covers (None: forever)."""

    id: str
    merchant_id: str
    coupon: Coupon
    subscription_id: str
    user_id: str
    periods_left: int | None
    create_time: datetime
    end_time: datetime | None = None


def validate_coupon(coupon: Coupon) -> None:
    if not coupon.name.strip() or len(coupon.name) > MAX_NAME:
        raise InvalidArgument(f"coupon.name must be 1-{MAX_NAME} characters", field="coupon.name")
    if (coupon.percent_off is None) == (coupon.amount_off is None):
        raise InvalidArgument(
            "a coupon has either percent_off or amount_off", field="coupon.percent_off"
        )
    if coupon.percent_off is not None and not (
        0 < coupon.percent_off <= 100
        and coupon.percent_off == coupon.percent_off.quantize(PERCENT_PLACES)
    ):
        raise InvalidArgument(
            "coupon.percent_off must be above 0 and at most 100, with two decimals at most",
            field="coupon.percent_off",
        )
    if coupon.amount_off is not None and not (
        0 < coupon.amount_off < MAX_AMOUNT
        and coupon.amount_off == coupon.amount_off.quantize(USDC_QUANTUM)
    ):
        raise InvalidArgument(
            "coupon.amount_off must be a positive amount of USDC (6 decimals at most)",
            field="coupon.amount_off",
        )
    repeating = coupon.duration is CouponDuration.REPEATING
    if (
        repeating != (coupon.duration_periods > 0)
        or not 0 <= coupon.duration_periods <= MAX_PERIODS
    ):
        raise InvalidArgument(
            f"coupon.duration_periods is 1-{MAX_PERIODS} for a REPEATING coupon, else unset",
            field="coupon.duration_periods",
        )
    if coupon.max_redemptions is not None and coupon.max_redemptions < 1:
        raise InvalidArgument(
            "coupon.max_redemptions must be at least 1", field="coupon.max_redemptions"
        )


def redeemable(coupon: Coupon, now: datetime) -> None:
    """FAILED_PRECONDITION when the coupon can make no more discounts."""
    if coupon.redeem_by is not None and now >= coupon.redeem_by:
        raise FailedPrecondition(
            f"coupon {coupon.id} could be redeemed until {coupon.redeem_by.isoformat()}",
            field="coupon_id",
        )
    if coupon.max_redemptions is not None and coupon.times_redeemed >= coupon.max_redemptions:
        raise FailedPrecondition(
            f"coupon {coupon.id} was redeemed its {coupon.max_redemptions} times",
            field="coupon_id",
        )


def first_periods(coupon: Coupon) -> int | None:
    """The period invoices a new discount of the coupon covers (None: every one)."""
    match coupon.duration:
        case CouponDuration.ONCE:
            return 1
        case CouponDuration.REPEATING:
            return coupon.duration_periods
        case CouponDuration.FOREVER:
            return None


def discount_line(coupon: Coupon, charges: Decimal) -> InvoiceLine | None:
    """The line taking the coupon off `charges` (the invoice's fees, usage and prorations):
    exact, rounded once half-even to the base unit, never more than the charges."""
    if charges <= 0:
        return None
    if coupon.percent_off is not None:
        off = (charges * coupon.percent_off / 100).quantize(USDC_QUANTUM, ROUND_HALF_EVEN)
        terms = f"{coupon.percent_off.normalize():f}% off"
    else:
        assert coupon.amount_off is not None
        off = min(coupon.amount_off, charges)
        terms = f"{coupon.amount_off:f} USDC off"
    return InvoiceLine(f"Discount: {coupon.name} ({terms})", "", Decimal(1), -off)


def _used_once(discount: Discount, now: datetime) -> Discount:
    """The discount after one more period invoice took it: ended once it covered its last."""
    if discount.periods_left is None:
        return discount
    left = discount.periods_left - 1
    return replace(discount, periods_left=left, end_time=now if left == 0 else None)


def take_discounts(
    running: Sequence[Discount], periods: Sequence[tuple[str, str, str] | None], now: datetime
) -> tuple[list[Coupon | None], list[Discount]]:
    """For period invoices of (merchant, subscription, user), in order (None: one that takes no
    discount, as it charges nothing): the coupon each takes, and the discounts as they are after
    (a customer's discount is taken by each of its subscriptions' invoices in turn, until it
    ends). Only an invoice it takes something off counts one of a discount's periods."""
    before = {d.id: d for d in running}
    state = dict(before)
    own = {(d.merchant_id, d.subscription_id): d.id for d in running if d.subscription_id}
    # A customer is a merchant's: user ids of two merchants may be the same.
    theirs = {(d.merchant_id, d.user_id): d.id for d in running if not d.subscription_id}
    taken: list[Coupon | None] = []
    for period in periods:
        discount = None
        if period is not None:
            merchant_id, subscription_id, user_id = period
            # Its own discount, else its customer's; one that ended in this batch is no more.
            for found in (
                own.get((merchant_id, subscription_id)),
                theirs.get((merchant_id, user_id)),
            ):
                if found is not None and state[found].end_time is None:
                    discount = state[found]
                    break
        taken.append(discount.coupon if discount else None)
        if discount is not None:
            state[discount.id] = _used_once(discount, now)
    return taken, [d for d in state.values() if d != before[d.id]]


def discountable(lines: Sequence[InvoiceLine], carried_in: str) -> Decimal:
    """What a discount is computed on: every line but a credit carried in (named `carried_in`)."""
    return sum((line.amount for line in lines if line.description != carried_in), Decimal(0))
