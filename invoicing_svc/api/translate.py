"""Protobuf messages <-> invoicing domain types."""

from collections.abc import Callable, Collection
from datetime import datetime
from decimal import Decimal
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message

from billing.invoicing.v1 import invoicing_pb2 as pb
from invoicing_svc.domain.alerts import AlertAction, AlertCrossing, AlertKind, UsageAlert
from invoicing_svc.domain.credits import AutoTopUp, SubscriptionBalance
from invoicing_svc.domain.customers import Customer, CustomerAccess
from invoicing_svc.domain.discounts import Coupon, CouponDuration, Discount
from invoicing_svc.domain.dunning import DunningFinalAction, MerchantSettings, PaymentFailure
from invoicing_svc.domain.entitlements import Enforcement, UsageLimit, parse_limit_quantity
from invoicing_svc.domain.model import (
    BillingInterval,
    CheckoutSession,
    Invoice,
    InvoiceLine,
    PaymentAttempt,
    PaymentFailureReason,
    PaymentProof,
    Plan,
    PricingType,
    Service,
    Subscription,
    SubscriptionStatus,
    TrialEndAction,
)
from invoicing_svc.domain.plan_changes import ChangeTiming, ProrationBehavior
from invoicing_svc.domain.plan_versions import NewPrices
from invoicing_svc.domain.plans import (
    PlanChange,
    auto_pay_cap,
    auto_pay_period_seconds,
    parse_usage_ceiling,
)
from invoicing_svc.domain.webhooks import WebhookDelivery, WebhookEndpoint
from invoicing_svc.service_layer.plan_versions import Migration
from pricing.charges import PricingModel, UsageCharge, parse_price
from pricing.messages import charge_of
from service_kit.decimals import MAX_AMOUNT, format_decimal, parse_decimal
from service_kit.errors import InvalidArgument
from service_kit.ids import new_id
from service_kit.proto_time import from_timestamp, to_timestamp

MAX_QUANTITY = Decimal(10) ** 15


def _enum(value: int, enum: Any, prefix: str, field: str) -> Any:
    """The domain member of a proto enum value; None for *_UNSPECIFIED."""
    if value == 0:
        return None
    try:
        return enum(enum_name(value, prefix))
    except ValueError:
        raise InvalidArgument(f"unknown {field} {value}", field=field) from None


_ENUMS = {
    "PRICING_TYPE_": pb.PricingType,
    "BILLING_INTERVAL_": pb.BillingInterval,
    "CHARGE_MODEL_": pb.ChargeModel,
    "SUBSCRIPTION_STATUS_": pb.SubscriptionStatus,
    "PAYMENT_FAILURE_REASON_": pb.PaymentFailureReason,
    "DUNNING_FINAL_ACTION_": pb.DunningFinalAction,
    "LIMIT_ENFORCEMENT_": pb.LimitEnforcement,
    "USAGE_ALERT_KIND_": pb.UsageAlertKind,
    "USAGE_ALERT_ACTION_": pb.UsageAlertAction,
    "COUPON_DURATION_": pb.CouponDuration,
}
# The fields of a plan UpdatePlan may change (its update_mask paths).
UPDATABLE_PLAN_FIELDS = ("usage_ceiling", "features", "limits")


def subscription_status_from_proto(value: int) -> SubscriptionStatus | None:
    """The status a request filters on; None (any) for SUBSCRIPTION_STATUS_UNSPECIFIED."""
    status: SubscriptionStatus | None = _enum(
        value, SubscriptionStatus, "SUBSCRIPTION_STATUS_", "status"
    )
    return status


def failure_reason_from_proto(value: int) -> PaymentFailureReason:
    reason: PaymentFailureReason | None = _enum(
        value, PaymentFailureReason, "PAYMENT_FAILURE_REASON_", "reason"
    )
    if reason is None:
        raise InvalidArgument("reason is required", field="reason")
    return reason


def final_action_from_proto(value: int) -> DunningFinalAction:
    field = "settings.dunning_final_action"
    action: DunningFinalAction | None = _enum(
        value, DunningFinalAction, "DUNNING_FINAL_ACTION_", field
    )
    if action is None:
        raise InvalidArgument(f"{field} is required", field=field)
    return action


