"""Protobuf messages <-> metering domain types."""

from billing.metering.v1 import metering_pb2 as pb
from metering_svc.domain.entitlements import Entitlement
from metering_svc.domain.model import (
    Aggregation,
    EventOutcome,
    EventResult,
    InvoiceReference,
    Meter,
    PrepaidAllowance,
    StoredUsageEvent,
    SubscriptionState,
    SubscriptionStatus,
    UsageEventDraft,
    UsageLimit,
)
from metering_svc.domain.validation import parse_quantity
from metering_svc.service_layer.summaries import SummaryQuery, UsageSummary
from pricing.messages import charge_from_proto, charge_to_proto
from service_kit.decimals import MAX_AMOUNT, format_decimal, parse_decimal
from service_kit.errors import InvalidArgument
from service_kit.proto_time import from_timestamp, to_timestamp


def aggregation_from_proto(value: int) -> Aggregation | None:
    if value == pb.AGGREGATION_UNSPECIFIED:
        return None
    try:
        return Aggregation(pb.Aggregation.Name(value).removeprefix("AGGREGATION_"))  # type: ignore[arg-type]
    except ValueError:
        raise InvalidArgument(f"unknown aggregation {value}", field="meter.aggregation") from None


def aggregation_to_proto(value: Aggregation) -> "pb.Aggregation.ValueType":
    return pb.Aggregation.Value(f"AGGREGATION_{value.value}")


def meter_to_proto(meter: Meter) -> pb.Meter:
    return pb.Meter(
        id=meter.id,
        merchant_id=meter.merchant_id,
        service_id=meter.service_id,
        event_key=meter.event_key,
        aggregation=aggregation_to_proto(meter.aggregation),
        unique_property=meter.unique_property,
        display_name=meter.display_name,
        create_time=to_timestamp(meter.create_time),
    )


def draft_from_proto(event: pb.UsageEventInput) -> UsageEventDraft:
    return UsageEventDraft(
        service_id=event.service_id,
        subscription_id=event.subscription_id,
        user_id=event.user_id,
        event_key=event.event_key,
        quantity=event.quantity,
        occurred_at=from_timestamp(event.occurred_at) if event.HasField("occurred_at") else None,
        invoice_id=event.invoice_id,
        idempotency_key=event.idempotency_key,
        # dict() of a protobuf map walks it through the Mapping ABC: slow even when empty.
        properties=dict(event.properties) if event.properties else {},
    )


_OUTCOMES = {
    outcome: pb.UsageEventOutcome.Value(f"USAGE_EVENT_OUTCOME_{outcome.value}")
    for outcome in EventOutcome
}


def result_to_proto(result: EventResult) -> pb.UsageEventResult:
    message = pb.UsageEventResult(
        index=result.index,
        outcome=_OUTCOMES[result.outcome],
        event_id=result.event_id,
    )
    if result.error is not None:
        message.error.CopyFrom(
            pb.UsageEventError(
                code=result.error.code, field=result.error.field, message=result.error.message
            )
        )
    return message


def stored_event_to_proto(stored: StoredUsageEvent) -> pb.UsageEvent:
    event = stored.event
    message = pb.UsageEvent(
        id=event.id,
        service_id=event.service_id,
        subscription_id=event.subscription_id,
        user_id=event.user_id,
        event_key=event.event_key,
        quantity=format_decimal(event.quantity),
        occurred_at=to_timestamp(event.occurred_at),
        invoice_id=event.invoice_id,
        idempotency_key=event.idempotency_key,
        properties=event.properties,
        receive_time=to_timestamp(stored.receive_time),
        cancel_reason=stored.cancel_reason,
    )
    if stored.cancel_time is not None:
        message.cancel_time.CopyFrom(to_timestamp(stored.cancel_time))
    return message


def summary_to_proto(summary: UsageSummary) -> pb.UsageSummary:
    aggregate = summary.aggregate
    return pb.UsageSummary(
        event_key=summary.event_key,
        meter_id=summary.meter.id if summary.meter else "",
        aggregation=aggregation_to_proto(summary.aggregation),
        value=format_decimal(summary.value),
        sum=format_decimal(aggregate.total),
        event_count=aggregate.count,
        max=format_decimal(aggregate.maximum),
        last=format_decimal(aggregate.last),
    )


def summary_query_from_proto(request: pb.GetUsageSummaryRequest) -> SummaryQuery:
    return SummaryQuery(
        subscription_id=request.subscription_id,
        event_key=request.event_key,
        start=from_timestamp(request.start_time) if request.HasField("start_time") else None,
        end=from_timestamp(request.end_time) if request.HasField("end_time") else None,
    )


def summary_response_to_proto(
    query: SummaryQuery, summaries: list[UsageSummary]
) -> pb.GetUsageSummaryResponse:
    response = pb.GetUsageSummaryResponse(
        summaries=[summary_to_proto(summary) for summary in summaries]
    )
    if query.start and query.end:
        response.start_time.CopyFrom(to_timestamp(query.start))
        response.end_time.CopyFrom(to_timestamp(query.end))
    return response


