"""Usage alerts through the real services: creating and reading them, every kind crossing once per
billing period (and again in the next), passes racing one another without a crossing recorded or
sent twice, and progressive billing's interim invoices, which the period's invoice takes off."""

import asyncio
import json
from typing import Any

import asyncpg
import grpc
import pytest

from billing.invoicing.v1 import invoicing_pb2 as pb
from invoicing_svc.service_layer.alerts import check_alerts
from tests.conftest import field_violation
from tests.invoicing.conftest import Merchant
from tests.invoicing.test_billing_flows import MONTH_AND_GRACE
from tests.invoicing.test_subscription_balance import report

K = pb.UsageAlertKind
TOKENS = pb.UsageCharge(
    event_key="tokens",
    model=pb.CHARGE_MODEL_PER_UNIT,
    unit_price="0.001",
    included_quantity="1000",
)


async def alert(merchant: Merchant, **fields: Any) -> pb.UsageAlert:
    return await merchant.stub.CreateUsageAlert(
        pb.CreateUsageAlertRequest(alert=pb.UsageAlert(**fields)), metadata=merchant.metadata
    )


async def crossings(
    merchant: Merchant, subscription: pb.Subscription
) -> list[pb.UsageAlertCrossing]:
    listed = await merchant.stub.ListUsageAlertCrossings(
        pb.ListUsageAlertCrossingsRequest(subscription_id=subscription.id),
        metadata=merchant.metadata,
    )
    return list(listed.crossings)


async def flush(merchant: Merchant) -> None:
    """A pass, for what other tests' alerts left to record: the session's database is shared,
    and a pass looks at every merchant's subscriptions."""
    await check_alerts(merchant.invoicing)


async def sent(db: asyncpg.Connection, merchant: Merchant, *types: str) -> list[dict[str, Any]]:
    """The webhook events of these types written for the merchant, oldest first."""
    rows = await db.fetch(
        "SELECT payload FROM invoicing.outbox WHERE merchant_id = $1 AND topic = 'webhook.event'"
        " AND payload->>'type' = ANY($2::text[]) ORDER BY id",
        merchant.merchant_id,
        list(types),
    )
    return [json.loads(row["payload"]) for row in rows]