def alert_kind_from_proto(value: int) -> AlertKind | None:
    kind: AlertKind | None = _enum(value, AlertKind, "USAGE_ALERT_KIND_", "alert.kind")
    return kind


def alert_action_from_proto(value: int) -> AlertAction | None:
    action: AlertAction | None = _enum(value, AlertAction, "USAGE_ALERT_ACTION_", "alert.action")
    return action


def alert_to_proto(alert: UsageAlert) -> pb.UsageAlert:
    return pb.UsageAlert(
        id=alert.id,
        plan_id=alert.plan_id,
        subscription_id=alert.subscription_id,
        kind=pb.UsageAlertKind.Value(f"USAGE_ALERT_KIND_{alert.kind.value}"),
        event_key=alert.event_key,
        threshold=format_decimal(alert.threshold),
        action=pb.UsageAlertAction.Value(f"USAGE_ALERT_ACTION_{alert.action.value}"),
        create_time=to_timestamp(alert.create_time),
    )


def crossing_to_proto(crossing: AlertCrossing) -> pb.UsageAlertCrossing:
    alert = crossing.alert
    return pb.UsageAlertCrossing(
        alert_id=alert.id,
        subscription_id=crossing.subscription_id,
        user_id=crossing.user_id,
        event_type=crossing.event_type,
        kind=pb.UsageAlertKind.Value(f"USAGE_ALERT_KIND_{alert.kind.value}"),
        event_key=alert.event_key,
        threshold=format_decimal(crossing.threshold),
        value=format_decimal(crossing.value),
        period_start=to_timestamp(crossing.period_start),
        period_end=to_timestamp(crossing.period_end),
        invoice_id=crossing.invoice_id,
        cross_time=to_timestamp(crossing.cross_time),
    )


def optional_time(message: Message, field: str) -> datetime | None:
    """A timestamp field of a request; None when unset, INVALID_ARGUMENT when out of range."""
    if not message.HasField(field):
        return None
    try:
        return from_timestamp(getattr(message, field))
    except (ValueError, OverflowError):
        raise InvalidArgument(f"{field} is not a valid time", field=field) from None


def enum_name(value: int, prefix: str) -> str:
    try:
        return str(_ENUMS[prefix].Name(value)).removeprefix(prefix)  # type: ignore[arg-type]
    except ValueError:
        return ""


def charge_from_proto(message: pb.UsageCharge, field: str) -> UsageCharge:
    model = _enum(message.model, PricingModel, "CHARGE_MODEL_", f"{field}.model")
    if model is None:
        raise InvalidArgument(f"{field}.model is required", field=f"{field}.model")
    return charge_of(message, model, field)


def limit_from_proto(message: pb.UsageLimit, field: str) -> UsageLimit:
    enforcement = _enum(
        message.enforcement, Enforcement, "LIMIT_ENFORCEMENT_", f"{field}.enforcement"
    )
    if enforcement is None:
        raise InvalidArgument(f"{field}.enforcement is required", field=f"{field}.enforcement")
    return UsageLimit(
        event_key=message.event_key,
        quantity=parse_limit_quantity(message.quantity, f"{field}.quantity"),
        enforcement=enforcement,
    )


def limits_from_proto(message: pb.Plan) -> tuple[UsageLimit, ...]:
    return tuple(
        limit_from_proto(limit, f"plan.limits[{i}]") for i, limit in enumerate(message.limits)
    )