def subscription_state_from_proto(
    message: pb.SubscriptionState, merchant_id: str, prefix: str = "state."
) -> SubscriptionState:
    """`prefix` names the state in error fields: "state." alone, "states[3]." in a batch."""
    if message.status == pb.SUBSCRIPTION_STATUS_UNSPECIFIED:
        raise InvalidArgument(f"{prefix}status is required", field=f"{prefix}status")
    for field in ("current_period_start", "current_period_end"):
        if not message.HasField(field):
            raise InvalidArgument(f"{prefix}{field} is required", field=f"{prefix}{field}")
    try:
        status = SubscriptionStatus(
            pb.SubscriptionStatus.Name(message.status).removeprefix("SUBSCRIPTION_STATUS_")
        )
    except ValueError:
        raise InvalidArgument(f"unknown status {message.status}", field=f"{prefix}status") from None
    return SubscriptionState(
        subscription_id=message.subscription_id,
        merchant_id=merchant_id,
        service_id=message.service_id,
        user_id=message.user_id,
        status=status,
        current_period_start=from_timestamp(message.current_period_start),
        current_period_end=from_timestamp(message.current_period_end),
        version=message.version,
        test_clock_time=(
            from_timestamp(message.test_clock_time) if message.HasField("test_clock_time") else None
        ),
        end_time=from_timestamp(message.end_time) if message.HasField("end_time") else None,
        features=tuple(message.features),
        limits=tuple(
            _limit_from_proto(limit, f"{prefix}limits[{index}].")
            for index, limit in enumerate(message.limits)
        ),
        prepaid=(
            _allowance_from_proto(message.prepaid, f"{prefix}prepaid.")
            if message.HasField("prepaid")
            else None
        ),
    )


def _allowance_from_proto(message: pb.PrepaidAllowance, prefix: str) -> PrepaidAllowance:
    if not message.HasField("since"):
        raise InvalidArgument(f"{prefix}since is required", field=f"{prefix}since")
    return PrepaidAllowance(
        credits=parse_decimal(
            message.credits, field=f"{prefix}credits", max_places=6, max_value=MAX_AMOUNT
        ),
        since=from_timestamp(message.since),
        charges=tuple(
            charge_from_proto(charge, f"{prefix}charges[{index}]")
            for index, charge in enumerate(message.charges)
        ),
    )


def _limit_from_proto(message: pb.UsageLimit, prefix: str) -> UsageLimit:
    if message.enforcement not in (pb.LIMIT_ENFORCEMENT_SOFT, pb.LIMIT_ENFORCEMENT_HARD):
        raise InvalidArgument(
            f"{prefix}enforcement must be SOFT or HARD", field=f"{prefix}enforcement"
        )
    return UsageLimit(
        event_key=message.event_key,
        quantity=parse_quantity(message.quantity, f"{prefix}quantity"),
        hard=message.enforcement == pb.LIMIT_ENFORCEMENT_HARD,
    )


def limit_to_proto(limit: UsageLimit) -> pb.UsageLimit:
    return pb.UsageLimit(
        event_key=limit.event_key,
        quantity=format_decimal(limit.quantity),
        enforcement=pb.LIMIT_ENFORCEMENT_HARD if limit.hard else pb.LIMIT_ENFORCEMENT_SOFT,
    )


def subscription_state_to_proto(state: SubscriptionState) -> pb.SubscriptionState:
    message = pb.SubscriptionState(
        subscription_id=state.subscription_id,
        service_id=state.service_id,
        user_id=state.user_id,
        status=pb.SubscriptionStatus.Value(f"SUBSCRIPTION_STATUS_{state.status.value}"),
        current_period_start=to_timestamp(state.current_period_start),
        current_period_end=to_timestamp(state.current_period_end),
        version=state.version,
        features=state.features,
        limits=[limit_to_proto(limit) for limit in state.limits],
    )
    if state.test_clock_time is not None:
        message.test_clock_time.CopyFrom(to_timestamp(state.test_clock_time))
    if state.end_time is not None:
        message.end_time.CopyFrom(to_timestamp(state.end_time))
    if state.prepaid is not None:
        message.prepaid.CopyFrom(
            pb.PrepaidAllowance(
                credits=f"{state.prepaid.credits:f}",
                since=to_timestamp(state.prepaid.since),
                charges=[charge_to_proto(charge) for charge in state.prepaid.charges],
            )
        )
    return message


def invoice_reference_from_proto(
    message: pb.InvoiceReference, merchant_id: str
) -> InvoiceReference:
    return InvoiceReference(
        invoice_id=message.invoice_id,
        merchant_id=merchant_id,
        service_id=message.service_id,
        user_id=message.user_id,
    )


def invoice_reference_to_proto(reference: InvoiceReference) -> pb.InvoiceReference:
    return pb.InvoiceReference(
        invoice_id=reference.invoice_id, service_id=reference.service_id, user_id=reference.user_id
    )


def entitlement_to_proto(entitlement: Entitlement) -> pb.CheckEntitlementResponse:
    limit = entitlement.limit
    remaining = entitlement.remaining
    message = pb.CheckEntitlementResponse(
        allowed=entitlement.allowed,
        reason=pb.EntitlementReason.Value(f"ENTITLEMENT_REASON_{entitlement.reason.value}"),
        limit=format_decimal(limit.quantity) if limit else "",
        enforcement=(
            limit_to_proto(limit).enforcement if limit else pb.LIMIT_ENFORCEMENT_UNSPECIFIED
        ),
        used=format_decimal(entitlement.used),
        remaining=format_decimal(remaining) if remaining is not None else "",
        period_start=to_timestamp(entitlement.period.start),
    )
    if entitlement.period.end is not None:
        message.period_end.CopyFrom(to_timestamp(entitlement.period.end))
    if entitlement.credits_left is not None:
        message.credits_left = f"{entitlement.credits_left:f}"
    return message
