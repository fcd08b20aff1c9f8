"""Writing metering's replicas of subscriptions and invoices (called by invoicing)."""

from collections.abc import Sequence

from metering_svc.domain.model import InvoiceReference, SubscriptionState
from metering_svc.domain.validation import check_allowance, check_entitlements
from metering_svc.service_layer.unit_of_work import Metering
from service_kit.errors import InvalidArgument, PermissionDenied
from service_kit.identifiers import require_identifier

MAX_STATES_PER_CALL = 1000
MAX_REFERENCES_PER_CALL = 1000


def _check_state(state: SubscriptionState, prefix: str) -> None:
    """`prefix` names the state in error fields ("state." or "states[3].")."""
    require_identifier(state.subscription_id, f"{prefix}subscription_id")
    require_identifier(state.service_id, f"{prefix}service_id")
    require_identifier(state.user_id, f"{prefix}user_id")
    if state.current_period_end <= state.current_period_start:
        raise InvalidArgument(
            "current_period_end must be after current_period_start",
            field=f"{prefix}current_period_end",
        )
    if state.end_time is not None and state.end_time < state.current_period_start:
        raise InvalidArgument(
            "end_time must not be before current_period_start", field=f"{prefix}end_time"
        )
    if state.version < 1:
        raise InvalidArgument("version must be a positive number", field=f"{prefix}version")
    check_entitlements(state, prefix)
    check_allowance(state, prefix)


async def _upsert_states(
    metering: Metering, states: Sequence[SubscriptionState], prefixes: Sequence[str]
) -> list[SubscriptionState]:
    seen: set[str] = set()
    for state, prefix in zip(states, prefixes, strict=True):
        _check_state(state, prefix)
        if state.subscription_id in seen:
            raise InvalidArgument(
                f"subscription {state.subscription_id} appears twice",
                field=f"{prefix}subscription_id",
            )
        seen.add(state.subscription_id)
    async with metering.unit_of_work() as uow:
        stored = await uow.replicas.upsert_subscriptions(states, metering.clock.now())
        for state, prefix in zip(states, prefixes, strict=True):
            if stored[state.subscription_id].merchant_id != state.merchant_id:
                raise PermissionDenied(
                    f"subscription {state.subscription_id} belongs to another merchant",
                    field=f"{prefix}subscription_id",
                )
        await uow.commit()
    metering.entitlements.changed(seen)
    return [stored[state.subscription_id] for state in states]


async def upsert_subscription_state(
    metering: Metering, state: SubscriptionState
) -> SubscriptionState:
    """Stores the state unless a newer version is stored (then returns the stored one)."""
    (stored,) = await _upsert_states(metering, [state], ["state."])
    return stored


async def upsert_subscription_states(
    metering: Metering, states: Sequence[SubscriptionState]
) -> list[SubscriptionState]:
    """Stores each state as `upsert_subscription_state` would, in one transaction: all or none.
    Returns what is stored, in order."""
    if not 1 <= len(states) <= MAX_STATES_PER_CALL:
        raise InvalidArgument(
            f"between 1 and {MAX_STATES_PER_CALL:,} states are required", field="states"
        )
    return await _upsert_states(metering, states, [f"states[{i}]." for i in range(len(states))])


def _check_references(references: Sequence[InvoiceReference], prefixes: Sequence[str]) -> None:
    seen: set[str] = set()
    for reference, prefix in zip(references, prefixes, strict=True):
        require_identifier(reference.invoice_id, f"{prefix}invoice_id")
        require_identifier(reference.service_id, f"{prefix}service_id")
        require_identifier(reference.user_id, f"{prefix}user_id")
        if reference.invoice_id in seen:
            raise InvalidArgument(
                f"invoice {reference.invoice_id} appears twice", field=f"{prefix}invoice_id"
            )
        seen.add(reference.invoice_id)


async def _upsert_references(
    metering: Metering, references: Sequence[InvoiceReference], prefixes: Sequence[str]
) -> list[InvoiceReference]:
    _check_references(references, prefixes)
    async with metering.unit_of_work() as uow:
        stored = await uow.replicas.upsert_invoices(references, metering.clock.now())
        for reference, prefix in zip(references, prefixes, strict=True):
            if stored[reference.invoice_id].merchant_id != reference.merchant_id:
                raise PermissionDenied(
                    f"invoice {reference.invoice_id} belongs to another merchant",
                    field=f"{prefix}invoice_id",
                )
        await uow.commit()
    return [stored[reference.invoice_id] for reference in references]


async def upsert_invoice_reference(
    metering: Metering, reference: InvoiceReference
) -> InvoiceReference:
    """Stores the reference, unless another merchant holds the invoice id."""
    (stored,) = await _upsert_references(metering, [reference], ["invoice."])
    return stored


async def upsert_invoice_references(
    metering: Metering, references: Sequence[InvoiceReference]
) -> list[InvoiceReference]:
    """Stores each reference as `upsert_invoice_reference` would, in one transaction: all or
    none. Returns what is stored, in order."""
    if not 1 <= len(references) <= MAX_REFERENCES_PER_CALL:
        raise InvalidArgument(
            f"between 1 and {MAX_REFERENCES_PER_CALL:,} references are required",
            field="references",
        )
    return await _upsert_references(
        metering, references, [f"references[{i}]." for i in range(len(references))]
    )