def plan_from_proto(message: pb.Plan, *, plan_id: str, merchant_id: str, now: datetime) -> Plan:
    interval = _enum(
        message.billing_interval, BillingInterval, "BILLING_INTERVAL_", "plan.billing_interval"
    )
    if interval is None:
        raise InvalidArgument("plan.billing_interval is required", field="plan.billing_interval")
    return Plan(
        id=plan_id,
        merchant_id=merchant_id,
        service_id=message.service_id,
        name=message.name,
        pricing_type=_enum(message.pricing_type, PricingType, "PRICING_TYPE_", "plan.pricing_type"),
        billing_interval=interval,
        interval_count=message.interval_count or 1,
        amount=parse_price(message.amount, "plan.amount") if message.amount else None,
        charges=tuple(
            charge_from_proto(charge, f"plan.charges[{i}]")
            for i, charge in enumerate(message.charges)
        ),
        create_time=now,
        usage_ceiling=usage_ceiling_from_proto(message),
        features=tuple(message.features),
        limits=limits_from_proto(message),
        prepaid_only=message.prepaid_only,
        trial_days=message.trial_days,
        trial_usage_billed=message.trial_usage_billed,
        trial_end_action=_trial_end_action(message.trial_end_action),
    )


def usage_ceiling_from_proto(message: pb.Plan) -> Decimal:
    return parse_usage_ceiling(message.usage_ceiling, "plan.usage_ceiling")


def plan_change_from_proto(message: pb.Plan, paths: Collection[str]) -> PlanChange:
    """The fields of `message` an UpdatePlan's mask names; INVALID_ARGUMENT for a mask naming
    none of UPDATABLE_PLAN_FIELDS or any other field."""
    named = set(paths)
    allowed = ", ".join(UPDATABLE_PLAN_FIELDS)
    if not named or not named <= set(UPDATABLE_PLAN_FIELDS):
        raise InvalidArgument(
            f"update_mask must name one or more of {allowed}, and nothing else",
            field="update_mask",
        )
    return PlanChange(
        usage_ceiling=usage_ceiling_from_proto(message) if "usage_ceiling" in named else None,
        features=tuple(message.features) if "features" in named else None,
        limits=limits_from_proto(message) if "limits" in named else None,
    )


def _decimal_text(value: Decimal) -> str:
    return format_decimal(value)


def _money(value: Decimal) -> str:
    """Amounts keep their 6 decimals: "0.500000"."""
    return f"{value.quantize(Decimal('0.000001')):f}"


def service_to_proto(service: Service) -> pb.Service:
    return pb.Service(
        id=service.id,
        name=service.name,
        description=service.description,
        create_time=to_timestamp(service.create_time),
    )


def plan_to_proto(plan: Plan) -> pb.Plan:
    return pb.Plan(
        id=plan.id,
        service_id=plan.service_id,
        name=plan.name,
        pricing_type=pb.PricingType.Value(f"PRICING_TYPE_{plan.pricing_type.value}"),
        billing_interval=pb.BillingInterval.Value(
            f"BILLING_INTERVAL_{plan.billing_interval.value}"
        ),
        interval_count=plan.interval_count,
        amount=_decimal_text(plan.amount) if plan.amount is not None else "",
        currency=plan.currency,
        charges=[
            pb.UsageCharge(
                event_key=c.event_key,
                model=pb.ChargeModel.Value(f"CHARGE_MODEL_{c.model.value}"),
                unit_price=_decimal_text(c.unit_price) if c.unit_price else "",
                package_size=_decimal_text(c.package_size) if c.package_size else "",
                included_quantity=_decimal_text(c.included_quantity) if c.included_quantity else "",
                tiers=[
                    pb.Tier(
                        up_to=_decimal_text(t.up_to) if t.up_to is not None else "",
                        unit_price=_decimal_text(t.unit_price),
                        flat_fee=_decimal_text(t.flat_fee) if t.flat_fee else "",
                    )
                    for t in c.tiers
                ],
            )
            for c in plan.charges
        ],
        create_time=to_timestamp(plan.create_time),
        usage_ceiling=_money(plan.usage_ceiling),
        auto_pay_cap=_money(auto_pay_cap(plan)),
        auto_pay_period_seconds=auto_pay_period_seconds(plan),
        features=plan.features,
        limits=[
            pb.UsageLimit(
                event_key=u.event_key,
                quantity=_decimal_text(u.quantity),
                enforcement=pb.LimitEnforcement.Value(f"LIMIT_ENFORCEMENT_{u.enforcement.value}"),
            )
            for u in plan.limits
        ],
        prepaid_only=plan.prepaid_only,
        trial_days=plan.trial_days,
        trial_usage_billed=plan.trial_usage_billed,
        trial_end_action=pb.TrialEndAction.Value(f"TRIAL_END_ACTION_{plan.trial_end_action.value}"),
        version=plan.version,
        version_of=plan.version_of,
        superseded_by=plan.superseded_by,
    )


