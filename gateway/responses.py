"""Response bodies of the REST API, for the OpenAPI document only.

Routes render protobuf replies with `to_json` (camelCase, every scalar present, enums without
their prefix and null when unset, message fields such as timestamps absent when unset, int64 as
strings); these models describe that output. They are declared with `responses=`, never as a
`response_model`, so no reply is validated again at run time (the ingestion path stays as fast).
"""

from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from pydantic.json_schema import SkipJsonSchema

# A decimal string in plain notation ("0.000010"); "" where the value is optional and unset.
Decimal = Annotated[str, Field(pattern=r"^-?[0-9]+(\.[0-9]+)?$", examples=["0.500000"])]
OptionalDecimal = Annotated[str, Field(pattern=r"^(-?[0-9]+(\.[0-9]+)?)?$", examples=["", "1000"])]
# protobuf's JSON renders int64 as a string.
Int64 = Annotated[str, Field(pattern=r"^-?[0-9]+$", examples=["42"])]
# A message field (a timestamp, a nested object) is absent while unset, never null.
Absent = SkipJsonSchema[None]


class Reply(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class Service(Reply):
    id: str
    name: str
    description: str
    create_time: datetime


class Tier(Reply):
    up_to: OptionalDecimal
    unit_price: Decimal
    flat_fee: OptionalDecimal


class UsageCharge(Reply):
    event_key: str
    model: Literal["PER_UNIT", "PACKAGE", "GRADUATED", "VOLUME"] | None
    unit_price: OptionalDecimal
    package_size: OptionalDecimal
    tiers: list[Tier]
    included_quantity: OptionalDecimal


class UsageLimit(Reply):
    event_key: str
    quantity: Decimal
    enforcement: Literal["SOFT", "HARD"] | None


class Plan(Reply):
    id: str
    service_id: str
    name: str
    pricing_type: Literal["FIXED_RECURRING", "USAGE_BASED", "HYBRID"] | None
    billing_interval: Literal["DAY", "WEEK", "MONTH", "YEAR"] | None
    interval_count: int
    amount: OptionalDecimal
    currency: str
    charges: list[UsageCharge]
    create_time: datetime
    usage_ceiling: Annotated[
        Decimal, Field(description="Auto-pay: the most usage a period may add above the fee.")
    ]
    auto_pay_cap: Annotated[
        Decimal, Field(description="The cap per period the hosted checkout proposes, USDC.")
    ]
    auto_pay_period_seconds: Annotated[
        Int64, Field(description="The proposed mandate's period: the shortest billing period.")
    ]
    features: Annotated[list[str], Field(description="Entitlements: the features included.")]
    limits: Annotated[
        list[UsageLimit],
        Field(description="Entitlements: the most of an event key per billing period."),
    ]
    prepaid_only: Annotated[
        bool,
        Field(description="Usage is paid from prepaid credits; events they cannot pay for fail."),
    ]
    trial_days: Annotated[int, Field(description="Days of free trial before the first period.")]
    trial_usage_billed: Annotated[bool, Field(description="Whether trial usage is billed.")]
    trial_end_action: Annotated[
        Literal["CONVERT", "CANCEL", "PAUSE"] | None,
        Field(description="What ends a trial without an auto-pay mandate."),
    ]
    version: Annotated[int, Field(description="The plan's version, from 1.")]
    version_of: Annotated[str, Field(description="Version 1's id; empty for version 1.")]
    superseded_by: Annotated[str, Field(description="The next version's id; empty if latest.")]


class NewSubscriber(Reply):
    email: str
    name: str


class PaymentProof(Reply):
    transaction_hash: str
    payer_wallet_address: str


class PaymentRequest(Reply):
    """What to pay for an invoice or a checkout session and how the payment is bound to it on
    chain: an EIP-3009 TransferWithAuthorization of `tokenAddress` to `payeeWalletAddress` of
    `amountBaseUnits`, whose nonce is `referenceHash`, valid until `expireTime` at the latest."""

    reference_hash: str
    invoice_id: str
    checkout_session_id: str
    user_id: str
    amount: Decimal
    amount_base_units: str
    payee_wallet_address: str
    token_address: str
    chain_id: Int64
    expire_time: datetime
    uri: str
    hosted_url: str
    status: Literal["OPEN", "PAID", "EXPIRED"] | None
    settlement_id: str
    create_time: datetime
    token_name: str
    token_version: str


class CheckoutSession(Reply):
    id: str
    plan_id: str
    user_id: str
    new_subscriber: NewSubscriber | Absent = None
    success_url: str
    cancel_url: str
    url: str
    status: Literal["OPEN", "AWAITING_PAYMENT", "COMPLETE"] | None
    amount_due: Decimal
    subscription_id: str
    payment: PaymentProof | Absent = None
    create_time: datetime
    complete_time: datetime | Absent = None
    # Not in lists: the request to pay a session with an amount due; null otherwise.
    payment_request: PaymentRequest | None = None


class InvoiceLine(Reply):
    description: str
    event_key: str
    quantity: OptionalDecimal
    amount: Decimal


class PlanSegment(Reply):
    plan_id: Annotated[str, Field(description="The plan that priced the part's usage.")]
    fee_plan_id: Annotated[str, Field(description="The plan its time is charged at.")]
    end_time: Annotated[datetime, Field(description="When the part ended: the change.")]


class Subscription(Reply):
    id: str
    service_id: str
    plan_id: str
    user_id: str
    status: Literal["ACTIVE", "PAST_DUE", "PAUSED", "CANCELED"] | None
    current_period_start: datetime
    current_period_end: datetime
    cancel_at_period_end: bool
    cancel_time: datetime | Absent = None
    create_time: datetime
    test_clock_time: datetime | Absent = None
    scheduled_plan_id: Annotated[
        str, Field(description="The plan it moves to at currentPeriodEnd; empty for none.")
    ]
    plan_segments: Annotated[
        list[PlanSegment],
        Field(description="The current period's parts before changes of plan made in it."),
    ]
    fee_plan_id: Annotated[
        str, Field(description="The plan the current part's fixed fee is charged at.")
    ]
    pending_lines: Annotated[
        list[InvoiceLine],
        Field(description="Prorations of plan changes that the period's invoice will bill."),
    ]
    pause_time: Annotated[datetime | Absent, Field(description="Set while PAUSED.")] = None
    trial_end: Annotated[
        datetime | Absent, Field(description="When its trial ends; absent without one.")
    ] = None


class Customer(Reply):
    id: Annotated[str, Field(description="The user id subscriptions and usage events name.")]
    email: str
    name: str
    wallet_address: Annotated[
        str, Field(description="The wallet of the latest checkout payment; empty before any.")
    ]
    create_time: datetime


class CustomerAccess(Reply):
    has_access: Annotated[bool, Field(description="Whether a subscription is ACTIVE.")]
    customers: list[Customer]
    subscriptions: Annotated[list[Subscription], Field(description="The ACTIVE ones.")]


class PaymentAttempt(Reply):
    """A failed attempt to collect the invoice through the subscriber's mandate."""

    number: int
    attempt_time: datetime
    reason: (
        Literal[
            "INSUFFICIENT_BALANCE",
            "ALLOWANCE_TOO_LOW",
            "CAP_EXCEEDED",
            "MANDATE_REVOKED",
            "MANDATE_EXPIRED",
            "NO_MANDATE",
            "REVERTED",
        ]
        | None
    )
    detail: str
    next_attempt_time: Annotated[
        datetime | Absent, Field(description="Absent after the last attempt.")
    ] = None


class Invoice(Reply):
    id: str
    subscription_id: str
    service_id: str
    user_id: str
    payment_plan_id: str
    status: Literal["DRAFT", "OPEN", "PAID", "VOID", "UNCOLLECTIBLE"] | None
    period_start: datetime | Absent = None
    period_end: datetime | Absent = None
    currency: str
    amount: Decimal
    lines: list[InvoiceLine]
    settlement_id: str
    create_time: datetime
    finalize_time: datetime | Absent = None
    due_time: datetime | Absent = None
    paid_time: datetime | Absent = None
    # Why a DRAFT is held (its period priced beyond 10^15 USDC); "" otherwise.
    hold_reason: str
    payment_attempts: Annotated[
        list[PaymentAttempt], Field(description="Failed collection attempts, by number.")
    ]
    next_payment_attempt_time: Annotated[
        datetime | Absent,
        Field(description="While OPEN, when the next collection attempt is due."),
    ] = None
    credits_applied: Annotated[
        Decimal,
        Field(
            description='Prepaid credits spent on it as it was finalized (its "Credits applied"'
            " line, as a positive amount); 0.000000 when none."
        ),
    ]
    top_up: Annotated[
        bool,
        Field(description="A credit top-up: paying it buys the customer its amount in credits."),
    ]
    interim: Annotated[
        bool,
        Field(
            description="Progressive billing: a SPEND alert with action INVOICE billed the"
            " period's usage so far; the period's own invoice bills the rest."
        ),
    ]
    # Not in lists: the request to pay an OPEN or PAID invoice (null for any other status, or
    # while the merchant has no payout wallet); only the answers of reads, creation and
    # finalization carry it.
    payment_request: PaymentRequest | None = None


class PlanChangeResult(Reply):
    subscription: Subscription
    invoice: Annotated[
        Invoice | Absent,
        Field(description="The prorations invoiced at once (ALWAYS_INVOICE, an upgrade)."),
    ] = None


class Meter(Reply):
    id: str
    merchant_id: str
    service_id: str
    event_key: str
    aggregation: Literal["SUM", "COUNT", "MAX", "LAST", "UNIQUE_COUNT"] | None
    unique_property: str
    display_name: str
    create_time: datetime


Outcome = Literal["ACCEPTED", "DUPLICATE", "REJECTED"]


class UsageEventRecorded(Reply):
    event_id: str
    outcome: Outcome | None


class UsageEventError(Reply):
    code: str
    field: str
    message: str


class UsageEventResult(Reply):
    index: Int64
    outcome: Outcome | None
    event_id: str
    error: UsageEventError | Absent = None


class UsageEventBatchRecorded(Reply):
    results: list[UsageEventResult]
    accepted_count: Int64
    duplicate_count: Int64
    rejected_count: Int64


class UsageEvent(Reply):
    id: str
    service_id: str
    subscription_id: str
    user_id: str
    event_key: str
    quantity: Decimal
    occurred_at: datetime
    invoice_id: str
    idempotency_key: str
    properties: dict[str, str]
    receive_time: datetime
    cancel_time: datetime | Absent = None
    cancel_reason: str


class UsageSummary(Reply):
    event_key: str
    meter_id: str
    aggregation: Literal["SUM", "COUNT", "MAX", "LAST", "UNIQUE_COUNT"] | None
    value: Decimal
    sum: Decimal
    event_count: Int64
    max: OptionalDecimal
    last: OptionalDecimal


class UsageSummaries(Reply):
    summaries: list[UsageSummary]
    start_time: datetime
    end_time: datetime


class Settlement(Reply):
    id: str
    invoice_id: str
    checkout_session_id: str
    reference_hash: str
    transaction_hash: str
    payer_wallet_address: str
    merchant_wallet_address: str
    status: Literal["PENDING", "CONFIRMED", "FAILED"] | None
    failure_reason: (
        Literal[
            "REVERTED",
            "NO_TRANSFER",
            "WRONG_TOKEN",
            "WRONG_PAYER",
            "WRONG_RECIPIENT",
            "SHORT_AMOUNT",
            "EXPIRED",
            "TRANSACTION_USED",
        ]
        | None
    )
    failure_detail: str
    amount_due: Decimal
    amount_paid: OptionalDecimal
    block_number: Int64
    confirmations: Int64
    create_time: datetime
    confirm_time: datetime | Absent = None
    user_id: str
    origin: Literal["PROOF", "RELAY", "WATCHER", "MANDATE"] | None


class Mandate(Reply):
    id: str
    subscription_id: str
    user_id: str
    payer_wallet_address: str
    merchant_wallet_address: str
    contract_address: str
    cap: Annotated[Decimal, Field(description="The cap per period, USDC.")]
    cap_base_units: Annotated[str, Field(description="The cap in base units.")]
    period_seconds: Int64
    expire_time: datetime
    status: Literal["PENDING", "ACTIVE", "REVOKED", "EXPIRED"] | None
    transaction_hash: str
    create_time: datetime


class MandateProposal(Reply):
    """The mandate the hosted checkout asks the subscriber's wallet to sign, and the permit."""

    subscription_id: str
    cap: Annotated[Decimal, Field(description="The cap per period: the fee plus the ceiling.")]
    cap_base_units: Int64
    period_seconds: Int64
    expiry: Annotated[Int64, Field(description="Unix seconds: the subscription start plus a year.")]
    expire_time: datetime
    allowance_base_units: Annotated[
        str, Field(description="The permit's value: the cap for every period until the expiry.")
    ]
    contract_address: str
    chain_id: Int64
    merchant_wallet_address: str
    token_address: str
    token_name: str
    token_version: str


class CheckoutMandate(Reply):
    proposal: MandateProposal | None
    mandate: Mandate | None


class PayoutWallet(Reply):
    wallet_address: str
    update_time: datetime


class Balance(Reply):
    account: str
    debit_balance: Annotated[Decimal, Field(description="Debits minus credits.")]
    currency: str


class JournalEntry(Reply):
    transaction_id: str
    kind: Annotated[str, Field(examples=["invoice", "invoice_void", "payment"])]
    reference: str
    account: str
    debit: Decimal
    credit: Decimal
    currency: str
    create_time: datetime


class CreditGrant(Reply):
    """Credits of one customer, spent on its invoices as they are finalized: lower `priority`
    first, then the soonest to expire, then the oldest."""

    id: str
    user_id: str
    source: Annotated[
        Literal["PROMOTIONAL", "PAYMENT", "TOP_UP"] | None,
        Field(
            description="A merchant's grant, USDC a payment left beyond what it owed, or a paid"
            " top-up invoice."
        ),
    ]
    amount: Annotated[Decimal, Field(description="The credits granted, USDC.")]
    remaining: Annotated[
        Decimal, Field(description="What is left to spend; 0.000000 once expired.")
    ]
    priority: int
    expire_time: Annotated[
        datetime | Absent, Field(description="Absent for credits that do not expire.")
    ] = None
    description: str
    reference: Annotated[
        str,
        Field(
            description="The settlement or credit whose USDC funded it, or the top-up invoice;"
            " empty if granted."
        ),
    ]
    status: Literal["ACTIVE", "SPENT", "EXPIRED"] | None
    create_time: datetime


class CreditBalance(Reply):
    user_id: str
    balance: Annotated[
        Decimal, Field(description="What the live grants hold: the next invoices fall by it.")
    ]
    expiring: Annotated[Decimal, Field(description="The part of the balance that expires.")]
    next_expire_time: Annotated[
        datetime | Absent, Field(description="The soonest expiry; absent when nothing expires.")
    ] = None
    currency: str


class Difference(Reply):
    kind: str
    reference: str
    expected: str
    actual: str


class Reconciliation(Reply):
    differences: list[Difference]
    invoices_checked: Int64
    settlements_checked: Int64


class SubscriptionBalance(Reply):
    subscription_id: str
    user_id: str
    credit_balance: Annotated[
        Decimal, Field(description="The customer's prepaid credits with the merchant.")
    ]
    consumed: Annotated[
        Decimal,
        Field(
            description="What the current period has consumed so far: its invoice, before"
            " credits, if no more usage came before its end."
        ),
    ]
    balance: Annotated[
        Decimal, Field(description="creditBalance - consumed; negative once it is exceeded.")
    ]
    lines: list[InvoiceLine]
    period_start: datetime
    period_end: datetime
    as_of: datetime


class AutoTopUp(Reply):
    subscription_id: str
    enabled: Annotated[bool, Field(description="false when the subscription has none.")]
    threshold: Annotated[
        Decimal | Literal[""],
        Field(description="A top-up is invoiced when the balance falls below this."),
    ]
    amount: Annotated[Decimal | Literal[""], Field(description="What each top-up buys.")]
    update_time: datetime | Absent = None


class MerchantSettings(Reply):
    dunning_final_action: Annotated[
        Literal["CANCEL", "PAST_DUE"] | None,
        Field(
            description="After the last failed collection attempt of an invoice: CANCEL its"
            " subscription now, or leave it PAST_DUE (the default)."
        ),
    ]
    update_time: Annotated[
        datetime | Absent, Field(description="Absent while every setting is its default.")
    ] = None


class WebhookEndpoint(Reply):
    id: str
    url: str
    event_types: list[str]
    secret: Annotated[str, Field(description="Shown once, in the answer to its creation.")]
    create_time: datetime
    status: Annotated[
        Literal["ENABLED", "DISABLED"] | None,
        Field(description="DISABLED once every attempt has failed for days: it is sent nothing."),
    ]
    failing_since: Annotated[
        datetime | Absent, Field(description="Since when every attempt has failed.")
    ] = None
    disable_time: datetime | Absent = None
    description: str
    previous_secret_expire_time: Annotated[
        datetime | Absent,
        Field(description="Until when the secret before the last roll still signs deliveries."),
    ] = None


class WebhookEndpointDeleted(Reply):
    id: str
    deleted: Literal[True]


AlertKind = Literal["USAGE_QUANTITY", "INCLUDED_SHARE", "SPEND", "BALANCE"]


class UsageAlert(Reply):
    """A threshold watched in each billing period: each crossing is recorded, and sent as a
    webhook, once per period and subscription."""

    id: str
    plan_id: Annotated[str, Field(description="The plan whose every subscription it watches.")]
    subscription_id: Annotated[str, Field(description="Or the one subscription it watches.")]
    kind: Annotated[
        AlertKind | None,
        Field(
            description="USAGE_QUANTITY: the event key's period aggregate reaches `threshold`"
            " units; INCLUDED_SHARE: `threshold` percent of the plan's included quantity of the"
            " key; SPEND: the period's usage costs `threshold` USDC; BALANCE: the real-time"
            " balance falls below `threshold` USDC (and to zero)."
        ),
    ]
    event_key: Annotated[str, Field(description="USAGE_QUANTITY and INCLUDED_SHARE; else empty.")]
    threshold: Decimal
    action: Annotated[
        Literal["NOTIFY", "INVOICE"] | None,
        Field(description="NOTIFY sends the webhook; INVOICE (SPEND) bills the usage so far."),
    ]
    create_time: datetime


class UsageAlertDeleted(Reply):
    id: str
    deleted: Literal[True]


class UsageAlertCrossing(Reply):
    """A crossing of an alert in one billing period of one subscription."""

    alert_id: str
    subscription_id: str
    user_id: str
    event_type: Literal["usage.threshold_crossed", "credits.balance_low", "credits.exhausted"]
    kind: AlertKind | None
    event_key: str
    threshold: Annotated[
        Decimal,
        Field(
            description="The threshold crossed, in the kind's unit (INCLUDED_SHARE: in units);"
            " 0 for credits.exhausted."
        ),
    ]
    value: Annotated[Decimal, Field(description="What was measured when it was found.")]
    period_start: datetime
    period_end: datetime
    invoice_id: Annotated[
        str, Field(description="The interim invoice an INVOICE action finalized; else empty.")
    ]
    cross_time: datetime


class WebhookAttempt(Reply):
    attempt_number: int
    attempt_time: datetime
    status_code: int
    error: str
    duration_ms: int


class WebhookDelivery(Reply):
    id: str
    endpoint_id: str
    event_id: str
    event_type: str
    status: Literal["PENDING", "SUCCEEDED", "FAILED"] | None
    attempt_count: int
    last_status_code: int
    last_error: str
    next_attempt_time: datetime | Absent = None
    create_time: datetime
    attempts: list[WebhookAttempt]


Item = TypeVar("Item", bound=Reply)


class Page(Reply, Generic[Item]):
    """A list: `nextStartingAfter` goes into `startingAfter` for the next page."""

    object: Literal["list"]
    data: list[Item]
    has_more: bool
    next_starting_after: str | None


class ErrorDetail(Reply):
    type: str
    code: str
    message: str
    param: str | None


class ErrorEnvelope(Reply):
    error: ErrorDetail


class Health(Reply):
    status: Literal["ok"]


class Readiness(Reply):
    status: Literal["ok", "unavailable"]
    backends: dict[str, bool]


_ERRORS = {
    400: "The request is invalid; `param` names the field.",
    401: "The API key is missing or not valid.",
    403: "The operation is not allowed here.",
    404: "No such object for this merchant.",
    409: "A conflict: the object's state, or an Idempotency-Key reused or still running.",
    413: "The body is larger than the limit.",
    429: "Rate limited: retry after `Retry-After` seconds.",
    503: "A billing service is unavailable; retry later.",
}
# The public payment operations' wording (they take no API key: no 401).
_PUBLIC_ERRORS = {
    **_ERRORS,
    400: "The body or the authorization is invalid; `param` names the field.",
    404: "No such invoice or checkout session.",
    409: "Nothing to pay (paid, void, no payout wallet), the authorization's nonce is used on "
    "chain, the payer lacks the amount, or the relay is not configured.",
    503: "A billing service or the chain is unavailable; retry later.",
}
# Every merchant route can answer these, whatever it does.
_ALWAYS = (400, 401, 413, 429, 503)


def public(model: Any, status: int = 202) -> dict[str, Any]:
    """Keyword arguments of a public route answering `model` with `status`: no 401 (it takes
    no API key) and its own wording of each error."""
    responses: dict[int | str, dict[str, Any]] = {status: {"model": model}}
    for error in (400, 404, 409, 413, 429, 503):
        responses[error] = {"model": ErrorEnvelope, "description": _PUBLIC_ERRORS[error]}
    return {"response_model": None, "status_code": status, "responses": responses}


def documented(model: Any, *errors: int, status: int = 200) -> dict[str, Any]:
    """Keyword arguments of a merchant route answering `model` with `status`, the error envelope
    for the statuses every merchant route has, and the route's own `errors`."""
    responses: dict[int | str, dict[str, Any]] = {status: {"model": model}}
    for error in sorted({*_ALWAYS, *errors}):
        responses[error] = {"model": ErrorEnvelope, "description": _ERRORS[error]}
    return {"response_model": None, "status_code": status, "responses": responses}


class EntitlementCheck(Reply):
    allowed: Annotated[bool, Field(description="Whether the feature or the quantity may be used.")]
    reason: Literal[
        "FEATURE_INCLUDED",
        "FEATURE_NOT_INCLUDED",
        "NO_LIMIT",
        "WITHIN_LIMIT",
        "SOFT_LIMIT_EXCEEDED",
        "HARD_LIMIT_EXCEEDED",
        "SUBSCRIPTION_INACTIVE",
        "INSUFFICIENT_CREDITS",
    ]
    limit: Annotated[OptionalDecimal, Field(description='The limit per period; "" without one.')]
    enforcement: Literal["SOFT", "HARD"] | None
    used: Annotated[Decimal, Field(description="The event key's aggregate in the period so far.")]
    remaining: Annotated[
        OptionalDecimal, Field(description='What is left of the limit, at least "0"; "" without.')
    ]
    period_start: datetime
    period_end: Annotated[
        datetime | Absent,
        Field(description="Absent while the period after the last one is not opened yet."),
    ] = None
    credits_left: Annotated[
        OptionalDecimal,
        Field(description='Prepaid-only plans: the credits less the usage\'s cost; "" otherwise.'),
    ] = ""


class Coupon(Reply):
    """An offer: a percentage or an amount off period invoices, for one, N or every period."""

    id: str
    name: str
    percent_off: Annotated[OptionalDecimal, Field(description='Percent off; "" for amountOff.')]
    amount_off: Annotated[OptionalDecimal, Field(description='USDC off; "" for percentOff.')]
    duration: Literal["ONCE", "REPEATING", "FOREVER"] | None
    duration_periods: Annotated[int, Field(description="REPEATING: the periods covered.")]
    max_redemptions: Annotated[int, Field(description="The most discounts; 0 = no limit.")]
    redeem_by: Annotated[
        datetime | Absent, Field(description="Applicable until then; absent = no end.")
    ] = None
    times_redeemed: int
    create_time: datetime


class Discount(Reply):
    """A coupon applied to a subscription, or to a customer (each of their subscriptions
    without a discount of its own)."""

    id: str
    coupon: Coupon
    subscription_id: Annotated[str, Field(description="Empty for a customer's discount.")]
    customer_id: str
    periods_left: Annotated[
        int | Absent, Field(description="Period invoices it still covers; absent = forever.")
    ] = None
    create_time: datetime
    end_time: Annotated[
        datetime | Absent, Field(description="When it ended (used up or deleted).")
    ] = None


class SubscriptionMigration(Reply):
    subscription_id: str
    user_id: str
    current_amount: Annotated[
        Decimal, Field(description="Its next invoice on its version, on this period's usage.")
    ]
    migrated_amount: Annotated[Decimal, Field(description="The same on the target version.")]
    outcome: Literal["SCHEDULED", "SKIPPED"] | None
    reason: Annotated[str, Field(description="Why it was skipped; empty when scheduled.")]


class PlanMigration(Page[SubscriptionMigration]):
    to_plan_id: str
