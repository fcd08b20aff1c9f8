"""Usage charges in messages: metering's PricedCharge <-> UsageCharge, one codec for invoicing,
which sends a prepaid-only plan's charges, and metering, which stores and answers them; and the
parsing both services' charge messages share (`charge_of`)."""

from collections.abc import Iterable
from typing import Protocol

from billing.metering.v1 import metering_pb2 as pb
from pricing.charges import PricingModel, Tier, UsageCharge, parse_price, parse_quantity
from service_kit.decimals import format_decimal
from service_kit.errors import InvalidArgument


class TierMessage(Protocol):
    """A tier as both services' messages spell it."""

    @property
    def up_to(self) -> str: ...
    @property
    def unit_price(self) -> str: ...
    @property
    def flat_fee(self) -> str: ...


class ChargeMessage(Protocol):
    """A usage charge as both services' messages spell it (their enums of models differ)."""

    @property
    def event_key(self) -> str: ...
    @property
    def unit_price(self) -> str: ...
    @property
    def package_size(self) -> str: ...
    @property
    def included_quantity(self) -> str: ...
    @property
    def tiers(self) -> Iterable[TierMessage]: ...


def charge_of(message: ChargeMessage, model: PricingModel, field: str) -> UsageCharge:
    """The charge a message states, its numbers parsed (INVALID_ARGUMENT naming `field`.x)."""
    return UsageCharge(
        event_key=message.event_key,
        model=model,
        unit_price=parse_price(message.unit_price, f"{field}.unit_price"),
        package_size=parse_quantity(message.package_size, f"{field}.package_size"),
        included_quantity=parse_quantity(message.included_quantity, f"{field}.included_quantity"),
        tiers=tuple(
            Tier(
                up_to=(
                    parse_quantity(tier.up_to, f"{field}.tiers[{i}].up_to") if tier.up_to else None
                ),
                unit_price=parse_price(tier.unit_price, f"{field}.tiers[{i}].unit_price"),
                flat_fee=parse_price(tier.flat_fee, f"{field}.tiers[{i}].flat_fee"),
            )
            for i, tier in enumerate(message.tiers)
        ),
    )


def charge_from_proto(message: pb.PricedCharge, field: str) -> UsageCharge:
    if message.model == pb.PRICING_MODEL_UNSPECIFIED:
        raise InvalidArgument(f"{field}.model is required", field=f"{field}.model")
    try:
        model = PricingModel(pb.PricingModel.Name(message.model).removeprefix("PRICING_MODEL_"))
    except ValueError:
        raise InvalidArgument(f"unknown model {message.model}", field=f"{field}.model") from None
    return charge_of(message, model, field)


def charge_to_proto(charge: UsageCharge) -> pb.PricedCharge:
    return pb.PricedCharge(
        event_key=charge.event_key,
        model=pb.PricingModel.Value(f"PRICING_MODEL_{charge.model.value}"),
        unit_price=format_decimal(charge.unit_price),
        package_size=format_decimal(charge.package_size),
        included_quantity=format_decimal(charge.included_quantity),
        tiers=[
            pb.PriceTier(
                up_to="" if tier.up_to is None else format_decimal(tier.up_to),
                unit_price=format_decimal(tier.unit_price),
                flat_fee=format_decimal(tier.flat_fee),
            )
            for tier in charge.tiers
        ],
    )