def payment_from_proto(message: pb.PaymentProof) -> PaymentProof:
    return PaymentProof(message.transaction_hash, message.payer_wallet_address)


def checkout_to_proto(session: CheckoutSession, base_url: str) -> pb.CheckoutSession:
    message = pb.CheckoutSession(
        id=session.id,
        plan_id=session.plan_id,
        user_id=session.user_id,
        success_url=session.success_url,
        cancel_url=session.cancel_url,
        url=f"{base_url.rstrip('/')}/{session.id}" if base_url else "",
        status=pb.CheckoutSessionStatus.Value(f"CHECKOUT_SESSION_STATUS_{session.status.value}"),
        amount_due=_money(session.amount_due),
        subscription_id=session.subscription_id,
        create_time=to_timestamp(session.create_time),
    )
    if session.payment is not None:
        message.payment.CopyFrom(
            pb.PaymentProof(
                transaction_hash=session.payment.transaction_hash,
                payer_wallet_address=session.payment.payer_wallet_address,
            )
        )
    if session.complete_time is not None:
        message.complete_time.CopyFrom(to_timestamp(session.complete_time))
    return message


def subscription_to_proto(subscription: Subscription) -> pb.Subscription:
    message = pb.Subscription(
        id=subscription.id,
        service_id=subscription.service_id,
        plan_id=subscription.plan_id,
        user_id=subscription.user_id,
        status=pb.SubscriptionStatus.Value(f"SUBSCRIPTION_STATUS_{subscription.status.value}"),
        current_period_start=to_timestamp(subscription.current_period_start),
        current_period_end=to_timestamp(subscription.current_period_end),
        cancel_at_period_end=subscription.cancel_at_period_end,
        create_time=to_timestamp(subscription.create_time),
    )
    if subscription.cancel_time is not None:
        message.cancel_time.CopyFrom(to_timestamp(subscription.cancel_time))
    if subscription.test_clock_time is not None:
        message.test_clock_time.CopyFrom(to_timestamp(subscription.test_clock_time))
    message.scheduled_plan_id = subscription.scheduled_plan_id
    message.fee_plan_id = subscription.fee_plan_id or subscription.plan_id
    message.plan_segments.extend(
        pb.PlanSegment(
            plan_id=segment.plan_id,
            fee_plan_id=segment.fee_plan_id,
            end_time=to_timestamp(segment.end),
        )
        for segment in subscription.plan_segments
    )
    message.pending_lines.extend(line_to_proto(line) for line in subscription.pending_lines)
    if subscription.pause_time is not None:
        message.pause_time.CopyFrom(to_timestamp(subscription.pause_time))
    if subscription.trial_end is not None:
        message.trial_end.CopyFrom(to_timestamp(subscription.trial_end))
    return message


_TRIAL_END_ACTIONS: dict[int, TrialEndAction] = {
    pb.TRIAL_END_ACTION_UNSPECIFIED: TrialEndAction.CONVERT,
    pb.TRIAL_END_ACTION_CONVERT: TrialEndAction.CONVERT,
    pb.TRIAL_END_ACTION_CANCEL: TrialEndAction.CANCEL,
    pb.TRIAL_END_ACTION_PAUSE: TrialEndAction.PAUSE,
}


def _trial_end_action(value: int) -> TrialEndAction:
    if value not in _TRIAL_END_ACTIONS:
        raise InvalidArgument(
            f"plan.trial_end_action {value} is not a TrialEndAction", field="plan.trial_end_action"
        )
    return _TRIAL_END_ACTIONS[value]


