"""What a plan entitles its subscriptions to: features it includes, and limits on how much of an
event key one billing period may use. Metering enforces them from its replica of each
subscription: a SOFT limit is reported by its entitlement checks, a HARD one refused at ingestion.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from pricing.charges import MAX_QUANTITY, PLACES
from service_kit.decimals import parse_decimal
from service_kit.errors import InvalidArgument
from service_kit.identifiers import require_identifier

MAX_FEATURES = 50
MAX_LIMITS = 50


class Enforcement(StrEnum):
    SOFT = "SOFT"
    HARD = "HARD"


@dataclass(frozen=True)
class UsageLimit:
    """The most of `event_key` (its period aggregate, per its meter) one billing period may use."""

    event_key: str
    quantity: Decimal
    enforcement: Enforcement


def parse_limit_quantity(text: str, field: str) -> Decimal:
    """A limit is a quantity of usage: >= 0, at most 12 fractional digits, below metering's
    bound on quantities."""
    return parse_decimal(text, field=field, max_places=PLACES, max_value=MAX_QUANTITY)


def validate_features(features: Sequence[str], field: str = "plan.features") -> None:
    """At most MAX_FEATURES distinct identifiers."""
    if len(features) > MAX_FEATURES:
        raise InvalidArgument(f"at most {MAX_FEATURES} features", field=field)
    seen: set[str] = set()
    for index, feature in enumerate(features):
        at = f"{field}[{index}]"
        require_identifier(feature, at)
        if feature in seen:
            raise InvalidArgument(f"{at} repeats {feature}", field=at)
        seen.add(feature)


def validate_limits(limits: Sequence[UsageLimit], field: str = "plan.limits") -> None:
    """At most MAX_LIMITS limits, one per event key (an identifier); quantities as parsed by
    parse_limit_quantity."""
    if len(limits) > MAX_LIMITS:
        raise InvalidArgument(f"at most {MAX_LIMITS} limits", field=field)
    seen: set[str] = set()
    for index, limit in enumerate(limits):
        at = f"{field}[{index}]"
        require_identifier(limit.event_key, f"{at}.event_key")
        if limit.event_key in seen:
            raise InvalidArgument(
                f"{at}.event_key repeats {limit.event_key}", field=f"{at}.event_key"
            )
        seen.add(limit.event_key)
        _check_quantity(limit.quantity, f"{at}.quantity")


def _check_quantity(value: Decimal, field: str) -> None:
    """parse_limit_quantity's rule, for a limit built in code rather than parsed."""
    exponent = value.normalize().as_tuple().exponent if value.is_finite() else 0
    if not (value.is_finite() and 0 <= value < MAX_QUANTITY and -int(exponent) <= PLACES):
        raise InvalidArgument(
            f"{field} must be >= 0, below {MAX_QUANTITY}, with at most {PLACES} fractional digits",
            field=field,
        )
