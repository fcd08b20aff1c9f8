"""Request bodies of the REST API (camelCase JSON). Numbers may be JSON numbers or strings and are
kept exact; the services validate the rest and their errors name the field. Types are strict
where JSON could blur them: a boolean is no number, a moment names its time zone."""

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, Strict
from pydantic.alias_generators import to_camel

from service_kit.decimals import MAX_DECIMAL_TEXT

NUMBER_BOUND = f"must be a number of at most {MAX_DECIMAL_TEXT} characters written out in full"


def _plain_length(value: Decimal) -> int:
    """len(text(value)) of a finite value, from its digits and exponent: nothing is formatted."""
    sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    if exponent >= 0:
        length = len(digits) + exponent
    elif len(digits) + exponent > 0:
        length = len(digits) + 1
    else:
        length = 2 - exponent
    return sign + length


def fits(value: Decimal) -> bool:
    """Whether the value written out in full is a string a service parses (service_kit/decimals.py)
    at all; the services refuse anything longer, and 1e100000000 would take 100 MB to write."""
    return value.is_finite() and _plain_length(value) <= MAX_DECIMAL_TEXT


def _bounded(value: Decimal) -> Decimal:
    if not fits(value):
        raise ValueError(NUMBER_BOUND)
    return value


# A JSON number reaches here as a Decimal (gateway/json_bodies.py bounded it), a string is bounded
# here; Decimal refuses booleans.
Number = Annotated[Decimal, Field(allow_inf_nan=False), AfterValidator(_bounded)]
Count = Annotated[int, Strict()]
Id = Annotated[str, Field(max_length=128)]
Url = Annotated[str, Field(max_length=2000)]


def _storable(moment: datetime) -> datetime:
    """Refuses a moment without a time zone (which instant it means is a guess), and one that
    leaves years 1-9999 once in UTC (0001-01-01T00:00+01:00), which no protobuf Timestamp
    holds."""
    if moment.tzinfo is None:
        raise ValueError("needs a time zone (e.g. Z or +02:00)")
    try:
        moment.astimezone(UTC)
    except OverflowError:
        raise ValueError("out of range once in UTC (years 1 to 9999)") from None
    return moment


Moment = Annotated[datetime, AfterValidator(_storable)]


def text(value: Decimal | None) -> str:
    """A Decimal as the plain string the services take; "" for absent."""
    return "" if value is None else format(value, "f")


