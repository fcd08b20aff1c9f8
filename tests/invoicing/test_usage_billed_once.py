"""Property: whatever the interleaving of events, test-clock advances, cancels (now, at period
end, racing events) and scheduler closes, every event metering ACCEPTED is billed by exactly one
invoice, and every other event was refused as a model of the rules predicts."""

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.invoicing.v1 import invoicing_pb2 as pb
from invoicing_svc.service_layer.period_close import close_due_periods
from service_kit.clock import ManualClock
from service_kit.grpc_errors import field_of
from tests.invoicing.conftest import GRACE, Merchant
from tests.invoicing.test_subscription_end import (
    advance_to,
    billed,
    cancel,
    daily_usage_plan,
    moment,
    own_now,
    post,
)

DAY = timedelta(days=1)
SKEW = timedelta(minutes=5)  # METERING_MAX_CLOCK_SKEW of the test services
MINUTE = timedelta(minutes=1)

PRECONDITION, INVALID = grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.INVALID_ARGUMENT
Outcome = tuple[grpc.StatusCode, str] | None  # None: ACCEPTED


@dataclass
class Model:
    """What the rules say: the open period, the subscription's own time, how it ends, and the
    invoices its periods get (start, end, final)."""

    start: datetime
    end: datetime
    now: datetime
    cancel_at_end: bool = False
    canceled: bool = False
    invoices: list[tuple[datetime, datetime, bool]] = field(default_factory=list)

    def close(self) -> None:
        if self.cancel_at_end:
            self.canceled = True
            self.invoices.append((self.start, self.end, True))
        else:
            self.invoices.append((self.start, self.end, False))
            self.start, self.end = self.end, self.end + DAY

    def advance(self, step: timedelta) -> None:
        self.now += step
        while not self.canceled and self.end + GRACE <= self.now:
            self.close()

    def cancel_now(self) -> Outcome:
        if self.canceled:
            return PRECONDITION, "id"
        while not self.canceled and self.end < self.now:
            self.close()
        if not self.canceled:
            self.canceled = True
            self.invoices.append((self.start, self.now, True))
        return None

    def cancel_at_period_end(self) -> Outcome:
        if self.canceled:
            return PRECONDITION, "id"
        self.cancel_at_end = True
        return None

    def event(self, occurred_at: datetime) -> Outcome:
        if self.canceled:
            return PRECONDITION, "subscription_id"
        if occurred_at > self.now + SKEW:
            return INVALID, "occurred_at"
        if occurred_at < self.start or (self.cancel_at_end and occurred_at >= self.end):
            return PRECONDITION, "occurred_at"
        return None


@dataclass(frozen=True)
class Event:
    """An event stamped `offset` from the subscription's own time, or from its period's end."""

    from_end: bool
    offset: timedelta


@dataclass(frozen=True)
class Advance:
    step: timedelta


@dataclass(frozen=True)
class CancelNow:
    pass


@dataclass(frozen=True)
class CancelAtPeriodEnd:
    pass


@dataclass(frozen=True)
class CancelRacingEvents:
    """A cancel now, concurrent with four events stamped `offset` from the subscription's time."""

    offset: timedelta


@dataclass(frozen=True)
class Close:
    """A scheduler pass."""


Step = Event | Advance | CancelNow | CancelAtPeriodEnd | CancelRacingEvents | Close

offsets = st.sampled_from(
    [-DAY, -61 * MINUTE, -MINUTE, timedelta(0), 2 * MINUTE, SKEW, SKEW + MINUTE]
)
steps = st.lists(
    st.one_of(
        st.builds(Event, st.booleans(), offsets),
        st.builds(
            Advance,
            st.sampled_from([10 * MINUTE, 55 * MINUTE, 65 * MINUTE, DAY - 10 * MINUTE, DAY]),
        ),
        st.just(CancelNow()),
        st.just(CancelAtPeriodEnd()),
        st.builds(CancelRacingEvents, st.sampled_from([timedelta(0), 2 * MINUTE])),
        st.just(Close()),
    ),
    max_size=12,
)


async def _outcome(call: Awaitable[object]) -> Outcome:
    try:
        await call
    except grpc.aio.AioRpcError as error:
        return error.code(), field_of(error)
    return None


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(steps=steps)
async def test_every_accepted_event_is_billed_exactly_once(
    merchant: Merchant, billing_clock: ManualClock, steps: list[Step]
) -> None:
    subscription = await merchant.subscribe(await daily_usage_plan(merchant))
    start = moment(subscription.current_period_start)
    model = Model(start, moment(subscription.current_period_end), start)
    accepted: list[tuple[datetime, int]] = []
    quantities = iter(range(1, 1_000))

    async def record(occurred_at: datetime) -> Outcome:
        quantity = next(quantities)
        outcome = await _outcome(post(merchant, subscription, str(quantity), occurred_at))
        if outcome is None:
            accepted.append((occurred_at, quantity))
        return outcome

    for step in steps:
        match step:
            case Event(from_end, offset):
                occurred_at = (model.end if from_end else model.now) + offset
                assert await record(occurred_at) == model.event(occurred_at)
            case Advance(step_size):
                subscription = await merchant.advance(subscription, step_size)
                model.advance(step_size)
            case CancelNow():
                assert await _outcome(cancel(merchant, subscription)) == model.cancel_now()
            case CancelAtPeriodEnd():
                assert await _outcome(cancel(merchant, subscription, True)) == (
                    model.cancel_at_period_end()
                )
            case CancelRacingEvents(offset):
                occurred_at = model.now + offset
                before = model.event(occurred_at)
                canceled, racing = await asyncio.gather(
                    _outcome(cancel(merchant, subscription)),
                    asyncio.gather(*(record(occurred_at) for _ in range(4))),
                )
                assert canceled == model.cancel_now()
                # Each racing event met the subscription before the cancel or after it.
                assert set(racing) <= {before, model.event(occurred_at)}
            case Close():
                await close_due_periods(merchant.invoicing, subscription.id)
    # The subscription ends: now, or at the end of its period.
    if not model.canceled:
        if model.cancel_at_end:
            subscription = await advance_to(
                merchant, subscription, billing_clock, model.end + GRACE
            )
            model.advance(model.end + GRACE - model.now)
        else:
            await cancel(merchant, subscription)
            model.cancel_now()
    ended = await merchant.stub.GetSubscription(
        pb.GetSubscriptionRequest(id=subscription.id), metadata=merchant.metadata
    )
    assert ended.status == pb.SUBSCRIPTION_STATUS_CANCELED
    assert own_now(ended, billing_clock) == model.now

    def units(start: datetime, end: datetime, final: bool) -> int:
        return sum(q for at, q in accepted if start <= at and (final or at < end))

    expected = [
        (start, end, f"{units(start, end, final)}.000000", str(units(start, end, final)))
        for start, end, final in model.invoices
    ]
    assert await billed(merchant, subscription) == expected
    assert sum(int(quantity) for *_, quantity in expected) == sum(q for _, q in accepted)
