"""Usage charges as JSON records (decimal strings: JSON numbers would be read back as floats),
for the stores of both services."""

from decimal import Decimal
from typing import Any

from pricing.charges import PricingModel, Tier, UsageCharge


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def charges_to_json(charges: tuple[UsageCharge, ...]) -> list[dict[str, Any]]:
    return [
        {
            "event_key": c.event_key,
            "model": c.model.value,
            "unit_price": str(c.unit_price),
            "package_size": str(c.package_size),
            "included_quantity": str(c.included_quantity),
            "tiers": [
                {
                    "up_to": _text(t.up_to),
                    "unit_price": str(t.unit_price),
                    "flat_fee": str(t.flat_fee),
                }
                for t in c.tiers
            ],
        }
        for c in charges
    ]


def charges_from_json(stored: list[dict[str, Any]]) -> tuple[UsageCharge, ...]:
    return tuple(
        UsageCharge(
            event_key=c["event_key"],
            model=PricingModel(c["model"]),
            unit_price=Decimal(c["unit_price"]),
            package_size=Decimal(c["package_size"]),
            included_quantity=Decimal(c["included_quantity"]),
            tiers=tuple(
                Tier(
                    up_to=None if t["up_to"] is None else Decimal(t["up_to"]),
                    unit_price=Decimal(t["unit_price"]),
                    flat_fee=Decimal(t["flat_fee"]),
                )
                for t in c["tiers"]
            ),
        )
        for c in stored
    )
