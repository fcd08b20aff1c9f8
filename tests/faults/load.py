"""A usage-event load whose client retries like a careful merchant: every batch is sent until it
is answered, each time with the same idempotency keys, so a retry of a batch that had already
committed is absorbed as DUPLICATE instead of counted twice. Plus what was stored, from SQL."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar

import asyncpg
import grpc
import httpx

from billing.metering.v1 import metering_pb2 as mpb
from billing.metering.v1 import metering_pb2_grpc
from tests.faults.conftest import Subscriber

RETRYABLE_CODES = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
RETRYABLE_HTTP = (502, 503, 504)
KEY_IN_USE = "idempotency_key_in_use"
RETRY_PAUSE_SECONDS = 0.1
T = TypeVar("T")


class Retryable(Exception):
    """The attempt failed in a way a client retries (connection lost, 503, deadline)."""


@dataclass(frozen=True)
class Outcome:
    accepted: int
    duplicates: int
    rejected: int
    # Events of a response the gateway replayed from its Idempotency-Key store.
    replayed: int = 0


# Sends one batch of (idempotency key, quantity) events; raises Retryable on a transient failure.
Send = Callable[[Sequence[tuple[str, str]]], Awaitable[Outcome]]


def quantity(index: int) -> Decimal:
    """Event quantities vary (0.01 to 9.97), so a lost or doubled event changes the sum."""
    return Decimal(index % 997 + 1) / 100


def batches(prefix: str, events: int, size: int) -> list[list[tuple[str, str]]]:
    keyed = [(f"{prefix}-{i:07d}", str(quantity(i))) for i in range(events)]
    return [keyed[start : start + size] for start in range(0, events, size)]


def expected_sum(events: int) -> Decimal:
    return sum((quantity(i) for i in range(events)), Decimal(0))


@dataclass
class Load:
    """Runs the batches with `concurrency` workers; counts what the client saw."""

    send: Send
    pending: list[list[tuple[str, str]]]
    concurrency: int = 4
    sent: int = 0
    attempts: int = 0
    failed_attempts: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    replayed: int = 0
    # Batches in the order they were answered.
    answered: list[list[tuple[str, str]]] = field(default_factory=list)
    _progress: asyncio.Condition = field(default_factory=asyncio.Condition)

    @property
    def acknowledged(self) -> int:
        return self.accepted + self.duplicates

    async def _worker(self) -> None:
        while self.pending:
            batch = self.pending.pop(0)
            self.sent += len(batch)
            while True:
                self.attempts += 1
                try:
                    outcome = await self.send(batch)
                except Retryable:
                    self.failed_attempts += 1
                    await asyncio.sleep(RETRY_PAUSE_SECONDS)
                    continue
                break
            async with self._progress:
                self.accepted += outcome.accepted
                self.duplicates += outcome.duplicates
                self.rejected += outcome.rejected
                self.replayed += outcome.replayed
                self.answered.append(batch)
                self._progress.notify_all()

    async def run(self) -> None:
        await asyncio.gather(*(self._worker() for _ in range(self.concurrency)))

    async def acknowledged_at_least(self, events: int) -> None:
        async with self._progress:
            await self._progress.wait_for(lambda: self.acknowledged >= events)

    def figures(self) -> dict[str, int]:
        return {
            "sent": self.sent,
            "attempts": self.attempts,
            "failed_attempts": self.failed_attempts,
            "accepted": self.accepted,
            "duplicates_absorbed": self.duplicates,
            "rejected": self.rejected,
            "responses_replayed": self.replayed,
            "acknowledged": self.acknowledged,
        }


def grpc_sender(
    stub: metering_pb2_grpc.MeteringServiceAsyncStub,
    subscriber: Subscriber,
    metadata: tuple[tuple[str, str], ...],
    deadline_seconds: float = 15.0,
) -> Send:
    """BatchRecordUsageEvents straight to metering."""

    async def send(batch: Sequence[tuple[str, str]]) -> Outcome:
        request = mpb.BatchRecordUsageEventsRequest(
            events=[subscriber.event(key, amount) for key, amount in batch]
        )
        reply = await _retryable(
            stub.BatchRecordUsageEvents(request, metadata=metadata, timeout=deadline_seconds)
        )
        return Outcome(reply.accepted_count, reply.duplicate_count, reply.rejected_count)

    return send


def single_sender(
    stub: metering_pb2_grpc.MeteringServiceAsyncStub,
    subscriber: Subscriber,
    metadata: tuple[tuple[str, str], ...],
    deadline_seconds: float = 15.0,
) -> Send:
    """RecordUsageEvent, one event a call (metering commits concurrent ones as a group)."""

    async def send(batch: Sequence[tuple[str, str]]) -> Outcome:
        ((key, amount),) = batch
        request = mpb.RecordUsageEventRequest(event=subscriber.event(key, amount))
        reply = await _retryable(
            stub.RecordUsageEvent(request, metadata=metadata, timeout=deadline_seconds)
        )
        duplicate = reply.outcome == mpb.USAGE_EVENT_OUTCOME_DUPLICATE
        return Outcome(int(not duplicate), int(duplicate), 0)

    return send


async def _retryable(call: Awaitable[T]) -> T:
    """The call's reply; UNAVAILABLE and DEADLINE_EXCEEDED become Retryable."""
    try:
        return await call
    except grpc.aio.AioRpcError as error:
        if error.code() in RETRYABLE_CODES:
            raise Retryable(error.code().name) from None
        raise