_TIMINGS: dict[int, ChangeTiming] = {
    pb.PLAN_CHANGE_TIMING_UNSPECIFIED: ChangeTiming.NOW,
    pb.PLAN_CHANGE_TIMING_NOW: ChangeTiming.NOW,
    pb.PLAN_CHANGE_TIMING_PERIOD_END: ChangeTiming.PERIOD_END,
}
_BEHAVIORS: dict[int, ProrationBehavior] = {
    pb.PRORATION_BEHAVIOR_UNSPECIFIED: ProrationBehavior.CREATE_PRORATIONS,
    pb.PRORATION_BEHAVIOR_CREATE_PRORATIONS: ProrationBehavior.CREATE_PRORATIONS,
    pb.PRORATION_BEHAVIOR_NONE: ProrationBehavior.NONE,
    pb.PRORATION_BEHAVIOR_ALWAYS_INVOICE: ProrationBehavior.ALWAYS_INVOICE,
}


def change_timing(value: int) -> ChangeTiming:
    """NOW unless PERIOD_END is asked for; INVALID_ARGUMENT for a value the enum lacks."""
    if value not in _TIMINGS:
        raise InvalidArgument(f"timing {value} is not a PlanChangeTiming", field="timing")
    return _TIMINGS[value]


def proration_behavior(value: int) -> ProrationBehavior:
    """CREATE_PRORATIONS unless another is asked for."""
    if value not in _BEHAVIORS:
        raise InvalidArgument(
            f"proration_behavior {value} is not a ProrationBehavior", field="proration_behavior"
        )
    return _BEHAVIORS[value]


def customer_to_proto(customer: Customer) -> pb.Customer:
    return pb.Customer(
        id=customer.id,
        email=customer.email,
        name=customer.name,
        wallet_address=customer.wallet_address,
        create_time=to_timestamp(customer.create_time),
    )


def access_to_proto(access: CustomerAccess) -> pb.CustomerAccess:
    return pb.CustomerAccess(
        has_access=access.has_access,
        customers=[customer_to_proto(c) for c in access.customers],
        subscriptions=[subscription_to_proto(s) for s in access.subscriptions],
    )


def line_to_proto(line: InvoiceLine) -> pb.InvoiceLine:
    return pb.InvoiceLine(
        description=line.description,
        event_key=line.event_key,
        quantity=_decimal_text(line.quantity),
        amount=_money(line.amount),
    )


def invoice_to_proto(invoice: Invoice) -> pb.Invoice:
    message = pb.Invoice(
        id=invoice.id,
        subscription_id=invoice.subscription_id,
        service_id=invoice.service_id,
        user_id=invoice.user_id,
        payment_plan_id=invoice.plan_id,
        status=pb.InvoiceStatus.Value(f"INVOICE_STATUS_{invoice.status.value}"),
        currency=invoice.currency,
        amount=_money(invoice.amount),
        lines=[line_to_proto(line) for line in invoice.lines],
        settlement_id=invoice.settlement_id,
        create_time=to_timestamp(invoice.create_time),
        hold_reason=invoice.hold_reason,
        payment_attempts=[attempt_to_proto(a) for a in invoice.payment_attempts],
        credits_applied=_money(invoice.credits_applied),
        top_up=invoice.top_up,
        interim=invoice.interim,
    )
    for name in (
        "period_start",
        "period_end",
        "finalize_time",
        "due_time",
        "paid_time",
        "next_payment_attempt_time",
    ):
        moment = getattr(invoice, name)
        if moment is not None:
            getattr(message, name).CopyFrom(to_timestamp(moment))
    return message


def attempt_to_proto(attempt: PaymentAttempt) -> pb.PaymentAttempt:
    message = pb.PaymentAttempt(
        number=attempt.number,
        attempt_time=to_timestamp(attempt.attempt_time),
        reason=pb.PaymentFailureReason.Value(f"PAYMENT_FAILURE_REASON_{attempt.reason.value}"),
        detail=attempt.detail,
    )
    if attempt.next_attempt_time is not None:
        message.next_attempt_time.CopyFrom(to_timestamp(attempt.next_attempt_time))
    return message


def settings_to_proto(settings: MerchantSettings) -> pb.MerchantSettings:
    message = pb.MerchantSettings(
        dunning_final_action=pb.DunningFinalAction.Value(
            f"DUNNING_FINAL_ACTION_{settings.dunning_final_action.value}"
        )
    )
    if settings.update_time is not None:
        message.update_time.CopyFrom(to_timestamp(settings.update_time))
    return message


