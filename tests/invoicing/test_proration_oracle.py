"""Plan-change prorations and fee days checked against an independent oracle.

The oracle below does its own calendar arithmetic (dates, `calendar.monthrange`, ordinals and
integer seconds), its own shares (`Fraction`) and its own rounding (an exact `Decimal` division
quantized ROUND_HALF_EVEN); it never calls the functions under test. The rule: a period's fixed
fee is owed by days, every started day (24 h from the period's start) counting, the day of a
change being the old plan's.
"""

import calendar
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from invoicing_svc.domain.invoice_lines import PartUsage, fee_lines
from invoicing_svc.domain.model import (
    BillingInterval,
    InvoiceLine,
    Plan,
    PlanSegment,
    PricingType,
    Subscription,
    SubscriptionStatus,
)
from invoicing_svc.domain.periods import period_bounds
from invoicing_svc.domain.plan_changes import (
    ProrationBehavior,
    changed_now,
    elapsed_days,
    period_days,
    period_parts,
    proration_lines,
    remaining_share,
)

D = Decimal
SECONDS_PER_DAY = 86_400
CREATED = datetime(2023, 1, 1, tzinfo=UTC)
PROPERTY = settings(max_examples=200, deadline=None)


# --- The oracle -------------------------------------------------------------------------------


def oracle_fee(plan: Plan) -> Decimal:
    """The fixed fee per period: the amount of FIXED_RECURRING and HYBRID plans, else 0."""
    if plan.pricing_type in (PricingType.FIXED_RECURRING, PricingType.HYBRID):
        return plan.amount if plan.amount is not None else D(0)
    return D(0)


def oracle_add_months(day: date, months: int) -> date:
    """`day` moved `months` calendar months on, its day of the month clamped to the month's end
    (the anchor's day, so Jan 31 -> Feb 29 -> Mar 31)."""
    total = day.year * 12 + (day.month - 1) + months
    year, month = divmod(total, 12)
    month += 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def oracle_period_start_date(
    anchor: date, interval: BillingInterval, count: int, index: int
) -> date:
    steps = count * index
    if interval is BillingInterval.DAY:
        return date.fromordinal(anchor.toordinal() + steps)
    if interval is BillingInterval.WEEK:
        return date.fromordinal(anchor.toordinal() + 7 * steps)
    if interval is BillingInterval.MONTH:
        return oracle_add_months(anchor, steps)
    return oracle_add_months(anchor, 12 * steps)


def oracle_period(
    anchor: datetime, interval: BillingInterval, count: int, index: int
) -> tuple[datetime, datetime]:
    """Period `index` counted from the anchor, each bound at the anchor's time of day."""
    clock = anchor.timetz()
    first = oracle_period_start_date(anchor.date(), interval, count, index)
    following = oracle_period_start_date(anchor.date(), interval, count, index + 1)
    return datetime.combine(first, clock), datetime.combine(following, clock)


def oracle_seconds(moment: datetime) -> int:
    """Whole seconds since 0001-01-01 00:00 UTC (every moment here is UTC, whole seconds)."""
    assert moment.utcoffset() == timedelta(0) and moment.microsecond == 0
    return (
        moment.date().toordinal() * SECONDS_PER_DAY
        + moment.hour * 3600
        + moment.minute * 60
        + moment.second
    )