async def test_an_alert_is_created_read_listed_and_deleted(merchant: Merchant) -> None:
    plan = await merchant.plan(pricing_type=pb.PRICING_TYPE_USAGE_BASED, charges=[TOKENS])
    created = await alert(
        merchant,
        plan_id=plan.id,
        kind=K.USAGE_ALERT_KIND_INCLUDED_SHARE,
        event_key="tokens",
        threshold="80",
    )
    other = await alert(merchant, plan_id=plan.id, kind=K.USAGE_ALERT_KIND_BALANCE, threshold="0")

    assert created.id.startswith("alrt_")
    assert (created.plan_id, created.subscription_id, created.event_key, created.threshold) == (
        plan.id,
        "",
        "tokens",
        "80",
    )
    assert created.action == pb.USAGE_ALERT_ACTION_NOTIFY
    got = await merchant.stub.GetUsageAlert(
        pb.GetUsageAlertRequest(id=created.id), metadata=merchant.metadata
    )
    assert got == created
    listed = await merchant.stub.ListUsageAlerts(
        pb.ListUsageAlertsRequest(plan_id=plan.id, page_size=1), metadata=merchant.metadata
    )
    assert list(listed.alerts) == [created]
    rest = await merchant.stub.ListUsageAlerts(
        pb.ListUsageAlertsRequest(plan_id=plan.id, page_token=listed.next_page_token),
        metadata=merchant.metadata,
    )
    assert list(rest.alerts) == [other]

    await merchant.stub.DeleteUsageAlert(
        pb.DeleteUsageAlertRequest(id=created.id), metadata=merchant.metadata
    )
    with pytest.raises(grpc.aio.AioRpcError) as gone:
        await merchant.stub.GetUsageAlert(
            pb.GetUsageAlertRequest(id=created.id), metadata=merchant.metadata
        )
    assert gone.value.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize(
    ("fields", "code", "field"),
    [
        (
            {"plan_id": "", "kind": K.USAGE_ALERT_KIND_SPEND, "threshold": "1"},
            "INVALID_ARGUMENT",
            "alert.plan_id",
        ),
        (
            {"subscription_id": "sub_x", "kind": K.USAGE_ALERT_KIND_SPEND, "threshold": "1"},
            "INVALID_ARGUMENT",
            "alert.plan_id",
        ),
        (
            {"plan_id": "plan_unknown", "kind": K.USAGE_ALERT_KIND_SPEND, "threshold": "1"},
            "NOT_FOUND",
            "alert.plan_id",
        ),
        ({"threshold": "1"}, "INVALID_ARGUMENT", "alert.kind"),
        (
            {"kind": K.USAGE_ALERT_KIND_USAGE_QUANTITY, "threshold": "1"},
            "INVALID_ARGUMENT",
            "alert.event_key",
        ),
        (
            {"kind": K.USAGE_ALERT_KIND_USAGE_QUANTITY, "event_key": "tokens", "threshold": "0"},
            "INVALID_ARGUMENT",
            "alert.threshold",
        ),
        (
            {"kind": K.USAGE_ALERT_KIND_SPEND, "threshold": "0.0000001"},
            "INVALID_ARGUMENT",
            "alert.threshold",
        ),
        (
            {"kind": K.USAGE_ALERT_KIND_SPEND, "threshold": "-1"},
            "INVALID_ARGUMENT",
            "alert.threshold",
        ),
        (
            {"kind": K.USAGE_ALERT_KIND_SPEND, "event_key": "tokens", "threshold": "1"},
            "INVALID_ARGUMENT",
            "alert.event_key",
        ),
        (
            {"kind": K.USAGE_ALERT_KIND_INCLUDED_SHARE, "event_key": "images", "threshold": "50"},
            "INVALID_ARGUMENT",
            "alert.event_key",
        ),
        (
            {
                "kind": K.USAGE_ALERT_KIND_BALANCE,
                "threshold": "1",
                "action": pb.USAGE_ALERT_ACTION_INVOICE,
            },
            "INVALID_ARGUMENT",
            "alert.action",
        ),
    ],
)
async def test_a_bad_alert_is_refused(
    merchant: Merchant, fields: dict[str, Any], code: str, field: str
) -> None:
    plan = await merchant.plan(pricing_type=pb.PRICING_TYPE_USAGE_BASED, charges=[TOKENS])
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await alert(merchant, **{"plan_id": plan.id, **fields})

    assert refused.value.code().name == code
    assert field_violation(refused.value) == field
    listed = await merchant.stub.ListUsageAlerts(
        pb.ListUsageAlertsRequest(), metadata=merchant.metadata
    )
    assert list(listed.alerts) == []


