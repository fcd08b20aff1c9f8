"""One merchant's webhooks do not delay another's: 600 deliveries of merchant A are pending when
merchant B's one event arrives, and B's is sent in the first pass while nearly all of A's wait;
an endpoint that hangs holds only its own sends (at most its share at once), never the worker.
The receivers are real HTTP servers on loopback."""

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta

from devstack.postgres import free_port
from invoicing_svc.service_layer.unit_of_work import Invoicing
from invoicing_svc.service_layer.webhooks import deliver_due_webhooks, keep_delivering_webhooks
from service_kit.clock import ManualClock
from tests.invoicing.conftest import Merchant
from tests.invoicing.receiver import Receiver

FLOOD = 600
# Measured on the FIFO worker this replaced (50 a pass, oldest first): B's was sent last.
BEFORE = "1.35 s with A's 0 pending"
PER_ENDPOINT = 2


def other_merchant(merchant: Merchant) -> Merchant:
    return replace(merchant, merchant_id=merchant.merchant_id + "_b")


async def test_one_merchants_backlog_does_not_delay_anothers_webhook(
    merchant: Merchant, billing_clock: ManualClock
) -> None:
    flooder, other = merchant, other_merchant(merchant)
    with Receiver(free_port()) as flooded, Receiver(free_port()) as receiver:
        await flooder.webhook_endpoint(f"http://127.0.0.1:{flooded.port}/")
        await other.webhook_endpoint(f"http://127.0.0.1:{receiver.port}/")
        assert await flooder.fan_out_webhooks(FLOOD) == FLOOD
        billing_clock.advance(timedelta(seconds=1))
        assert await other.fan_out_webhooks(1) == 1

        started = time.perf_counter()
        passes = 0
        while not receiver.received and passes < FLOOD:
            await deliver_due_webhooks(merchant.invoicing)
            passes += 1
        waited = time.perf_counter() - started
        pending = FLOOD - len(flooded.received)
        print(
            f"[webhooks] B delivered after {waited:.2f} s with A's {pending} pending"
            f" (before: {BEFORE})"
        )
        assert (passes, len(receiver.received)) == (1, 1)
        # One pass sends at most an endpoint's share of A's backlog.
        assert pending == FLOOD - merchant.invoicing.settings.webhook_endpoint_concurrency

        while len(flooded.received) < FLOOD and passes < 2 * FLOOD:
            await deliver_due_webhooks(merchant.invoicing)
            passes += 1
    assert len({headers["webhook-id"] for headers, _ in flooded.received}) == FLOOD


async def wait_until(condition: Callable[[], bool], what: str) -> None:
    """Polls (bounded) until `condition()` holds."""
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting until {what}")


async def test_a_hanging_endpoint_holds_only_its_own_sends(merchant: Merchant) -> None:
    settings = merchant.invoicing.settings.model_copy(
        update={
            "webhook_endpoint_concurrency": PER_ENDPOINT,
            "webhook_timeout_seconds": 60.0,
            "poll_interval_seconds": 0.05,
        }
    )
    invoicing: Invoicing = replace(merchant.invoicing, settings=settings)
    hanging, other = merchant, other_merchant(merchant)
    release = threading.Event()
    with Receiver(free_port(), hold=release) as slow, Receiver(free_port()) as fast:
        await hanging.webhook_endpoint(f"http://127.0.0.1:{slow.port}/")
        await other.webhook_endpoint(f"http://127.0.0.1:{fast.port}/")
        await hanging.fan_out_webhooks(6)
        worker = asyncio.create_task(keep_delivering_webhooks(invoicing))
        try:
            await wait_until(lambda: len(slow.received) == PER_ENDPOINT, "the slow one is held")
            # While the slow endpoint holds its sends, another's events come and go.
            await other.fan_out_webhooks(3)
            await wait_until(lambda: len(fast.received) == 3, "the other's are delivered")
            assert len(slow.received) == PER_ENDPOINT
            release.set()
            await wait_until(lambda: len(slow.received) == 6, "the slow one's are delivered")
        finally:
            release.set()
            worker.cancel()
    assert len({headers["webhook-id"] for headers, _ in slow.received}) == 6