class Body(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class ServiceCreate(Body):
    name: Annotated[str, Field(max_length=200)]
    description: Annotated[str, Field(max_length=2000)] = ""


class TierIn(Body):
    up_to: Number | None = None
    unit_price: Number
    flat_fee: Number | None = None


class ChargeIn(Body):
    event_key: Id
    model: Literal["PER_UNIT", "PACKAGE", "GRADUATED", "VOLUME"]
    unit_price: Number | None = None
    package_size: Number | None = None
    tiers: Annotated[list[TierIn], Field(max_length=50)] = []
    included_quantity: Number | None = None


class UsageLimitIn(Body):
    event_key: Id
    quantity: Number
    enforcement: Literal["SOFT", "HARD"]


Features = Annotated[list[Id], Field(max_length=50)]
Limits = Annotated[list[UsageLimitIn], Field(max_length=50)]


class PlanCreate(Body):
    name: Annotated[str, Field(max_length=200)]
    pricing_type: Literal["FIXED_RECURRING", "USAGE_BASED", "HYBRID"]
    billing_interval: Literal["DAY", "WEEK", "MONTH", "YEAR"]
    interval_count: Annotated[Count, Field(ge=1, le=36)] = 1
    amount: Number | None = None
    charges: Annotated[list[ChargeIn], Field(max_length=50)] = []
    usage_ceiling: Number | None = None
    features: Features = []
    limits: Limits = []
    prepaid_only: bool = False
    trial_days: Annotated[Count, Field(ge=0, le=730)] = 0
    trial_usage_billed: bool = False
    trial_end_action: Literal["CONVERT", "CANCEL", "PAUSE"] = "CONVERT"


class PlanVersionCreate(Body):
    amount: Number | None = None
    charges: Annotated[list[ChargeIn], Field(max_length=50)] = []


class PlanMigrationCreate(Body):
    to_plan_id: Id = ""
    dry_run: bool = False
    limit: Annotated[Count, Field(ge=1, le=1000)] = 100
    starting_after: Annotated[str, Field(max_length=500)] = ""


class PlanUpdate(Body):
    """The fields of a plan that change; those present (and not null) are changed."""

    usage_ceiling: Number | None = None
    features: Features | None = None
    limits: Limits | None = None


class MeterCreate(Body):
    service_id: Id
    event_key: Id
    aggregation: Literal["SUM", "COUNT", "MAX", "LAST", "UNIQUE_COUNT"]
    unique_property: Annotated[str, Field(max_length=64)] = ""
    display_name: Annotated[str, Field(max_length=200)] = ""


class CheckoutCreate(Body):
    plan_id: Id
    user_id: Id = ""
    email: Annotated[str, Field(max_length=320)] = ""
    name: Annotated[str, Field(max_length=200)] = ""
    success_url: Url
    cancel_url: Url


class CheckoutComplete(Body):
    transaction_hash: Annotated[str, Field(max_length=66)] = ""
    payer_wallet_address: Annotated[str, Field(max_length=42)] = ""


class SubscriptionCancel(Body):
    at_period_end: bool = False


class SubscriptionPlanChange(Body):
    plan_id: Id
    timing: Annotated[
        Literal["NOW", "PERIOD_END"],
        Field(description="NOW splits the current period; PERIOD_END moves the next one."),
    ] = "NOW"
    proration_behavior: Annotated[
        Literal["CREATE_PRORATIONS", "NONE", "ALWAYS_INVOICE"],
        Field(description="What a change now does to the current period's fixed fee."),
    ] = "CREATE_PRORATIONS"


class UsageEventIn(Body):
    service_id: Id
    subscription_id: Id
    user_id: Id
    event_key: Id
    quantity: Number
    occurred_at: Moment | None = None
    invoice_id: Id = ""
    idempotency_key: Annotated[str, Field(max_length=255)] = ""
    properties: Annotated[
        dict[str, Annotated[str, Field(max_length=256)]], Field(max_length=32)
    ] = {}


class UsageEventCancel(Body):
    reason: Annotated[str, Field(max_length=500)] = ""


class UsageEventCancelByKey(UsageEventCancel):
    subscription_id: Id
    idempotency_key: Annotated[str, Field(min_length=1, max_length=255)]


class UsageEventBatch(Body):
    events: Annotated[list[UsageEventIn], Field(min_length=1)]


class TestClockAdvance(Body):
    seconds: Annotated[Count, Field(ge=1, le=5 * 366 * 86400)]


class InvoiceCreate(Body):
    subscription_id: Id
    payment_plan_id: Id
    amount: Number
    period_start: Moment | None = None
    period_end: Moment | None = None
    # Leave it DRAFT (its lines can still be read, and it is finalized, or voided, later).
    draft: bool = False
    # A credit top-up: paying it buys the customer `amount` of prepaid credits (no period).
    top_up: bool = False


class SettlementCreate(Body):
    invoice_id: Id = ""
    checkout_session_id: Id = ""
    reference_hash: Annotated[str, Field(max_length=66)]
    transaction_hash: Annotated[str, Field(max_length=66)]
    payer_wallet_address: Annotated[str, Field(max_length=42)]
    # Optional and only checked: the payee is the merchant's payout wallet on record.
    merchant_wallet_address: Annotated[str, Field(max_length=42)] = ""


class AutoTopUpUpdate(Body):
    # false removes the auto top-up (threshold and amount are then not read).
    enabled: bool = True
    threshold: Number | None = None
    amount: Number | None = None


class MerchantSettingsUpdate(Body):
    dunning_final_action: Literal["CANCEL", "PAST_DUE"]


EventTypes = Annotated[
    list[Annotated[str, Field(max_length=64)]], Field(min_length=1, max_length=20)
]
Description = Annotated[str, Field(max_length=500)]


class WebhookEndpointCreate(Body):
    url: Url
    event_types: EventTypes
    description: Description = ""


class WebhookEndpointUpdate(Body):
    """Only the fields sent change."""

    url: Url | None = None
    event_types: EventTypes | None = None
    description: Description | None = None


class CreditGrantCreate(Body):
    """Promotional credits for one customer. The priority's range (0-1000) is settlement's rule;
    the bound here is only what the gRPC field (int32) holds."""

    amount: Number
    priority: Annotated[Count, Field(ge=-(2**31), le=2**31 - 1)] = 0
    expire_time: Moment | None = None
    description: Description = ""


class UsageAlertCreate(Body):
    """A threshold watched in each billing period, of a plan's every subscription or of one:
    exactly one of planId and subscriptionId (the service checks which)."""

    plan_id: Id = ""
    subscription_id: Id = ""
    kind: Literal["USAGE_QUANTITY", "INCLUDED_SHARE", "SPEND", "BALANCE"]
    event_key: Id = ""
    threshold: Number
    # Absent: the service's default, NOTIFY.
    action: Literal["NOTIFY", "INVOICE"] | None = None


class Exact(Body):
    """A body whose every key is known: an unknown one is 400, naming it."""

    model_config = ConfigDict(extra="forbid")


# Decimal integers of up to 256 bits (78 digits), as x402 and wallets write them.
Uint256 = Annotated[str, Field(max_length=78, examples=["500000"])]
Address = Annotated[
    str, Field(max_length=42, examples=["0x70997970C51812dc3A010C7d01b50e0d17dc79C8"])
]


class TransferAuthorization(Exact):
    """An EIP-3009 TransferWithAuthorization as x402's `exact` EVM scheme names its fields."""

    from_: Annotated[Address, Field(alias="from")]
    to: Address
    value: Uint256
    valid_after: Uint256
    valid_before: Uint256
    nonce: Annotated[str, Field(max_length=66)]


class SignedAuthorization(Exact):
    """x402's `exact` EVM payload: the authorization and its 65-byte signature (0x + r, s, v)."""

    authorization: TransferAuthorization
    signature: Annotated[str, Field(max_length=132)]


class PermitIn(Exact):
    """The payer's EIP-2612 permit letting the mandate contract move its USDC."""

    value: Uint256
    deadline: Uint256
    signature: Annotated[str, Field(max_length=132)]


class MandateEnrolment(Exact):
    """The payer's signed mandate (and permit) for the checkout's proposal: integers as decimal
    strings, times as unix seconds, as the wallet signed them."""

    payer: Address
    cap: Uint256
    period: Uint256
    expiry: Uint256
    deadline: Uint256
    signature: Annotated[str, Field(max_length=132)]
    permit: PermitIn | None = None


class CouponCreate(Body):
    name: Annotated[str, Field(max_length=200)]
    percent_off: Number | None = None
    amount_off: Number | None = None
    duration: Literal["ONCE", "REPEATING", "FOREVER"]
    duration_periods: Annotated[Count, Field(ge=0, le=120)] = 0
    max_redemptions: Annotated[Count, Field(ge=0, le=2_000_000_000)] = 0
    redeem_by: Moment | None = None


class DiscountCreate(Body):
    coupon_id: Id
    subscription_id: Id = ""
    customer_id: Id = ""
