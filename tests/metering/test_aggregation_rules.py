"""Pure rules: how a window splits into hourly buckets and edges, and how partials merge."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from metering_svc.domain.aggregation import PartialAggregate, plan_window
from metering_svc.domain.model import Aggregation

T = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)


def test_a_window_splits_into_whole_hours_and_partial_edges() -> None:
    plan = plan_window(T + timedelta(minutes=15), T + timedelta(hours=3, minutes=20))
    assert plan.buckets == (T + timedelta(hours=1), T + timedelta(hours=3))
    assert plan.edges == (
        (T + timedelta(minutes=15), T + timedelta(hours=1)),
        (T + timedelta(hours=3), T + timedelta(hours=3, minutes=20)),
    )


def test_an_aligned_window_has_no_edges() -> None:
    plan = plan_window(T, T + timedelta(hours=2))
    assert plan.buckets == (T, T + timedelta(hours=2))
    assert plan.edges == ()


def test_a_window_inside_one_hour_is_read_raw() -> None:
    plan = plan_window(T + timedelta(minutes=5), T + timedelta(minutes=50))
    assert plan.buckets is None
    assert plan.edges == ((T + timedelta(minutes=5), T + timedelta(minutes=50)),)


def test_partials_merge_exactly_and_last_follows_position() -> None:
    early = PartialAggregate(Decimal("5.25"), 2, Decimal("5"), Decimal("0.25"), (T, 7))
    late = PartialAggregate(
        Decimal("0.000001"), 1, Decimal("0.000001"), Decimal("0.000001"), (T, 9)
    )
    merged = early.merge(late)
    assert merged == late.merge(early)
    assert merged.value(Aggregation.SUM) == Decimal("5.250001")
    assert merged.value(Aggregation.COUNT) == 3
    assert merged.value(Aggregation.MAX) == 5
    assert merged.value(Aggregation.LAST) == Decimal("0.000001")
    assert merged.value(Aggregation.UNIQUE_COUNT, unique_count=4) == 4
    assert PartialAggregate().merge(early) == early
