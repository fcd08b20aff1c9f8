"""Request ids through the services, one log line per RPC, and each service's Prometheus metrics,
scraped over HTTP from real servers."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import MutableMapping
from datetime import timedelta
from typing import Any

import asyncpg
import grpc
import httpx
import pytest
import structlog
from prometheus_client.parser import text_string_to_metric_families
from structlog.testing import capture_logs

from billing.invoicing.v1 import invoicing_pb2 as ipb
from billing.metering.v1 import metering_pb2 as mpb
from tests.conftest import Platform

_merchants = itertools.count(1)
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(port: int) -> Samples:
    """Every sample of a metrics endpoint, by name and labels."""
    async with httpx.AsyncClient(trust_env=False) as client:
        response = await client.get(f"http://127.0.0.1:{port}/metrics")
    assert response.status_code == 200
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def metadata(merchant_id: str, request_id: str = "") -> tuple[tuple[str, str], ...]:
    merchant = (("x-merchant-id", merchant_id),)
    return (*merchant, ("x-request-id", request_id)) if request_id else merchant


async def checkout(platform: Platform, merchant_id: str, request_id: str = "") -> str:
    """A usage-based plan's checkout, completed with `request_id`; returns the subscription id.
    Completing it tells metering of the subscription within the call."""
    stub = platform.invoicing_stub
    service = await stub.CreateService(
        ipb.CreateServiceRequest(service=ipb.Service(name="AI Token API")),
        metadata=metadata(merchant_id),
    )
    plan = await stub.CreatePlan(
        ipb.CreatePlanRequest(
            plan=ipb.Plan(
                service_id=service.id,
                name="Pay as you go",
                billing_interval=ipb.BILLING_INTERVAL_MONTH,
                pricing_type=ipb.PRICING_TYPE_USAGE_BASED,
                amount="0.000010",
            )
        ),
        metadata=metadata(merchant_id),
    )
    session = await stub.CreateCheckoutSession(
        ipb.CreateCheckoutSessionRequest(
            session=ipb.CheckoutSession(
                plan_id=plan.id,
                user_id="usr_b4e7f812",
                success_url="https://merchant.example/ok",
                cancel_url="https://merchant.example/cancel",
            )
        ),
        metadata=metadata(merchant_id),
    )
    completed = await stub.CompleteCheckoutSession(
        ipb.CompleteCheckoutSessionRequest(id=session.id),
        metadata=metadata(merchant_id, request_id),
    )
    return completed.subscription_id


def rpc_lines(logs: list[MutableMapping[str, Any]], method: str) -> list[MutableMapping[str, Any]]:
    return [entry for entry in logs if entry["event"] == "rpc" and entry["method"] == method]


COMPLETE = "/billing.invoicing.v1.InvoicingService/CompleteCheckoutSession"
UPSERT = "/billing.metering.v1.MeteringService/UpsertSubscriptionState"


@pytest.mark.parametrize("sent", ["req_from_the_gateway_0042", ""])
async def test_a_request_id_follows_a_call_from_invoicing_into_metering(
    platform: Platform, sent: str
) -> None:
    merchant_id = f"mer_obs_ids{next(_merchants)}"
    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        await checkout(platform, merchant_id, sent)
    [invoicing_line] = rpc_lines(logs, COMPLETE)
    [metering_line] = rpc_lines(logs, UPSERT)
    request_id = invoicing_line["request_id"]
    # Without one from the caller, invoicing made one up, and passed it on all the same.
    assert request_id == (sent or request_id) and str(request_id).startswith("req_")
    assert metering_line["request_id"] == request_id
    assert (invoicing_line["code"], metering_line["code"], invoicing_line["log_level"]) == (
        "OK",
        "OK",
        "info",
    )
    assert isinstance(invoicing_line["duration_ms"], float)
    # Unbound when the call ends: nothing carries over to the next one.
    assert structlog.contextvars.get_contextvars().get("request_id") is None


async def test_concurrent_calls_keep_their_own_request_ids(platform: Platform) -> None:
    ids = [f"req_concurrent_{n:02}" for n in range(20)]
    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        answers = await asyncio.gather(
            *(
                platform.metering_stub.GetMeter(
                    mpb.GetMeterRequest(id=f"mtr_{request_id}"),
                    metadata=metadata("mer_obs_concurrent", request_id),
                )
                for request_id in ids
            ),
            return_exceptions=True,
        )
    assert {type(answer) for answer in answers} == {grpc.aio.AioRpcError}
    lines = rpc_lines(logs, "/billing.metering.v1.MeteringService/GetMeter")
    assert Counter(line["request_id"] for line in lines) == Counter(ids)


async def test_metering_counts_ingested_and_deduplicated_events_and_calls_by_code(
    platform: Platform,
) -> None:
    merchant_id = f"mer_obs_metrics{next(_merchants)}"
    subscription_id = await checkout(platform, merchant_id)
    subscription = await platform.invoicing_stub.GetSubscription(
        ipb.GetSubscriptionRequest(id=subscription_id), metadata=metadata(merchant_id)
    )
    port = platform.metrics_ports[0]
    before = await scrape(port)
    events = [
        mpb.UsageEventInput(
            service_id=subscription.service_id,
            subscription_id=subscription.id,
            user_id=subscription.user_id,
            event_key="token_generated",
            quantity="5000",
            idempotency_key=key,
        )
        for key in ("a", "b", "c", "a", "b")  # two repeats within the batch
    ]
    await platform.metering_stub.BatchRecordUsageEvents(
        mpb.BatchRecordUsageEventsRequest(events=events), metadata=metadata(merchant_id)
    )
    # Sent again: all five are duplicates of stored events now.
    await platform.metering_stub.BatchRecordUsageEvents(
        mpb.BatchRecordUsageEventsRequest(events=events[:3]), metadata=metadata(merchant_id)
    )
    with pytest.raises(grpc.aio.AioRpcError):
        await platform.metering_stub.GetMeter(
            mpb.GetMeterRequest(id="mtr_missing"), metadata=metadata(merchant_id)
        )
    after = await scrape(port)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    service = {"service": "metering_svc"}
    batch = "/billing.metering.v1.MeteringService/BatchRecordUsageEvents"
    assert delta("usage_events_ingested_total", **service) == 3
    assert delta("usage_events_deduplicated_total", **service) == 5
    assert delta("grpc_requests_total", **service, method=batch, code="OK") == 2
    assert delta("grpc_request_seconds_count", **service, method=batch) == 2
    get_meter = "/billing.metering.v1.MeteringService/GetMeter"
    assert delta("grpc_requests_total", **service, method=get_meter, code="NOT_FOUND") == 1
    assert delta("grpc_requests_total", **service, method=get_meter, code="OK") == 0


async def test_an_unauthenticated_call_is_counted_under_its_code(platform: Platform) -> None:
    port = platform.metrics_ports[2]
    get = "/billing.settlement.v1.SettlementService/GetSettlement"
    labels = {"service": "settlement_svc", "method": get, "code": "UNAUTHENTICATED"}
    before = value(await scrape(port), "grpc_requests_total", **labels)
    async with grpc.aio.insecure_channel(platform.addresses[2]) as channel:
        with pytest.raises(grpc.aio.AioRpcError):
            call: Any = channel.unary_unary(get)  # raw bytes: the request is never parsed
            await call(b"", metadata=metadata("mer_obs_unauth"))
    assert value(await scrape(port), "grpc_requests_total", **labels) == before + 1


async def test_invoicing_reports_invoices_by_status_and_its_outbox(
    platform: Platform, db: asyncpg.Connection
) -> None:
    merchant_id = f"mer_obs_invoices{next(_merchants)}"
    subscription_id = await checkout(platform, merchant_id)
    subscription = await platform.invoicing_stub.GetSubscription(
        ipb.GetSubscriptionRequest(id=subscription_id), metadata=metadata(merchant_id)
    )
    port = platform.metrics_ports[1]
    before = await scrape(port)
    await platform.invoicing_stub.CreateInvoice(
        ipb.CreateInvoiceRequest(
            subscription_id=subscription.id,
            payment_plan_id=subscription.plan_id,
            amount="12.500000",
            draft=True,
        ),
        metadata=metadata(merchant_id),
    )
    platform.clock.advance(timedelta(seconds=90))
    after = await scrape(port)
    service = {"service": "invoicing_svc"}
    statuses = {"DRAFT", "OPEN", "PAID", "VOID", "UNCOLLECTIBLE"}
    assert {dict(labels)["status"] for name, labels in after if name == "invoices"} == statuses
    for status in statuses:
        change = value(after, "invoices", **service, status=status) - value(
            before, "invoices", **service, status=status
        )
        assert change == (1 if status == "DRAFT" else 0), status
    row = await db.fetchrow(
        "SELECT count(*), min(create_time) FROM invoicing.outbox"
        " WHERE delivered_time IS NULL AND dead_time IS NULL"
    )
    dead = await db.fetchval("SELECT count(*) FROM invoicing.outbox WHERE dead_time IS NOT NULL")
    assert row is not None
    backlog, oldest = row
    assert value(after, "outbox_backlog_messages", **service) == backlog
    assert value(after, "outbox_dead_messages", **service) == dead
    assert value(after, "outbox_oldest_undelivered_seconds", **service) == (
        (platform.clock.now() - oldest).total_seconds()
    )
    assert (platform.clock.now() - oldest) >= timedelta(seconds=90)


async def test_settlement_reports_settlements_by_status(
    platform: Platform, db: asyncpg.Connection
) -> None:
    samples = await scrape(platform.metrics_ports[2])
    rows = await db.fetch("SELECT status, count(*) FROM settlement.settlements GROUP BY status")
    stored = {row["status"]: row["count"] for row in rows}
    for status in ("PENDING", "CONFIRMED", "FAILED"):
        labels = {"service": "settlement_svc", "status": status}
        assert value(samples, "settlements", **labels) == stored.get(status, 0)
    assert ("outbox_backlog_messages", frozenset({("service", "settlement_svc")})) in samples