def ceil_days(seconds: int) -> int:
    return -(-seconds // SECONDS_PER_DAY)


def oracle_period_days(start: datetime, end: datetime) -> int:
    return ceil_days(oracle_seconds(end) - oracle_seconds(start))


def oracle_elapsed(start: datetime, end: datetime, at: datetime) -> int:
    """The started days of the period at `at`, in [0, the period's days]."""
    days = ceil_days(oracle_seconds(at) - oracle_seconds(start))
    return min(max(days, 0), oracle_period_days(start, end))


def oracle_remaining(start: datetime, end: datetime, at: datetime) -> Fraction:
    days = oracle_period_days(start, end)
    return Fraction(days - oracle_elapsed(start, end, at), days)


def oracle_round(value: Fraction) -> Decimal:
    """The exact rational rounded once to 6 decimals, ROUND_HALF_EVEN: the quotient is computed
    with far more digits than any fee x share here needs (a tie is a terminating decimal, so it
    is computed exactly)."""
    with localcontext() as context:
        context.prec = 120
        exact = D(value.numerator) / D(value.denominator)
        return exact.quantize(D("0.000001"), rounding=ROUND_HALF_EVEN)


def oracle_day_text(at: datetime) -> str:
    return f"{at.year:04d}-{at.month:02d}-{at.day:02d}"


def oracle_prorations(
    paid: Plan, target: Plan, start: datetime, end: datetime, at: datetime
) -> tuple[InvoiceLine, ...]:
    share = oracle_remaining(start, end, at)
    if share == 0:
        return ()
    fraction = f"{share.numerator}/{share.denominator} of the period"
    lines = []
    if (old_fee := oracle_fee(paid)) > 0:
        lines.append(
            InvoiceLine(
                f"Unused time on {paid.name} after {oracle_day_text(at)} ({fraction})",
                "",
                D(1),
                -oracle_round(Fraction(old_fee) * share),
            )
        )
    if (new_fee := oracle_fee(target)) > 0:
        lines.append(
            InvoiceLine(
                f"Remaining time on {target.name} after {oracle_day_text(at)} ({fraction})",
                "",
                D(1),
                oracle_round(Fraction(new_fee) * share),
            )
        )
    return tuple(lines)


@dataclass(frozen=True)
class OraclePart:
    fee_plan: Plan
    start: datetime
    end: datetime


def oracle_owed_days(
    parts: list[OraclePart], start: datetime, end: datetime, until: datetime
) -> list[tuple[Plan, int]]:
    """Each fee plan's days, consecutive parts charged at one plan merged; a part's days are
    the days started by its end (or `until`) less those started by its start."""
    owed: list[tuple[Plan, int]] = []
    for part in parts:
        part_end = min(part.end, until)
        days = oracle_elapsed(start, end, part_end) - oracle_elapsed(start, end, part.start)
        days = max(days, 0)
        if days == 0:
            continue
        if owed and owed[-1][0].id == part.fee_plan.id:
            owed[-1] = (owed[-1][0], owed[-1][1] + days)
        else:
            owed.append((part.fee_plan, days))
    return owed


def oracle_fee_lines(
    parts: list[OraclePart], start: datetime, end: datetime, until: datetime
) -> list[InvoiceLine]:
    days = oracle_period_days(start, end)
    lines = []
    for plan, owed in oracle_owed_days(parts, start, end, until):
        fee, share = oracle_fee(plan), Fraction(owed, days)
        if fee == 0 or share == 0:
            continue
        description = f"{plan.name}: fixed fee"
        if share != 1:
            description += f" x {share.numerator}/{share.denominator} of the period"
        lines.append(InvoiceLine(description, "", D(1), oracle_round(Fraction(fee) * share)))
    return lines


# --- Builders ---------------------------------------------------------------------------------


def make_plan(
    plan_id: str,
    name: str,
    amount: Decimal | None,
    pricing_type: PricingType = PricingType.FIXED_RECURRING,
    interval: BillingInterval = BillingInterval.MONTH,
    count: int = 1,
) -> Plan:
    return Plan(
        id=plan_id,
        merchant_id="m_1",
        service_id="svc_1",
        name=name,
        pricing_type=pricing_type,
        billing_interval=interval,
        interval_count=count,
        amount=amount,
        charges=(),
        create_time=CREATED,
    )


def make_subscription(
    plan: Plan, anchor: datetime, start: datetime, end: datetime, prepaid_until: datetime | None
) -> Subscription:
    return Subscription(
        id="sub_1",
        merchant_id="m_1",
        service_id="svc_1",
        plan_id=plan.id,
        user_id="u_1",
        status=SubscriptionStatus.ACTIVE,
        billing_anchor=anchor,
        period_index=0,
        current_period_start=start,
        current_period_end=end,
        cancel_at_period_end=False,
        fee_prepaid_until=prepaid_until,
        version=3,
        create_time=anchor,
    )


def usage(plan: Plan, fee_plan: Plan, start: datetime, end: datetime) -> PartUsage:
    return PartUsage(plan, fee_plan, start, end, {})


# --- Strategies -------------------------------------------------------------------------------

SPECIAL_DAYS = (
    [date(year, 1, day) for year in range(2023, 2030) for day in (28, 29, 30, 31)]
    + [date(year, 2, 28) for year in range(2023, 2030)]
    + [date(2024, 2, 29), date(2028, 2, 29)]
)

anchor_days = st.one_of(
    st.sampled_from(SPECIAL_DAYS),
    st.dates(min_value=date(2023, 1, 1), max_value=date(2029, 12, 31)),
)
anchor_clocks = st.one_of(
    st.just(time(0, 0, 0)),
    st.times().map(lambda clock: clock.replace(microsecond=0)),
)
anchors = st.builds(
    lambda day, clock: datetime.combine(day, clock.replace(tzinfo=UTC)), anchor_days, anchor_clocks
)
fees = st.one_of(
    st.just(D(0)),
    st.sampled_from([D("0.000001"), D("0.000003"), D("30"), D("90.000000"), D("10000")]),
    st.integers(min_value=1, max_value=10**10).map(lambda units: D(units).scaleb(-6)),
    st.decimals(min_value=0, max_value=10_000, places=6, allow_nan=False, allow_infinity=False),
)
names = st.sampled_from(["Basic", "Pro", "Team plan", "Ünïcode €", "x"])


@st.composite
def plans(draw: st.DrawFn, plan_id: str) -> Plan:
    pricing_type = draw(st.sampled_from(list(PricingType)))
    amount: Decimal | None = draw(fees)
    if pricing_type is PricingType.USAGE_BASED:
        amount = draw(st.one_of(st.none(), fees))
    return make_plan(plan_id, draw(names), amount, pricing_type)


@dataclass(frozen=True)
class Period:
    anchor: datetime
    interval: BillingInterval
    count: int
    index: int
    start: datetime
    end: datetime


@st.composite
def periods(draw: st.DrawFn) -> Period:
    anchor = draw(anchors)
    interval = draw(st.sampled_from(list(BillingInterval)))
    count = draw(st.integers(min_value=1, max_value=3))
    index = draw(st.integers(min_value=0, max_value=30))
    start, end = oracle_period(anchor, interval, count, index)
    return Period(anchor, interval, count, index, start, end)


@st.composite
def moments(draw: st.DrawFn, start: datetime, end: datetime) -> datetime:
    """A whole second in [start, end], often at, just before or just after a day boundary."""
    total = oracle_seconds(end) - oracle_seconds(start)
    days = total // SECONDS_PER_DAY
    near_boundary = st.builds(
        lambda day, shift: min(max(day * SECONDS_PER_DAY + shift, 0), total),
        st.integers(min_value=0, max_value=days),
        st.sampled_from([-1, 0, 1]),
    )
    # The middle of an even period leaves 1/2: with an odd fee in base units, a tie to round.
    middle = st.builds(
        lambda shift: min(max((days // 2) * SECONDS_PER_DAY + shift, 0), total),
        st.sampled_from([-SECONDS_PER_DAY + 1, -1, 0]),
    )
    offset = draw(st.one_of(st.integers(min_value=0, max_value=total), near_boundary, middle))
    return start + timedelta(seconds=offset)


def described_share(line: InvoiceLine) -> Fraction:
    """The share a fee line says it charges: "x k/n of the period", or the whole period."""
    if " x " not in line.description:
        return Fraction(1)
    fraction = line.description.split(" x ", 1)[1].removesuffix(" of the period")
    return Fraction(fraction)


# --- 1. Prorations of a fee paid up front -----------------------------------------------------


@PROPERTY
@given(data=st.data(), period=periods(), paid=plans("plan_old"), target=plans("plan_new"))
def test_period_bounds_days_and_prorations_match_the_oracle(
    data: st.DataObject, period: Period, paid: Plan, target: Plan
) -> None:
    start, end = period.start, period.end
    at = data.draw(moments(start, end), label="at")

    assert period_bounds(period.anchor, period.interval, period.count, period.index) == (
        start,
        end,
    )
    assert period_days(start, end) == oracle_period_days(start, end)
    assert elapsed_days(start, end, at) == oracle_elapsed(start, end, at)
    assert remaining_share(start, end, at) == oracle_remaining(start, end, at)
    assert proration_lines(paid, target, start, end, at) == oracle_prorations(
        paid, target, start, end, at
    )


# --- 2. Arrears: a period split at a change ---------------------------------------------------


@PROPERTY
@given(
    data=st.data(),
    period=periods(),
    old=plans("plan_old"),
    new=plans("plan_new"),
    fee_stays_old=st.booleans(),
)
def test_arrears_fee_of_a_period_split_at_a_change_matches_the_oracle(
    data: st.DataObject, period: Period, old: Plan, new: Plan, fee_stays_old: bool
) -> None:
    start, end = period.start, period.end
    at = data.draw(moments(start, end), label="at")
    # ProrationBehavior.NONE keeps the old plan's fee for the rest of the period.
    new_fee_plan = old if fee_stays_old else new
    parts = [usage(old, old, start, at), usage(new, new_fee_plan, at, end)]
    expected = oracle_fee_lines(
        [OraclePart(old, start, at), OraclePart(new_fee_plan, at, end)], start, end, end
    )

    lines = fee_lines(parts, start, end, until=end)

    assert lines == expected
    # The day of the change is counted once: the two plans' days make the whole period.
    days = oracle_period_days(start, end)
    old_days = oracle_elapsed(start, end, at)
    new_days = days - old_days
    assert Fraction(old_days, days) + Fraction(new_days, days) == 1
    if fee_stays_old and oracle_fee(old) > 0:
        assert [line.description for line in lines] == [f"{old.name}: fixed fee"]
    if not fee_stays_old and oracle_fee(old) > 0 and oracle_fee(new) > 0 and 0 < old_days < days:
        assert len(lines) == 2
        assert described_share(lines[0]) + described_share(lines[1]) == 1


# --- 3. Canceled after a change ---------------------------------------------------------------


@PROPERTY
@given(data=st.data(), period=periods(), old=plans("plan_old"), new=plans("plan_new"))
def test_a_cancellation_after_a_change_owes_each_plan_its_started_days(
    data: st.DataObject, period: Period, old: Plan, new: Plan
) -> None:
    start, end = period.start, period.end
    at = data.draw(moments(start, end), label="at")
    until = data.draw(moments(at, end), label="until")
    parts = [usage(old, old, start, at), usage(new, new, at, end)]

    lines = fee_lines(parts, start, end, until=until)

    days = oracle_period_days(start, end)
    old_days = oracle_elapsed(start, end, at)
    new_days = oracle_elapsed(start, end, until) - old_days
    assert 0 <= old_days + new_days <= days
    assert lines == oracle_fee_lines(
        [OraclePart(old, start, at), OraclePart(new, at, end)], start, end, until
    )


# --- 4. Worked examples, to the base unit -----------------------------------------------------

BASIC = make_plan("plan_basic", "Basic", D("30"))
PREMIUM = make_plan("plan_premium", "Premium", D("90.000000"), PricingType.HYBRID)
LEAP_ANCHOR = datetime(2024, 1, 31, tzinfo=UTC)
FEB_START, FEB_END = datetime(2024, 1, 31, tzinfo=UTC), datetime(2024, 2, 29, tzinfo=UTC)
FEB_CHANGE = datetime(2024, 2, 10, 12, tzinfo=UTC)


def test_monthly_leap_february_change_worked_example() -> None:
    # Jan 31 -> Feb 29 2024 is 29 days; Feb 10 12:00 is 10.5 days in: 11 days started (the old
    # plan's), 18 left. 30 x 18/29 = 18.620689655... and 90 x 18/29 = 55.862068965...
    assert period_bounds(LEAP_ANCHOR, BillingInterval.MONTH, 1, 0) == (FEB_START, FEB_END)
    assert period_bounds(LEAP_ANCHOR, BillingInterval.MONTH, 1, 1) == (
        FEB_END,
        datetime(2024, 3, 31, tzinfo=UTC),
    )
    assert period_days(FEB_START, FEB_END) == 29
    assert elapsed_days(FEB_START, FEB_END, FEB_CHANGE) == 11
    assert remaining_share(FEB_START, FEB_END, FEB_CHANGE) == Fraction(18, 29)

    assert proration_lines(BASIC, PREMIUM, FEB_START, FEB_END, FEB_CHANGE) == (
        InvoiceLine(
            "Unused time on Basic after 2024-02-10 (18/29 of the period)",
            "",
            D(1),
            D("-18.620690"),
        ),
        InvoiceLine(
            "Remaining time on Premium after 2024-02-10 (18/29 of the period)",
            "",
            D(1),
            D("55.862069"),
        ),
    )
    # In arrears: 30 x 11/29 = 11.379310344... for Basic, 55.862069 for Premium.
    parts = [
        usage(BASIC, BASIC, FEB_START, FEB_CHANGE),
        usage(PREMIUM, PREMIUM, FEB_CHANGE, FEB_END),
    ]
    assert fee_lines(parts, FEB_START, FEB_END, until=FEB_END) == [
        InvoiceLine("Basic: fixed fee x 11/29 of the period", "", D(1), D("11.379310")),
        InvoiceLine("Premium: fixed fee x 18/29 of the period", "", D(1), D("55.862069")),
    ]


def test_yearly_period_from_a_leap_day_worked_example() -> None:
    # 2024-02-29 -> 2025-02-28 is 365 days; 2024-08-31 00:00:01 is 184 days and 1 s in, so 185
    # days started and 180 left: 180/365 = 36/73.
    anchor = datetime(2024, 2, 29, tzinfo=UTC)
    start, end = anchor, datetime(2025, 2, 28, tzinfo=UTC)
    at = datetime(2024, 8, 31, 0, 0, 1, tzinfo=UTC)
    yearly_old = make_plan("plan_y1", "Yearly", D("299.99"), interval=BillingInterval.YEAR)
    yearly_new = make_plan("plan_y2", "Yearly Max", D("1200"), interval=BillingInterval.YEAR)

    assert period_bounds(anchor, BillingInterval.YEAR, 1, 0) == (start, end)
    assert period_bounds(anchor, BillingInterval.YEAR, 1, 4) == (
        datetime(2028, 2, 29, tzinfo=UTC),
        datetime(2029, 2, 28, tzinfo=UTC),
    )
    assert period_days(start, end) == 365
    assert elapsed_days(start, end, at) == 185
    # 299.99 x 36/73 = 147.940273972...; 1200 x 36/73 = 591.780821917...
    assert proration_lines(yearly_old, yearly_new, start, end, at) == (
        InvoiceLine(
            "Unused time on Yearly after 2024-08-31 (36/73 of the period)",
            "",
            D(1),
            D("-147.940274"),
        ),
        InvoiceLine(
            "Remaining time on Yearly Max after 2024-08-31 (36/73 of the period)",
            "",
            D(1),
            D("591.780822"),
        ),
    )
    # In arrears: 299.99 x 37/73 = 152.049726027...; 1200 x 36/73 as above.
    parts = [usage(yearly_old, yearly_old, start, at), usage(yearly_new, yearly_new, at, end)]
    assert fee_lines(parts, start, end, until=end) == [
        InvoiceLine("Yearly: fixed fee x 37/73 of the period", "", D(1), D("152.049726")),
        InvoiceLine("Yearly Max: fixed fee x 36/73 of the period", "", D(1), D("591.780822")),
    ]


def test_daily_period_change_is_the_old_plans_day_worked_example() -> None:
    start, end = datetime(2025, 6, 1, tzinfo=UTC), datetime(2025, 6, 2, tzinfo=UTC)
    at = datetime(2025, 6, 1, 10, tzinfo=UTC)
    daily_old = make_plan("plan_d1", "Daily", D("1.5"), interval=BillingInterval.DAY)
    daily_new = make_plan("plan_d2", "Daily Plus", D("4"), interval=BillingInterval.DAY)

    assert period_bounds(start, BillingInterval.DAY, 1, 0) == (start, end)
    assert period_days(start, end) == 1
    assert remaining_share(start, end, at) == 0
    assert proration_lines(daily_old, daily_new, start, end, at) == ()
    parts = [usage(daily_old, daily_old, start, at), usage(daily_new, daily_new, at, end)]
    assert fee_lines(parts, start, end, until=end) == [
        InvoiceLine("Daily: fixed fee", "", D(1), D("1.500000")),
    ]


def test_weekly_period_change_on_and_after_a_day_boundary_worked_example() -> None:
    # Every 2 weeks from Monday 2025-03-03 09:00; period 3 is 2025-04-14 09:00 -> 04-28 09:00.
    anchor = datetime(2025, 3, 3, 9, tzinfo=UTC)
    start, end = datetime(2025, 4, 14, 9, tzinfo=UTC), datetime(2025, 4, 28, 9, tzinfo=UTC)
    weekly_old = make_plan("plan_w1", "Weekly", D("10"), interval=BillingInterval.WEEK, count=2)
    weekly_new = make_plan(
        "plan_w2", "Weekly Pro", D("25.5"), interval=BillingInterval.WEEK, count=2
    )
    assert period_bounds(anchor, BillingInterval.WEEK, 2, 3) == (start, end)
    assert period_days(start, end) == 14

    # Exactly 6 days in: 6 started, 8/14 = 4/7 left. 10 x 4/7 = 5.7142857..., 25.5 x 4/7 =
    # 14.5714285...
    on_boundary = datetime(2025, 4, 20, 9, tzinfo=UTC)
    assert proration_lines(weekly_old, weekly_new, start, end, on_boundary) == (
        InvoiceLine(
            "Unused time on Weekly after 2025-04-20 (4/7 of the period)",
            "",
            D(1),
            D("-5.714286"),
        ),
        InvoiceLine(
            "Remaining time on Weekly Pro after 2025-04-20 (4/7 of the period)",
            "",
            D(1),
            D("14.571429"),
        ),
    )
    # One second later the 7th day has started: 7/14 = 1/2 left.
    after_boundary = on_boundary + timedelta(seconds=1)
    assert proration_lines(weekly_old, weekly_new, start, end, after_boundary) == (
        InvoiceLine(
            "Unused time on Weekly after 2025-04-20 (1/2 of the period)", "", D(1), D("-5.000000")
        ),
        InvoiceLine(
            "Remaining time on Weekly Pro after 2025-04-20 (1/2 of the period)",
            "",
            D(1),
            D("12.750000"),
        ),
    )


def test_ties_round_half_even_worked_example() -> None:
    # Half of a 2-day period: 0.000005 / 2 = 0.0000025 -> 0.000002 and 0.000003 / 2 = 0.0000015
    # -> 0.000002 (to the even unit), 0.000001 / 2 = 0.0000005 -> 0.000000.
    start, end = datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 1, 3, tzinfo=UTC)
    at = datetime(2025, 1, 1, 23, 59, 59, tzinfo=UTC)
    five = make_plan("plan_5", "Five", D("0.000005"), interval=BillingInterval.DAY, count=2)
    three = make_plan("plan_3", "Three", D("0.000003"), interval=BillingInterval.DAY, count=2)
    one = make_plan("plan_1", "One", D("0.000001"), interval=BillingInterval.DAY, count=2)
    assert proration_lines(five, three, start, end, at) == (
        InvoiceLine(
            "Unused time on Five after 2025-01-01 (1/2 of the period)", "", D(1), D("-0.000002")
        ),
        InvoiceLine(
            "Remaining time on Three after 2025-01-01 (1/2 of the period)", "", D(1), D("0.000002")
        ),
    )
    assert [line.amount for line in proration_lines(one, one, start, end, at)] == [
        D("0.000000"),
        D("0.000000"),
    ]


def test_a_usage_based_plan_has_no_fee_lines_worked_example() -> None:
    metered = make_plan("plan_m", "Metered", D("0.25"), PricingType.USAGE_BASED)
    assert proration_lines(metered, PREMIUM, FEB_START, FEB_END, FEB_CHANGE) == (
        InvoiceLine(
            "Remaining time on Premium after 2024-02-10 (18/29 of the period)",
            "",
            D(1),
            D("55.862069"),
        ),
    )
    assert proration_lines(PREMIUM, metered, FEB_START, FEB_END, FEB_CHANGE) == (
        InvoiceLine(
            "Unused time on Premium after 2024-02-10 (18/29 of the period)",
            "",
            D(1),
            D("-55.862069"),
        ),
    )
    parts = [usage(metered, metered, FEB_START, FEB_CHANGE)]
    assert fee_lines(parts, FEB_START, FEB_END, until=FEB_CHANGE) == []


# --- 5. changed_now with a fee paid up front --------------------------------------------------

EARLIER = InvoiceLine("An earlier proration", "", D(1), D("1.000000"))
UP_FRONT = replace(
    make_subscription(BASIC, LEAP_ANCHOR, FEB_START, FEB_END, prepaid_until=FEB_END),
    pending_lines=(EARLIER,),
)
UPGRADE_LINES = (
    InvoiceLine(
        "Unused time on Basic after 2024-02-10 (18/29 of the period)", "", D(1), D("-18.620690")
    ),
    InvoiceLine(
        "Remaining time on Premium after 2024-02-10 (18/29 of the period)",
        "",
        D(1),
        D("55.862069"),
    ),
)
DOWNGRADE_LINES = (
    InvoiceLine(
        "Unused time on Premium after 2024-02-10 (18/29 of the period)",
        "",
        D(1),
        D("-55.862069"),
    ),
    InvoiceLine(
        "Remaining time on Basic after 2024-02-10 (18/29 of the period)", "", D(1), D("18.620690")
    ),
)


def test_changed_now_create_prorations_adds_them_to_the_pending_lines() -> None:
    changed = changed_now(UP_FRONT, PREMIUM, BASIC, FEB_CHANGE, ProrationBehavior.CREATE_PRORATIONS)

    assert changed.prorations == UPGRADE_LINES
    assert changed.invoice_now is False
    subscription = changed.subscription
    assert subscription.plan_id == PREMIUM.id
    assert subscription.fee_plan_id == ""
    assert subscription.plan_segments == (PlanSegment(BASIC.id, BASIC.id, FEB_CHANGE),)
    assert subscription.pending_lines == (EARLIER, *UPGRADE_LINES)
    assert subscription.scheduled_plan_id == ""
    assert subscription.version == UP_FRONT.version + 1
    assert period_parts(subscription)[-1].fee_plan_id == PREMIUM.id


def test_changed_now_none_keeps_the_fee_plan_and_makes_no_prorations() -> None:
    changed = changed_now(UP_FRONT, PREMIUM, BASIC, FEB_CHANGE, ProrationBehavior.NONE)

    assert changed.prorations == ()
    assert changed.invoice_now is False
    subscription = changed.subscription
    assert subscription.plan_id == PREMIUM.id
    assert subscription.fee_plan_id == BASIC.id
    assert subscription.plan_segments == (PlanSegment(BASIC.id, BASIC.id, FEB_CHANGE),)
    assert subscription.pending_lines == (EARLIER,)
    assert [(part.plan_id, part.fee_plan_id) for part in period_parts(subscription)] == [
        (BASIC.id, BASIC.id),
        (PREMIUM.id, BASIC.id),
    ]


def test_changed_now_always_invoice_invoices_an_upgrade_at_once() -> None:
    changed = changed_now(UP_FRONT, PREMIUM, BASIC, FEB_CHANGE, ProrationBehavior.ALWAYS_INVOICE)

    assert changed.prorations == UPGRADE_LINES
    assert sum(line.amount for line in changed.prorations) == D("37.241379")
    assert changed.invoice_now is True
    subscription = changed.subscription
    assert subscription.plan_id == PREMIUM.id
    assert subscription.fee_plan_id == ""
    assert subscription.plan_segments == (PlanSegment(BASIC.id, BASIC.id, FEB_CHANGE),)
    assert subscription.pending_lines == (EARLIER,)


def test_changed_now_always_invoice_leaves_a_downgrade_credit_pending() -> None:
    on_premium = replace(UP_FRONT, plan_id=PREMIUM.id)
    changed = changed_now(on_premium, BASIC, PREMIUM, FEB_CHANGE, ProrationBehavior.ALWAYS_INVOICE)

    assert changed.prorations == DOWNGRADE_LINES
    assert sum(line.amount for line in changed.prorations) == D("-37.241379")
    assert changed.invoice_now is False
    subscription = changed.subscription
    assert subscription.plan_id == BASIC.id
    assert subscription.fee_plan_id == ""
    assert subscription.plan_segments == (PlanSegment(PREMIUM.id, PREMIUM.id, FEB_CHANGE),)
    assert subscription.pending_lines == (EARLIER, *DOWNGRADE_LINES)


def test_changed_now_after_a_none_change_prorates_the_plan_paid_for() -> None:
    # Basic -> Premium with NONE on Feb 10 12:00 (the fee stays Basic's), then Premium -> Team
    # on Feb 20 00:00:01 with CREATE_PRORATIONS: 21 days started, 8/29 left, credited at
    # Basic's 30 (8.275862068... -> 8.275862) and charged at Team's 45 (12.413793103...).
    team = make_plan("plan_team", "Team", D("45"))
    first = changed_now(UP_FRONT, PREMIUM, BASIC, FEB_CHANGE, ProrationBehavior.NONE).subscription
    second_at = datetime(2024, 2, 20, 0, 0, 1, tzinfo=UTC)
    changed = changed_now(first, team, BASIC, second_at, ProrationBehavior.CREATE_PRORATIONS)

    lines = (
        InvoiceLine(
            "Unused time on Basic after 2024-02-20 (8/29 of the period)", "", D(1), D("-8.275862")
        ),
        InvoiceLine(
            "Remaining time on Team after 2024-02-20 (8/29 of the period)",
            "",
            D(1),
            D("12.413793"),
        ),
    )
    assert changed.prorations == lines
    subscription = changed.subscription
    assert subscription.plan_id == team.id and subscription.fee_plan_id == ""
    assert subscription.plan_segments == (
        PlanSegment(BASIC.id, BASIC.id, FEB_CHANGE),
        PlanSegment(PREMIUM.id, BASIC.id, second_at),
    )
    assert subscription.pending_lines == (EARLIER, *lines)


@pytest.mark.parametrize("behavior", list(ProrationBehavior))
def test_changed_now_in_arrears_makes_no_prorations(behavior: ProrationBehavior) -> None:
    in_arrears = replace(UP_FRONT, fee_prepaid_until=None)
    changed = changed_now(in_arrears, PREMIUM, BASIC, FEB_CHANGE, behavior)

    assert changed.prorations == ()
    assert changed.invoice_now is False
    assert changed.subscription.pending_lines == (EARLIER,)
    assert changed.subscription.plan_segments == (PlanSegment(BASIC.id, BASIC.id, FEB_CHANGE),)
    expected_fee_plan = BASIC.id if behavior is ProrationBehavior.NONE else ""
    assert changed.subscription.fee_plan_id == expected_fee_plan


@pytest.mark.parametrize("behavior", list(ProrationBehavior))
def test_changed_now_at_the_period_start_replaces_the_part(behavior: ProrationBehavior) -> None:
    # No day of the period has started: the whole fee moves to the new plan, no segment.
    changed = changed_now(UP_FRONT, PREMIUM, BASIC, FEB_START, behavior)

    assert changed.subscription.plan_segments == ()
    if behavior is ProrationBehavior.NONE:
        assert changed.prorations == ()
        assert changed.subscription.fee_plan_id == BASIC.id
        return
    full = (
        InvoiceLine(
            "Unused time on Basic after 2024-01-31 (1/1 of the period)", "", D(1), D("-30.000000")
        ),
        InvoiceLine(
            "Remaining time on Premium after 2024-01-31 (1/1 of the period)",
            "",
            D(1),
            D("90.000000"),
        ),
    )
    assert changed.prorations == full
    assert changed.invoice_now is (behavior is ProrationBehavior.ALWAYS_INVOICE)
    assert changed.subscription.fee_plan_id == ""
