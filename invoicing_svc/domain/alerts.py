"""Usage alerts: thresholds watched in each billing period of a plan's subscriptions or of one
subscription, what each measures, and when a period crosses it.

A crossing is found by comparing a measure of the period so far with the threshold, so it is the
same whoever looks and however often: each is recorded (and sent) once per alert, subscription,
period and event type, by a unique key.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, localcontext
from enum import StrEnum

from invoicing_svc.domain.credits import SubscriptionBalance
from invoicing_svc.domain.model import Plan
from pricing.charges import EXACT, MAX_QUANTITY, PLACES
from service_kit.decimals import MAX_AMOUNT, parse_decimal
from service_kit.errors import InvalidArgument
from service_kit.identifiers import require_identifier

USAGE_CROSSED = "usage.threshold_crossed"
BALANCE_LOW = "credits.balance_low"
CREDITS_EXHAUSTED = "credits.exhausted"
ZERO = Decimal(0)


class AlertKind(StrEnum):
    USAGE_QUANTITY = "USAGE_QUANTITY"
    INCLUDED_SHARE = "INCLUDED_SHARE"
    SPEND = "SPEND"
    BALANCE = "BALANCE"


class AlertAction(StrEnum):
    NOTIFY = "NOTIFY"
    # Progressive billing: an interim invoice of the usage so far not billed yet.
    INVOICE = "INVOICE"


@dataclass(frozen=True)
class UsageAlert:
    id: str
    merchant_id: str
    # Exactly one of the two: every subscription of the plan, or that one subscription.
    plan_id: str
    subscription_id: str
    kind: AlertKind
    event_key: str
    threshold: Decimal
    action: AlertAction
    create_time: datetime

    @property
    def last_event(self) -> str:
        """The event after which the alert has nothing more to say in a period."""
        return CREDITS_EXHAUSTED if self.kind is AlertKind.BALANCE else USAGE_CROSSED


@dataclass(frozen=True)
class AlertCrossing:
    alert: UsageAlert
    subscription_id: str
    user_id: str
    event_type: str
    # In the measure's unit: units (INCLUDED_SHARE's share of the included quantity) or USDC.
    threshold: Decimal
    value: Decimal
    period_start: datetime
    period_end: datetime
    cross_time: datetime
    # The interim invoice an INVOICE action finalized.
    invoice_id: str = ""

    @property
    def position(self) -> tuple[datetime, str]:
        """Where it sorts among its subscription's crossings (the store orders by the same)."""
        return self.cross_time, f"{self.alert.id} {self.event_type}"


def parse_threshold(kind: AlertKind, text: str) -> Decimal:
    field = "alert.threshold"
    if kind is AlertKind.USAGE_QUANTITY:
        return parse_decimal(
            text, field=field, max_places=PLACES, max_value=MAX_QUANTITY, allow_zero=False
        )
    return parse_decimal(
        text,
        field=field,
        max_places=6,
        max_value=MAX_AMOUNT,
        allow_zero=kind is AlertKind.BALANCE,
    )


def included_quantity(plan: Plan, event_key: str) -> Decimal:
    """What the plan's charge of the key includes per period (0 without one)."""
    charge = next((c for c in plan.charges if c.event_key == event_key), None)
    return charge.included_quantity if charge else ZERO


def validate_alert(alert: UsageAlert) -> None:
    """The alert watches one plan or one subscription, and its fields fit its kind."""
    if bool(alert.plan_id) == bool(alert.subscription_id):
        raise InvalidArgument(
            "give exactly one of plan_id and subscription_id", field="alert.plan_id"
        )
    if alert.kind in (AlertKind.USAGE_QUANTITY, AlertKind.INCLUDED_SHARE):
        require_identifier(alert.event_key, "alert.event_key")
    elif alert.event_key:
        raise InvalidArgument(
            f"a {alert.kind} alert measures no event key", field="alert.event_key"
        )
    if alert.action is AlertAction.INVOICE and alert.kind is not AlertKind.SPEND:
        raise InvalidArgument("only a SPEND alert can INVOICE", field="alert.action")


def validate_for_plan(alert: UsageAlert, plan: Plan) -> None:
    """The plan the alert measures against (its subscription's, for one on a subscription)
    gives it something to measure."""
    if alert.kind is AlertKind.INCLUDED_SHARE and included_quantity(plan, alert.event_key) == 0:
        raise InvalidArgument(
            f"plan {plan.id} includes no quantity of {alert.event_key}", field="alert.event_key"
        )


def crossed(
    alert: UsageAlert,
    plan: Plan,
    usage: Mapping[str, Decimal],
    balance: SubscriptionBalance,
    spend: Decimal,
) -> list[tuple[str, Decimal, Decimal]]:
    """(event type, threshold, value) of each event the period so far has crossed."""
    match alert.kind:
        case AlertKind.USAGE_QUANTITY | AlertKind.INCLUDED_SHARE:
            value = usage.get(alert.event_key, ZERO)
            bound = alert.threshold
            if alert.kind is AlertKind.INCLUDED_SHARE:
                with localcontext(EXACT):
                    bound = included_quantity(plan, alert.event_key) * alert.threshold / 100
            return [(USAGE_CROSSED, bound, value)] if value >= bound else []
        case AlertKind.SPEND:
            return [(USAGE_CROSSED, alert.threshold, spend)] if spend >= alert.threshold else []
        case AlertKind.BALANCE:
            value = balance.balance
            events = [(BALANCE_LOW, alert.threshold, value)] if value < alert.threshold else []
            if value <= 0:
                events.append((CREDITS_EXHAUSTED, ZERO, value))
            return events
