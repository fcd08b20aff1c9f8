"""A real metering gRPC server on a free loopback port, and helpers to drive it."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

import grpc
import pytest

from billing.metering.v1 import metering_pb2 as pb
from billing.metering.v1 import metering_pb2_grpc
from metering_svc.service_layer.unit_of_work import Metering
from service_kit.clock import ManualClock
from service_kit.proto_time import to_timestamp
from tests.conftest import TEST_START, RunningMetering, metering_server
from tests.conftest import field_violation as field_violation

_merchants = itertools.count(1)


@pytest.fixture(scope="session")
async def running_metering(database_url: str) -> AsyncIterator[RunningMetering]:
    async with metering_server(database_url, ManualClock(TEST_START)) as running:
        yield running


@pytest.fixture(scope="session")
def metering(running_metering: RunningMetering) -> Metering:
    return running_metering.service


@pytest.fixture(scope="session")
def metering_stub(running_metering: RunningMetering) -> metering_pb2_grpc.MeteringServiceAsyncStub:
    return running_metering.stub


@pytest.fixture(scope="session")
def clock(metering: Metering) -> ManualClock:
    assert isinstance(metering.clock, ManualClock)
    return metering.clock


@dataclass
class Tenant:
    """A fresh merchant with one ACTIVE subscription, so tests never see each other's data."""

    stub: metering_pb2_grpc.MeteringServiceAsyncStub
    merchant_id: str
    service_id: str
    user_id: str
    subscription_id: str
    period_start: datetime
    period_end: datetime

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("x-merchant-id", self.merchant_id),)

    def event(self, quantity: str, **fields: object) -> pb.UsageEventInput:
        values: dict[str, object] = {
            "service_id": self.service_id,
            "subscription_id": self.subscription_id,
            "user_id": self.user_id,
            "event_key": "token_generated",
            "quantity": quantity,
        }
        values.update(fields)
        return pb.UsageEventInput(**values)  # type: ignore[arg-type]

    async def record(self, quantity: str, **fields: object) -> pb.RecordUsageEventResponse:
        return await self.stub.RecordUsageEvent(
            pb.RecordUsageEventRequest(event=self.event(quantity, **fields)), metadata=self.metadata
        )

    def state(
        self,
        status: pb.SubscriptionStatus.ValueType,
        version: int,
        start: datetime | None = None,
        **fields: object,
    ) -> pb.SubscriptionState:
        """The tenant's replica with this status and version; `fields` set any other field."""
        return pb.SubscriptionState(
            subscription_id=self.subscription_id,
            service_id=self.service_id,
            user_id=self.user_id,
            status=status,
            current_period_start=to_timestamp(start or self.period_start),
            current_period_end=to_timestamp(self.period_end),
            version=version,
            **fields,  # type: ignore[arg-type]
        )

    async def set_state(
        self,
        status: pb.SubscriptionStatus.ValueType,
        version: int,
        start: datetime | None = None,
        **fields: object,
    ) -> pb.SubscriptionState:
        return await self.stub.UpsertSubscriptionState(
            pb.UpsertSubscriptionStateRequest(state=self.state(status, version, start, **fields)),
            metadata=self.metadata,
        )

    async def summary(
        self, start: datetime, end: datetime, event_key: str = ""
    ) -> dict[str, pb.UsageSummary]:
        response = await self.stub.GetUsageSummary(
            pb.GetUsageSummaryRequest(
                subscription_id=self.subscription_id,
                event_key=event_key,
                start_time=to_timestamp(start),
                end_time=to_timestamp(end),
            ),
            metadata=self.metadata,
        )
        return {s.event_key: s for s in response.summaries}


@pytest.fixture
async def tenant(metering_stub: metering_pb2_grpc.MeteringServiceAsyncStub) -> Tenant:
    number = next(_merchants)
    period_start = TEST_START - timedelta(days=10, hours=3, minutes=17)
    found = Tenant(
        stub=metering_stub,
        merchant_id=f"mer_test{number}",
        service_id=f"svc_ai_tokens{number}",
        user_id=f"usr_b4e7f8{number}",
        subscription_id=f"sub_{number:06d}",
        period_start=period_start,
        period_end=period_start + timedelta(days=30),
    )
    await found.set_state(pb.SUBSCRIPTION_STATUS_ACTIVE, version=1)
    return found


async def race_two_replicas(
    tenant: Tenant, database_url: str, quantities: list[str]
) -> tuple[list[Decimal], list[Decimal]]:
    """The first half of `quantities` as single events, the rest in batches of 20, all at once,
    alternating between the tenant's metering server and a second one on the same database:
    the quantities accepted and those refused (FAILED_PRECONDITION, or REJECTED in a batch)."""
    half = len(quantities) // 2
    async with metering_server(database_url, ManualClock(TEST_START)) as second:
        stubs: list[metering_pb2_grpc.MeteringServiceAsyncStub] = [tenant.stub, second.stub]

        async def single(i: int) -> tuple[str, int]:
            try:
                await stubs[i % 2].RecordUsageEvent(
                    pb.RecordUsageEventRequest(event=tenant.event(quantities[i])),
                    metadata=tenant.metadata,
                )
            except grpc.aio.AioRpcError as error:
                assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
                return quantities[i], pb.USAGE_EVENT_OUTCOME_REJECTED
            return quantities[i], pb.USAGE_EVENT_OUTCOME_ACCEPTED

        async def batch(first: int) -> list[tuple[str, int]]:
            chunk = quantities[first : first + 20]
            answer = await stubs[first // 20 % 2].BatchRecordUsageEvents(
                pb.BatchRecordUsageEventsRequest(events=[tenant.event(q) for q in chunk]),
                metadata=tenant.metadata,
            )
            return [(q, r.outcome) for q, r in zip(chunk, answer.results, strict=True)]

        singles = asyncio.gather(*(single(i) for i in range(half)))
        batches = asyncio.gather(*(batch(first) for first in range(half, len(quantities), 20)))
        outcomes = list(await singles) + [pair for chunk in await batches for pair in chunk]
    accepted = [Decimal(q) for q, o in outcomes if o == pb.USAGE_EVENT_OUTCOME_ACCEPTED]
    refused = [Decimal(q) for q, o in outcomes if o == pb.USAGE_EVENT_OUTCOME_REJECTED]
    assert len(accepted) + len(refused) == len(quantities)
    return accepted, refused