def endpoint_to_proto(endpoint: WebhookEndpoint, *, with_secret: bool) -> pb.WebhookEndpoint:
    message = pb.WebhookEndpoint(
        id=endpoint.id,
        url=endpoint.url,
        event_types=list(endpoint.event_types),
        secret=endpoint.secret if with_secret else "",
        create_time=to_timestamp(endpoint.create_time),
        status=pb.WebhookEndpointStatus.Value(f"WEBHOOK_ENDPOINT_STATUS_{endpoint.status}"),
        description=endpoint.description,
    )
    for name in ("failing_since", "disable_time", "previous_secret_expire_time"):
        moment = getattr(endpoint, name)
        if moment is not None:
            getattr(message, name).CopyFrom(to_timestamp(moment))
    return message


def delivery_to_proto(row: WebhookDelivery) -> pb.WebhookDelivery:
    return pb.WebhookDelivery(
        id=row.id,
        endpoint_id=row.endpoint_id,
        event_id=row.event_id,
        event_type=row.event_type,
        status=pb.DeliveryStatus.Value(f"DELIVERY_STATUS_{row.status}"),
        attempt_count=row.attempt_count,
        last_status_code=row.last_status_code,
        last_error=row.last_error,
        next_attempt_time=to_timestamp(row.next_attempt_time),
        create_time=to_timestamp(row.create_time),
        attempts=[
            pb.WebhookAttempt(
                attempt_number=a.attempt_number,
                attempt_time=to_timestamp(a.attempt_time),
                status_code=a.status_code,
                error=a.error,
                duration_ms=a.duration_ms,
            )
            for a in row.attempts
        ],
    )


def settlement_data(summary: pb.SettlementSummary) -> dict[str, Any]:
    """A settlement as its webhooks show it."""
    return json_format.MessageToDict(summary, always_print_fields_with_no_presence=True)


MANDATE_EVENT_TYPES = {
    pb.MANDATE_CHANGE_CREATED: "mandate.created",
    pb.MANDATE_CHANGE_REVOKED: "mandate.revoked",
}


def mandate_data(summary: pb.MandateSummary) -> dict[str, Any]:
    """A mandate as its webhooks show it."""
    return json_format.MessageToDict(summary, always_print_fields_with_no_presence=True)


def attached_settlement(
    request: pb.ConfirmCheckoutPaymentRequest | pb.MarkInvoicePaidRequest,
) -> dict[str, Any] | None:
    """The settlement a payment confirmation carries, if it carries one."""
    return settlement_data(request.settlement) if request.HasField("settlement") else None


def webhook_renderer(checkout_base_url: str) -> Callable[[object], dict[str, Any]]:
    """Renders the `data` of a webhook event: the subject as the API shows it, in JSON."""

    def render(subject: object) -> dict[str, Any]:
        message: Message
        if isinstance(subject, PaymentFailure):
            attempt = _json(attempt_to_proto(subject.attempt))
            # Explicitly null after the last attempt: no retry is coming.
            attempt.setdefault("nextAttemptTime", None)
            return {"invoice": render(subject.invoice), "attempt": attempt}
        if isinstance(subject, Invoice):
            message = invoice_to_proto(subject)
        elif isinstance(subject, AlertCrossing):
            message = crossing_to_proto(subject)
        elif isinstance(subject, Subscription):
            message = subscription_to_proto(subject)
        elif isinstance(subject, CheckoutSession):
            message = checkout_to_proto(subject, checkout_base_url)
        elif isinstance(subject, WebhookEndpoint):
            message = endpoint_to_proto(subject, with_secret=False)
        elif isinstance(subject, Discount):
            message = discount_to_proto(subject)
        else:
            raise TypeError(f"no webhook form for {type(subject).__name__}")
        return _json(message)

    return render


def prices_from_proto(message: pb.CreatePlanVersionRequest) -> NewPrices:
    return NewPrices(
        amount=parse_price(message.amount, "amount") if message.amount else None,
        charges=tuple(
            charge_from_proto(charge, f"charges[{i}]") for i, charge in enumerate(message.charges)
        ),
    )


