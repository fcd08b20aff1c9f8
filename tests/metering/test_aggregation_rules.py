"""Pure rules: how a window splits into hours, minutes and raw edges, and how partials merge."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from metering_svc.domain.aggregation import PartialAggregate, plan_window
from metering_svc.domain.model import Aggregation

T = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)


def test_a_window_splits_into_whole_hours_whole_minutes_and_partial_minutes() -> None:
    seconds = timedelta(seconds=30)
    plan = plan_window(T + timedelta(minutes=15) + seconds, T + timedelta(hours=3, minutes=20))
    assert plan.hours == (T + timedelta(hours=1), T + timedelta(hours=3))
    assert plan.minutes == (
        (T + timedelta(minutes=16), T + timedelta(hours=1)),
        (T + timedelta(hours=3), T + timedelta(hours=3, minutes=20)),
    )
    assert plan.edges == ((T + timedelta(minutes=15) + seconds, T + timedelta(minutes=16)),)


def test_an_aligned_window_has_only_hours() -> None:
    plan = plan_window(T, T + timedelta(hours=2))
    assert (plan.hours, plan.minutes, plan.edges) == ((T, T + timedelta(hours=2)), (), ())


def test_a_window_inside_one_hour_reads_minutes_and_raw_edges() -> None:
    start, end = T + timedelta(minutes=5, seconds=1), T + timedelta(minutes=50, seconds=2)
    plan = plan_window(start, end)
    assert plan.hours is None
    assert plan.minutes == ((T + timedelta(minutes=6), T + timedelta(minutes=50)),)
    assert plan.edges == (
        (start, T + timedelta(minutes=6)),
        (T + timedelta(minutes=50), end),
    )


def test_a_window_inside_one_minute_is_read_raw() -> None:
    start, end = T + timedelta(seconds=5), T + timedelta(seconds=50)
    assert plan_window(start, end) == type(plan_window(start, end))(None, (), ((start, end),))


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
