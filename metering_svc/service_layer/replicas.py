"""Writing metering's replicas of subscriptions and invoices (called by invoicing)."""

from metering_svc.domain.model import InvoiceReference, SubscriptionState
from metering_svc.domain.validation import require_identifier
from metering_svc.service_layer.unit_of_work import Metering
from service_kit.errors import InvalidArgument, PermissionDenied


async def upsert_subscription_state(
    metering: Metering, state: SubscriptionState
) -> SubscriptionState:
    """Stores the state unless a newer version is stored (then returns the stored one)."""
    require_identifier(state.subscription_id, "state.subscription_id")
    require_identifier(state.service_id, "state.service_id")
    require_identifier(state.user_id, "state.user_id")
    if state.current_period_end <= state.current_period_start:
        raise InvalidArgument(
            "current_period_end must be after current_period_start",
            field="state.current_period_end",
        )
    if state.version < 1:
        raise InvalidArgument("version must be a positive number", field="state.version")
    async with metering.unit_of_work() as uow:
        stored = await uow.replicas.upsert_subscription(state, metering.clock.now())
        if stored.merchant_id != state.merchant_id:
            raise PermissionDenied(
                f"subscription {state.subscription_id} belongs to another merchant",
                field="state.subscription_id",
            )
        await uow.commit()
    return stored


async def upsert_invoice_reference(
    metering: Metering, reference: InvoiceReference
) -> InvoiceReference:
    require_identifier(reference.invoice_id, "invoice.invoice_id")
    require_identifier(reference.service_id, "invoice.service_id")
    require_identifier(reference.user_id, "invoice.user_id")
    async with metering.unit_of_work() as uow:
        stored = await uow.replicas.upsert_invoice(reference, metering.clock.now())
        if stored.merchant_id != reference.merchant_id:
            raise PermissionDenied(
                f"invoice {reference.invoice_id} belongs to another merchant",
                field="invoice.invoice_id",
            )
        await uow.commit()
    return stored