def migration_to_proto(migration: Migration) -> pb.SubscriptionMigration:
    return pb.SubscriptionMigration(
        subscription_id=migration.subscription.id,
        user_id=migration.subscription.user_id,
        current_amount=_money(migration.current_amount),
        migrated_amount=_money(migration.migrated_amount),
        outcome=pb.MigrationOutcome.Value(f"MIGRATION_OUTCOME_{migration.outcome.value}"),
        reason=migration.reason,
    )


def coupon_from_proto(message: pb.Coupon, merchant_id: str, now: datetime) -> Coupon:
    """A coupon as submitted; decimals are parsed exactly, then `discounts.validate_coupon`
    checks the rest."""
    duration = _enum(message.duration, CouponDuration, "COUPON_DURATION_", "coupon.duration")
    if duration is None:
        raise InvalidArgument("coupon.duration is required", field="coupon.duration")
    return Coupon(
        id=new_id("cpn"),
        merchant_id=merchant_id,
        name=message.name,
        percent_off=parse_decimal(
            message.percent_off, field="coupon.percent_off", max_places=2, max_value=Decimal(101)
        )
        if message.percent_off
        else None,
        amount_off=parse_decimal(
            message.amount_off, field="coupon.amount_off", max_places=6, max_value=MAX_AMOUNT
        )
        if message.amount_off
        else None,
        duration=duration,
        duration_periods=message.duration_periods,
        max_redemptions=message.max_redemptions or None,
        redeem_by=from_timestamp(message.redeem_by) if message.HasField("redeem_by") else None,
        create_time=now,
    )


def coupon_to_proto(coupon: Coupon) -> pb.Coupon:
    message = pb.Coupon(
        id=coupon.id,
        name=coupon.name,
        percent_off=_decimal_text(coupon.percent_off) if coupon.percent_off is not None else "",
        amount_off=_money(coupon.amount_off) if coupon.amount_off is not None else "",
        duration=pb.CouponDuration.Value(f"COUPON_DURATION_{coupon.duration.value}"),
        duration_periods=coupon.duration_periods,
        max_redemptions=coupon.max_redemptions or 0,
        times_redeemed=coupon.times_redeemed,
        create_time=to_timestamp(coupon.create_time),
    )
    if coupon.redeem_by is not None:
        message.redeem_by.CopyFrom(to_timestamp(coupon.redeem_by))
    return message


def discount_to_proto(discount: Discount) -> pb.Discount:
    message = pb.Discount(
        id=discount.id,
        coupon=coupon_to_proto(discount.coupon),
        subscription_id=discount.subscription_id,
        customer_id=discount.user_id,
        create_time=to_timestamp(discount.create_time),
    )
    if discount.periods_left is not None:
        message.periods_left = discount.periods_left
    if discount.end_time is not None:
        message.end_time.CopyFrom(to_timestamp(discount.end_time))
    return message


def _json(message: Message) -> dict[str, Any]:
    return json_format.MessageToDict(message, always_print_fields_with_no_presence=True)


def auto_top_up_to_proto(subscription_id: str, auto_top_up: AutoTopUp | None) -> pb.AutoTopUp:
    if auto_top_up is None:
        return pb.AutoTopUp(subscription_id=subscription_id)
    return pb.AutoTopUp(
        subscription_id=subscription_id,
        enabled=True,
        threshold=_money(auto_top_up.threshold),
        amount=_money(auto_top_up.amount),
        update_time=to_timestamp(auto_top_up.update_time),
    )


def subscription_balance_to_proto(balance: SubscriptionBalance) -> pb.SubscriptionBalance:
    return pb.SubscriptionBalance(
        subscription_id=balance.subscription_id,
        user_id=balance.user_id,
        credit_balance=_money(balance.credit_balance),
        consumed=_money(balance.consumed),
        balance=_money(balance.balance),
        lines=[line_to_proto(line) for line in balance.lines],
        period_start=to_timestamp(balance.period_start),
        period_end=to_timestamp(balance.period_end),
        as_of=to_timestamp(balance.as_of),
    )
