"""Rules a usage event must pass before it is stored (DESIGN.md, seed 001)."""

from datetime import datetime, timedelta
from decimal import Decimal
from functools import lru_cache

from metering_svc.domain.model import (
    InvoiceReference,
    SubscriptionState,
    SubscriptionStatus,
    UsageEvent,
    UsageEventDraft,
)
from pricing.charges import EVERY_KEY, validate_charge
from service_kit.decimals import parse_decimal
from service_kit.errors import FailedPrecondition, InvalidArgument, NotFound
from service_kit.identifiers import require_identifier

QUANTITY_PLACES = 12
MAX_QUANTITY = Decimal(10) ** 15
MAX_IDEMPOTENCY_KEY = 255
MAX_PROPERTIES = 32
MAX_PROPERTY_KEY = 64
MAX_PROPERTY_VALUE = 256


def _check_properties(properties: dict[str, str]) -> None:
    if len(properties) > MAX_PROPERTIES:
        raise InvalidArgument(f"at most {MAX_PROPERTIES} properties", field="properties")
    for key, value in properties.items():
        if not key or len(key) > MAX_PROPERTY_KEY:
            raise InvalidArgument(
                f"property names are 1-{MAX_PROPERTY_KEY} characters",
                field=f"properties.{key[:64]}",
            )
        if len(value) > MAX_PROPERTY_VALUE:
            raise InvalidArgument(
                f"property values are at most {MAX_PROPERTY_VALUE} characters",
                field=f"properties.{key}",
            )


def parse_quantity(text: str, field: str) -> Decimal:
    """A quantity of usage: a decimal >= 0 with at most 12 fractional digits, below 10^15."""
    return parse_decimal(text, field=field, max_places=QUANTITY_PLACES, max_value=MAX_QUANTITY)


# Quantities repeat across a batch; only valid ones (at most 64 characters) are remembered.
@lru_cache(maxsize=4_096)
def _quantity(text: str) -> Decimal:
    return parse_quantity(text, "quantity")


def validate_fields(
    draft: UsageEventDraft,
    *,
    event_id: str,
    merchant_id: str,
    now: datetime,
) -> UsageEvent:
    """Checks everything that needs no stored state. Raises InvalidArgument naming the field.
    An event without occurred_at happened `now`."""
    require_identifier(draft.service_id, "service_id")
    require_identifier(draft.subscription_id, "subscription_id")
    require_identifier(draft.user_id, "user_id")
    require_identifier(draft.event_key, "event_key")
    quantity = _quantity(draft.quantity)
    if draft.invoice_id:
        require_identifier(draft.invoice_id, "invoice_id")
    if len(draft.idempotency_key) > MAX_IDEMPOTENCY_KEY:
        raise InvalidArgument(
            f"idempotency_key is longer than {MAX_IDEMPOTENCY_KEY} characters",
            field="idempotency_key",
        )
    if draft.properties:
        _check_properties(draft.properties)
    return UsageEvent(
        id=event_id,
        merchant_id=merchant_id,
        service_id=draft.service_id,
        subscription_id=draft.subscription_id,
        user_id=draft.user_id,
        event_key=draft.event_key,
        quantity=quantity,
        occurred_at=draft.occurred_at or now,
        invoice_id=draft.invoice_id,
        idempotency_key=draft.idempotency_key,
        properties=draft.properties,
    )