async def test_another_merchants_plan_or_subscription_is_not_found(merchant: Merchant) -> None:
    plan = await merchant.plan(pricing_type=pb.PRICING_TYPE_USAGE_BASED, charges=[TOKENS])
    subscription = await merchant.subscribe(plan)
    other = (("x-merchant-id", "mer_alert_intruder"),)
    for target in (
        pb.UsageAlert(plan_id=plan.id, kind=K.USAGE_ALERT_KIND_SPEND, threshold="1"),
        pb.UsageAlert(
            subscription_id=subscription.id, kind=K.USAGE_ALERT_KIND_SPEND, threshold="1"
        ),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await merchant.stub.CreateUsageAlert(
                pb.CreateUsageAlertRequest(alert=target), metadata=other
            )
        assert refused.value.code() == grpc.StatusCode.NOT_FOUND


async def test_each_kind_crosses_once_per_period(
    merchant: Merchant, db: asyncpg.Connection
) -> None:
    plan = await merchant.plan(pricing_type=pb.PRICING_TYPE_USAGE_BASED, charges=[TOKENS])
    subscription = await merchant.subscribe(plan)
    usage = await alert(
        merchant,
        plan_id=plan.id,
        kind=K.USAGE_ALERT_KIND_USAGE_QUANTITY,
        event_key="tokens",
        threshold="500",
    )
    share = await alert(
        merchant,
        subscription_id=subscription.id,
        kind=K.USAGE_ALERT_KIND_INCLUDED_SHARE,
        event_key="tokens",
        threshold="80",
    )
    spend = await alert(merchant, plan_id=plan.id, kind=K.USAGE_ALERT_KIND_SPEND, threshold="0.5")
    low = await alert(merchant, plan_id=plan.id, kind=K.USAGE_ALERT_KIND_BALANCE, threshold="2")
    await report(merchant, subscription.user_id, "3", 1)
    await flush(merchant)
    assert await crossings(merchant, subscription) == []  # 3 credits: not below 2 yet

    # (tokens to record, what the pass then finds: (alert, event type, threshold, value))
    steps = [
        ("600", [(usage, "usage.threshold_crossed", "500", "600")]),
        ("300", [(share, "usage.threshold_crossed", "800", "900")]),
        ("700", [(spend, "usage.threshold_crossed", "0.5", "0.6")]),
        ("500", [(low, "credits.balance_low", "2", "1.9")]),
        ("2000", [(low, "credits.exhausted", "0", "-0.1")]),
    ]
    seen: list[tuple[str, str, str, str]] = []
    for tokens, expected in steps:
        await merchant.record(subscription, "tokens", tokens)
        assert await check_alerts(merchant.invoicing) == len(expected)
        assert await check_alerts(merchant.invoicing) == 0
        seen += [(a.id, event, threshold, value) for a, event, threshold, value in expected]
        found = await crossings(merchant, subscription)
        assert [(c.alert_id, c.event_type, c.threshold, c.value) for c in found] == seen

    found = await crossings(merchant, subscription)
    assert {(c.period_start.ToJsonString(), c.period_end.ToJsonString()) for c in found} == {
        (
            subscription.current_period_start.ToJsonString(),
            subscription.current_period_end.ToJsonString(),
        )
    }
    webhooks = await sent(
        db, merchant, "usage.threshold_crossed", "credits.balance_low", "credits.exhausted"
    )
    assert [(w["type"], w["data"]["alertId"], w["data"]["value"]) for w in webhooks] == [
        (event, alert_id, value) for alert_id, event, _, value in seen
    ]
    assert webhooks[1]["data"] == {
        "alertId": share.id,
        "subscriptionId": subscription.id,
        "userId": subscription.user_id,
        "eventType": "usage.threshold_crossed",
        "kind": "USAGE_ALERT_KIND_INCLUDED_SHARE",
        "eventKey": "tokens",
        "threshold": "800",
        "value": "900",
        "periodStart": webhooks[1]["data"]["periodStart"],
        "periodEnd": webhooks[1]["data"]["periodEnd"],
        "invoiceId": "",
        "crossTime": webhooks[1]["data"]["crossTime"],
    }

    # The next period starts afresh: only what it crosses again is sent. (No credits as the
    # period closes: there is no settlement here to spend them.)
    await report(merchant, subscription.user_id, "0", 2)
    subscription = await merchant.advance(subscription, MONTH_AND_GRACE)
    await merchant.relay()
    await report(merchant, subscription.user_id, "3", 3)
    await flush(merchant)
    await merchant.record(subscription, "tokens", "501")
    assert await check_alerts(merchant.invoicing) == 1
    latest = (await crossings(merchant, subscription))[-1]
    assert (latest.alert_id, latest.value, latest.period_start) == (
        usage.id,
        "501",
        subscription.current_period_start,
    )


async def test_racing_passes_record_and_send_each_crossing_once(
    merchant: Merchant, db: asyncpg.Connection
) -> None:
    plan = await merchant.plan(pricing_type=pb.PRICING_TYPE_USAGE_BASED, charges=[TOKENS])
    subscriptions = [await merchant.subscribe(plan) for _ in range(3)]
    for threshold in ("10", "20", "30"):
        await alert(
            merchant,
            plan_id=plan.id,
            kind=K.USAGE_ALERT_KIND_USAGE_QUANTITY,
            event_key="tokens",
            threshold=threshold,
        )
    await flush(merchant)
    for subscription in subscriptions:
        await merchant.record(subscription, "tokens", "25")

    passes = await asyncio.gather(*(check_alerts(merchant.invoicing) for _ in range(6)))

    assert sum(passes) == 6  # two thresholds crossed by each of three subscriptions
    assert len(await sent(db, merchant, "usage.threshold_crossed")) == 6
    for subscription in subscriptions:
        assert sorted(c.threshold for c in await crossings(merchant, subscription)) == ["10", "20"]


async def test_progressive_billing_bills_the_usage_so_far_and_the_rest_at_the_end(
    merchant: Merchant,
) -> None:
    per_unit = pb.UsageCharge(
        event_key="tokens", model=pb.CHARGE_MODEL_PER_UNIT, unit_price="0.001"
    )
    plan = await merchant.plan(pricing_type=pb.PRICING_TYPE_HYBRID, amount="10", charges=[per_unit])
    subscription = await merchant.subscribe(plan)  # the fee is paid up front
    first = await alert(
        merchant,
        plan_id=plan.id,
        kind=K.USAGE_ALERT_KIND_SPEND,
        threshold="1",
        action=pb.USAGE_ALERT_ACTION_INVOICE,
    )
    await alert(
        merchant,
        plan_id=plan.id,
        kind=K.USAGE_ALERT_KIND_SPEND,
        threshold="2",
        action=pb.USAGE_ALERT_ACTION_INVOICE,
    )

    await flush(merchant)
    await merchant.record(subscription, "tokens", "1200")
    assert await check_alerts(merchant.invoicing) == 1
    await merchant.record(subscription, "tokens", "1000")
    assert await check_alerts(merchant.invoicing) == 1
    await merchant.record(subscription, "tokens", "300")
    subscription = await merchant.advance(subscription, MONTH_AND_GRACE)

    interim_one, interim_two, final = await merchant.invoices(subscription)
    assert (interim_one.interim, interim_one.amount, interim_one.status) == (
        True,
        "1.200000",
        pb.INVOICE_STATUS_OPEN,
    )
    assert [(line.description, line.amount) for line in interim_one.lines] == [
        ("tokens: 1200 (per_unit)", "1.200000")
    ]
    assert (interim_two.interim, interim_two.amount) == (True, "1.000000")
    assert [(line.description, line.amount) for line in interim_two.lines] == [
        ("tokens: 2200 (per_unit)", "2.200000"),
        ("Billed in interim invoices", "-1.200000"),
    ]
    assert (final.interim, final.amount, final.period_start) == (
        False,
        "0.300000",
        interim_one.period_start,
    )
    assert [(line.description, line.amount) for line in final.lines] == [
        ("tokens: 2500 (per_unit)", "2.500000"),
        ("Billed in interim invoices", "-2.200000"),
    ]
    found = await crossings(merchant, subscription)
    assert (found[0].alert_id, found[0].invoice_id) == (first.id, interim_one.id)
    assert found[1].invoice_id == interim_two.id


async def test_a_crossing_recorded_before_is_not_sent_again_beside_a_new_one(
    merchant: Merchant, db: asyncpg.Connection
) -> None:
    """One batch holds a subscription whose balance was low already (its alert waits for
    credits.exhausted) and one that falls low now: only the new crossing is sent."""
    plan = await merchant.plan(pricing_type=pb.PRICING_TYPE_USAGE_BASED, charges=[TOKENS])
    first, second = [await merchant.subscribe(plan) for _ in range(2)]
    await alert(merchant, plan_id=plan.id, kind=K.USAGE_ALERT_KIND_BALANCE, threshold="2")
    await report(merchant, first.user_id, "3", 1)
    await flush(merchant)
    await merchant.record(first, "tokens", "2100")  # 3 - 1.1: low
    assert await check_alerts(merchant.invoicing) == 1
    await merchant.record(second, "tokens", "2100")  # its own period: 3 - 1.1 as well

    assert await check_alerts(merchant.invoicing) == 1

    low = await sent(db, merchant, "credits.balance_low")
    assert [(w["data"]["subscriptionId"], w["data"]["value"]) for w in low] == [
        (first.id, "1.9"),
        (second.id, "1.9"),
    ]
