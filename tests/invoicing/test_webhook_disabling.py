"""An endpoint that fails every attempt for INVOICING_WEBHOOK_DISABLE_AFTER (shortened to an
hour here) is disabled: its pending deliveries fail, it gets no new ones, it shows DISABLED,
and the merchant's other endpoints that subscribe get a webhook_endpoint.disabled event. A
success in between restarts the failure clock."""

import json
from dataclasses import replace
from datetime import timedelta

from billing.invoicing.v1 import invoicing_pb2 as pb
from devstack.postgres import free_port
from invoicing_svc.service_layer.unit_of_work import Invoicing
from invoicing_svc.service_layer.webhooks import deliver_due_webhooks
from service_kit.clock import ManualClock
from tests.invoicing.conftest import Merchant
from tests.invoicing.receiver import Receiver

DISABLE_AFTER = timedelta(hours=1)


def disabling_after_an_hour(merchant: Merchant) -> Invoicing:
    settings = merchant.invoicing.settings.model_copy(
        update={"webhook_disable_after": DISABLE_AFTER}
    )
    return replace(merchant.invoicing, settings=settings)


async def test_an_endpoint_failing_for_too_long_is_disabled_and_the_merchant_told(
    merchant: Merchant, billing_clock: ManualClock
) -> None:
    invoicing = disabling_after_an_hour(merchant)
    with Receiver(free_port()) as notices:
        failing = await merchant.webhook_endpoint(
            f"http://127.0.0.1:{free_port()}/nobody", ["invoice.paid"]
        )
        told = await merchant.webhook_endpoint(
            f"http://127.0.0.1:{notices.port}/", ["webhook_endpoint.disabled"]
        )
        assert await merchant.fan_out_webhooks(1) == 1
        first_failure = billing_clock.now()
        states = []
        for step in (timedelta(0), timedelta(minutes=30), timedelta(minutes=31)):
            billing_clock.advance(step)
            await deliver_due_webhooks(invoicing)
            endpoint = (await merchant.webhook_endpoints())[failing.id]
            states.append(
                (
                    endpoint.status,
                    endpoint.failing_since.ToDatetime(),
                    endpoint.HasField("disable_time"),
                )
            )
        disabled_at = billing_clock.now()
        assert states == [
            (pb.WEBHOOK_ENDPOINT_STATUS_ENABLED, first_failure.replace(tzinfo=None), False),
            (pb.WEBHOOK_ENDPOINT_STATUS_ENABLED, first_failure.replace(tzinfo=None), False),
            (pb.WEBHOOK_ENDPOINT_STATUS_DISABLED, first_failure.replace(tzinfo=None), True),
        ]
        assert endpoint.disable_time.ToDatetime() == disabled_at.replace(tzinfo=None)
        (delivery,) = await merchant.deliveries(failing)
        assert (delivery.status, delivery.attempt_count, delivery.last_error) == (
            pb.DELIVERY_STATUS_FAILED,
            3,
            "webhook endpoint disabled",
        )

        await merchant.relay()
        await deliver_due_webhooks(invoicing)
        ((_, body),) = notices.received
        notice = json.loads(body)
        assert (notice["type"], notice["data"]["id"], notice["data"]["status"]) == (
            "webhook_endpoint.disabled",
            failing.id,
            "WEBHOOK_ENDPOINT_STATUS_DISABLED",
        )
        assert notice["data"]["secret"] == ""

    # Nothing more for the disabled endpoint, and no second notice.
    assert await merchant.fan_out_webhooks(3) == 0
    billing_clock.advance(timedelta(hours=2))
    await deliver_due_webhooks(invoicing)
    assert len(await merchant.deliveries(failing)) == 1
    assert [d.event_type for d in await merchant.deliveries(told)] == ["webhook_endpoint.disabled"]


async def test_a_success_restarts_the_failure_clock(
    merchant: Merchant, billing_clock: ManualClock
) -> None:
    invoicing = disabling_after_an_hour(merchant)
    port = free_port()
    endpoint = await merchant.webhook_endpoint(f"http://127.0.0.1:{port}/")
    assert await merchant.fan_out_webhooks(1) == 1
    await deliver_due_webhooks(invoicing)  # fails: nobody listens
    assert (await merchant.webhook_endpoints())[endpoint.id].HasField("failing_since")

    billing_clock.advance(timedelta(minutes=50))
    with Receiver(port) as receiver:
        await deliver_due_webhooks(invoicing)
    assert len(receiver.received) == 1
    assert not (await merchant.webhook_endpoints())[endpoint.id].HasField("failing_since")

    # Failing again, more than an hour after the first failure but not since the success.
    billing_clock.advance(timedelta(minutes=20))
    assert await merchant.fan_out_webhooks(1) == 1
    await deliver_due_webhooks(invoicing)
    shown = (await merchant.webhook_endpoints())[endpoint.id]
    assert (shown.status, shown.failing_since.ToDatetime()) == (
        pb.WEBHOOK_ENDPOINT_STATUS_ENABLED,
        billing_clock.now().replace(tzinfo=None),
    )