def rest_sender(client: httpx.AsyncClient, subscriber: Subscriber) -> Send:
    """POST /api/v1/usage-events/batch through the gateway, keys in each event's idempotencyKey
    and the batch's own Idempotency-Key header. A key still held by a request that a killed
    gateway never finished answers 409 idempotency_key_in_use until its claim times out: the
    client retries it like a 503."""

    async def send(batch: Sequence[tuple[str, str]]) -> Outcome:
        body = {
            "events": [
                {
                    "serviceId": subscriber.service_id,
                    "subscriptionId": subscriber.subscription_id,
                    "userId": subscriber.user_id,
                    "eventKey": "token_generated",
                    "quantity": amount,
                    "idempotencyKey": key,
                }
                for key, amount in batch
            ]
        }
        headers = {"idempotency-key": f"batch-{batch[0][0]}"}
        try:
            response = await client.post("/api/v1/usage-events/batch", json=body, headers=headers)
        except httpx.TransportError as error:
            raise Retryable(type(error).__name__) from None
        if response.status_code in RETRYABLE_HTTP:
            raise Retryable(str(response.status_code))
        if response.status_code == 409 and response.json()["error"]["code"] == KEY_IN_USE:
            raise Retryable(KEY_IN_USE)
        assert response.status_code == 200, response.text
        reply: dict[str, Any] = response.json()
        replayed = response.headers.get("idempotent-replayed") == "true"
        return Outcome(
            int(reply["acceptedCount"]),
            int(reply["duplicateCount"]),
            int(reply["rejectedCount"]),
            len(batch) if replayed else 0,
        )

    return send


@dataclass(frozen=True)
class Stored:
    events: int
    distinct_keys: int
    total: Decimal
    rollup_events: int
    rollup_total: Decimal


async def stored_usage(db: asyncpg.Connection, subscriber: Subscriber) -> Stored:
    """What metering holds for the subscription: raw events and their hourly rollups."""
    events = await db.fetchrow(
        """SELECT count(*) AS events, count(DISTINCT idempotency_key) AS keys,
            coalesce(sum(quantity), 0) AS total
        FROM metering.usage_events WHERE merchant_id = $1 AND subscription_id = $2""",
        subscriber.merchant_id,
        subscriber.subscription_id,
    )
    rollups = await db.fetchrow(
        """SELECT coalesce(sum(event_count), 0) AS events, coalesce(sum(total), 0) AS total
        FROM metering.usage_rollups WHERE merchant_id = $1 AND subscription_id = $2""",
        subscriber.merchant_id,
        subscriber.subscription_id,
    )
    assert events is not None and rollups is not None
    return Stored(
        events["events"], events["keys"], events["total"], rollups["events"], rollups["total"]
    )


def report(scenario: str, figures: dict[str, object]) -> None:
    """One line per run, for the README's reliability section (visible with -s)."""
    print(f"\n[faults] {scenario}: " + ", ".join(f"{k}={v}" for k, v in figures.items()))