def check_subscription(
    event: UsageEvent,
    subscription: SubscriptionState | None,
    *,
    now: datetime,
    max_clock_skew: timedelta,
) -> None:
    """The subscription exists, is ACTIVE, belongs to the service and user, and its open period
    covers the event, which is not in the subscription's future nor at or after its end, when an
    end is known (no invoice bills it). (The grace window for late events is applied by
    invoicing, which moves the open period forward only once the previous one is closed.)"""
    if subscription is None:
        raise NotFound(f"subscription {event.subscription_id} not found", field="subscription_id")
    if subscription.service_id != event.service_id:
        raise InvalidArgument(
            f"subscription {event.subscription_id} does not belong to service {event.service_id}",
            field="service_id",
        )
    if subscription.user_id != event.user_id:
        raise InvalidArgument(
            f"subscription {event.subscription_id} does not belong to user {event.user_id}",
            field="user_id",
        )
    if subscription.status != SubscriptionStatus.ACTIVE:
        raise FailedPrecondition(
            f"subscription {event.subscription_id} is {subscription.status}, not ACTIVE",
            field="subscription_id",
        )
    if event.occurred_at > subscription.now(now) + max_clock_skew:
        raise InvalidArgument(
            f"occurred_at is more than {max_clock_skew} in the future", field="occurred_at"
        )
    if event.occurred_at < subscription.current_period_start:
        raise FailedPrecondition(
            "occurred_at is before the subscription's open billing period "
            f"(starting {subscription.current_period_start.isoformat()}), which is closed",
            field="occurred_at",
        )
    if subscription.end_time is not None and event.occurred_at >= subscription.end_time:
        raise FailedPrecondition(
            f"occurred_at {event.occurred_at.isoformat()} is too late: the subscription ends at "
            f"{subscription.end_time.isoformat()}",
            field="occurred_at",
        )


MAX_ENTITLEMENTS = 50


def check_entitlements(state: SubscriptionState, prefix: str) -> None:
    """At most 50 distinct features and 50 limits, one per event key."""
    if len(state.features) > MAX_ENTITLEMENTS:
        raise InvalidArgument(f"at most {MAX_ENTITLEMENTS} features", field=f"{prefix}features")
    for index, feature in enumerate(state.features):
        require_identifier(feature, f"{prefix}features[{index}]")
        if feature in state.features[:index]:
            raise InvalidArgument(
                f"feature {feature} appears twice", field=f"{prefix}features[{index}]"
            )
    if len(state.limits) > MAX_ENTITLEMENTS:
        raise InvalidArgument(f"at most {MAX_ENTITLEMENTS} limits", field=f"{prefix}limits")
    keys: set[str] = set()
    for index, limit in enumerate(state.limits):
        field = f"{prefix}limits[{index}].event_key"
        require_identifier(limit.event_key, field)
        if limit.event_key in keys:
            raise InvalidArgument(f"event key {limit.event_key} has two limits", field=field)
        keys.add(limit.event_key)


def check_allowance(state: SubscriptionState, prefix: str) -> None:
    """A prepaid allowance counts from no later than the open period, with 1-50 valid charges
    on distinct keys."""
    allowance = state.prepaid
    if allowance is None:
        return
    field = f"{prefix}prepaid"
    if allowance.since > state.current_period_start:
        raise InvalidArgument(
            "prepaid.since must not be after current_period_start", field=f"{field}.since"
        )
    if not 1 <= len(allowance.charges) <= MAX_ENTITLEMENTS:
        raise InvalidArgument(
            f"prepaid.charges must hold 1-{MAX_ENTITLEMENTS} charges", field=f"{field}.charges"
        )
    keys: set[str] = set()
    for index, charge in enumerate(allowance.charges):
        at = f"{field}.charges[{index}]"
        if charge.event_key != EVERY_KEY:
            require_identifier(charge.event_key, f"{at}.event_key")
        if charge.event_key in keys:
            raise InvalidArgument(
                f"event key {charge.event_key!r} has two charges", field=f"{at}.event_key"
            )
        keys.add(charge.event_key)
        validate_charge(charge, at)


def check_invoice(event: UsageEvent, invoice: InvoiceReference | None) -> None:
    """A linked invoice exists and bills the same service and user."""
    if not event.invoice_id:
        return
    if invoice is None:
        raise NotFound(f"invoice {event.invoice_id} not found", field="invoice_id")
    if invoice.service_id != event.service_id or invoice.user_id != event.user_id:
        raise InvalidArgument(
            f"invoice {event.invoice_id} does not belong to the same service and user",
            field="invoice_id",
        )
