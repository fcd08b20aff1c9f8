"""One bound of money (10^15 USDC, service_kit/decimals.py) from the plan to the ledger: a plan
priced at it is refused, a period priced beyond it is held as a DRAFT with its reason (and an
`invoice.held` webhook), nothing is posted, and Reconcile stays clean. An invoice the ledger
refuses anyway is parked as a dead letter alone, counted, and delivered when retried after a fix.
"""

import json
import os
import subprocess
import sys
from datetime import timedelta
from decimal import Decimal

import asyncpg
import grpc
import pytest

from billing.invoicing.v1 import invoicing_pb2 as ipb
from billing.settlement.v1 import settlement_pb2 as pb
from devstack.postgres import free_port
from invoicing_svc.service_layer.relay import outbox_relay
from invoicing_svc.service_layer.unit_of_work import POST_INVOICE
from invoicing_svc.service_layer.webhooks import deliver_due_webhooks
from tests.conftest import SERVICE_TOKEN, Platform, field_violation
from tests.invoicing.receiver import Receiver
from tests.kit.test_observability import scrape, value
from tests.settlement.conftest import Shop

BOUND = "1000000000000000"
# The report's usage, priced by packages of 1 unit at 462,857,142,857.142857 USDC each.
UNITS = "123558964.983777037"
PACKAGE_PRICE = "462857142857.142857"
PRICED = "57190149514285714268.063005"  # 123,558,965 packages x the price
DAY_AND_GRACE = timedelta(days=1, hours=1, minutes=1)


def package_charge(unit_price: str) -> ipb.UsageCharge:
    return ipb.UsageCharge(
        event_key="tokens", model=ipb.CHARGE_MODEL_PACKAGE, unit_price=unit_price, package_size="1"
    )


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        (
            {"pricing_type": ipb.PRICING_TYPE_USAGE_BASED, "charges": [package_charge(BOUND)]},
            "plan.charges[0].unit_price",
        ),
        ({"pricing_type": ipb.PRICING_TYPE_FIXED_RECURRING, "amount": BOUND}, "plan.amount"),
        ({"pricing_type": ipb.PRICING_TYPE_USAGE_BASED, "amount": "1e15"}, "plan.amount"),
        (
            {
                "pricing_type": ipb.PRICING_TYPE_USAGE_BASED,
                "charges": [
                    ipb.UsageCharge(
                        event_key="tokens",
                        model=ipb.CHARGE_MODEL_GRADUATED,
                        tiers=[ipb.Tier(unit_price="1", flat_fee=BOUND)],
                    )
                ],
            },
            "plan.charges[0].tiers[0].flat_fee",
        ),
    ],
)
async def test_a_plan_priced_at_the_bound_of_money_is_refused_naming_the_field(
    shop: Shop, fields: dict[str, object], field: str
) -> None:
    merchant = shop.merchant
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await merchant.plan(**fields)
    listed = await merchant.stub.ListPlans(ipb.ListPlansRequest(), metadata=merchant.metadata)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violation(refused.value) == field
    assert refused.value.details() == f"{field} must be below {BOUND}"
    assert list(listed.plans) == []


async def test_a_price_just_below_the_bound_is_a_valid_plan(shop: Shop) -> None:
    price = "999999999999999.999999999999"
    plan = await shop.merchant.plan(
        pricing_type=ipb.PRICING_TYPE_HYBRID, amount=price, charges=[package_charge(price)]
    )
    assert (plan.amount, plan.charges[0].unit_price) == (price, price)


async def test_a_period_priced_beyond_the_bound_is_held_never_posted_and_reconciles(
    shop: Shop, db: asyncpg.Connection
) -> None:
    merchant = shop.merchant
    receiver = Receiver(free_port())
    await merchant.webhook_endpoint(f"http://127.0.0.1:{receiver.port}/hooks", ["invoice.held"])
    plan = await merchant.plan(
        pricing_type=ipb.PRICING_TYPE_USAGE_BASED,
        billing_interval=ipb.BILLING_INTERVAL_DAY,
        charges=[package_charge(PACKAGE_PRICE)],
    )
    subscription = await merchant.subscribe(plan)
    await merchant.record(subscription, "tokens", UNITS)
    await merchant.advance(subscription, DAY_AND_GRACE)
    await shop.settle()  # both outboxes relayed
    (held,) = await merchant.invoices(subscription)
    reason = (
        f"the line 'tokens: {UNITS} (package)' prices to {PRICED} USDC, and an amount must be"
        f" below {BOUND} USDC; void this invoice and bill the usage with CreateInvoice"
    )
    with receiver:
        while await deliver_due_webhooks(merchant.invoicing):
            pass
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await merchant.stub.FinalizeInvoice(
            ipb.FinalizeInvoiceRequest(id=held.id), metadata=merchant.metadata
        )
    posted = await db.fetchval(
        "SELECT count(*) FROM settlement.journal_transactions WHERE reference = $1", held.id
    )
    report = await shop.platform.stub.Reconcile(pb.ReconcileRequest(), metadata=shop.metadata)

    assert (held.status, held.amount, list(held.lines)) == (
        ipb.INVOICE_STATUS_DRAFT,
        "0.000000",
        [],
    )
    assert held.hold_reason == reason
    assert not held.HasField("finalize_time")
    assert [json.loads(body)["type"] for _, body in receiver.received] == ["invoice.held"]
    sent = json.loads(receiver.received[0][1])["data"]
    assert (sent["id"], sent["status"], sent["holdReason"]) == (
        held.id,
        "INVOICE_STATUS_DRAFT",
        reason,
    )
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert refused.value.details() == f"invoice {held.id} is held and cannot be finalized: {reason}"
    assert posted == 0
    assert (list(report.differences), report.invoices_checked) == ([], 1)

    voided = await merchant.stub.VoidInvoice(
        ipb.VoidInvoiceRequest(id=held.id), metadata=merchant.metadata
    )
    await merchant.relay()
    report = await shop.platform.stub.Reconcile(pb.ReconcileRequest(), metadata=shop.metadata)
    assert (voided.status, voided.hold_reason) == (ipb.INVOICE_STATUS_VOID, reason)
    assert list(report.differences) == []
    assert (
        await db.fetchval(
            "SELECT count(*) FROM settlement.journal_transactions WHERE reference = $1", held.id
        )
        == 0
    )


async def test_a_total_at_the_bound_is_held_though_each_line_fits(shop: Shop) -> None:
    merchant = shop.merchant
    half = str(Decimal(BOUND) / 2)
    plan = await merchant.plan(
        pricing_type=ipb.PRICING_TYPE_USAGE_BASED,
        billing_interval=ipb.BILLING_INTERVAL_DAY,
        charges=[
            ipb.UsageCharge(event_key=key, model=ipb.CHARGE_MODEL_PER_UNIT, unit_price=half)
            for key in ("input", "output")
        ],
    )
    subscription = await merchant.subscribe(plan)
    await merchant.record(subscription, "input", "1")
    await merchant.record(subscription, "output", "1")
    await merchant.advance(subscription, DAY_AND_GRACE)
    (held,) = await merchant.invoices(subscription)
    assert (held.status, held.hold_reason) == (
        ipb.INVOICE_STATUS_DRAFT,
        f"the total {BOUND}.000000 USDC must be below {BOUND} USDC; void this invoice and bill"
        " the usage with CreateInvoice",
    )


def outbox_retry(
    service: str, *arguments: str, database_url: str
) -> subprocess.CompletedProcess[str]:
    prefix = service.removesuffix("_svc").upper()
    return subprocess.run(
        [sys.executable, "-m", service, "outbox-retry", *arguments],
        env={
            **os.environ,
            "BILLING_SERVICE_TOKEN": SERVICE_TOKEN,
            f"{prefix}_DATABASE_URL": database_url,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_an_invoice_the_ledger_refuses_is_parked_alone_and_posted_once_retried(
    shop: Shop, platform: Platform, db: asyncpg.Connection, database_url: str
) -> None:
    """What the report saw, made by hand (invoicing no longer issues such an amount): the ledger
    refuses it for good, so it is parked, and the other invoices of its batch are posted."""
    merchant = shop.merchant
    plan = await merchant.plan(pricing_type=ipb.PRICING_TYPE_USAGE_BASED, amount="0.00001")
    subscription = await merchant.subscribe(plan)
    invoices = [
        await merchant.stub.CreateInvoice(
            ipb.CreateInvoiceRequest(
                subscription_id=subscription.id, payment_plan_id=plan.id, amount=amount
            ),
            metadata=merchant.metadata,
        )
        for amount in ("1.5", "2.5", "3.5")
    ]
    poison = invoices[1]
    await db.execute(
        "UPDATE invoicing.invoices SET amount = '57190149506776799983.32' WHERE id = $1", poison.id
    )
    port = platform.metrics_ports[1]
    before = value(await scrape(port), "outbox_dead_messages", service="invoicing_svc")
    relay = outbox_relay(merchant.invoicing)
    while await relay.relay_once():
        pass
    platform.clock.advance(timedelta(hours=1))
    assert await relay.relay_once() == 0  # not retried, however late
    parked = await db.fetch(
        "SELECT id, payload->>'invoice_id' AS invoice_id, attempts, last_error"
        " FROM invoicing.outbox WHERE merchant_id = $1 AND topic = $2 AND dead_time IS NOT NULL",
        merchant.merchant_id,
        POST_INVOICE,
    )
    after = value(await scrape(port), "outbox_dead_messages", service="invoicing_svc")
    posted = await db.fetch(
        "SELECT reference FROM settlement.journal_transactions WHERE merchant_id = $1",
        merchant.merchant_id,
    )
    report = await platform.stub.Reconcile(pb.ReconcileRequest(), metadata=shop.metadata)

    assert [(row["invoice_id"], row["attempts"]) for row in parked] == [(poison.id, 1)]
    assert parked[0]["last_error"] == (
        f"settlement refused: invoices[0].amount must be below {BOUND}"
    )
    assert after - before == 1
    assert sorted(row["reference"] for row in posted) == sorted([invoices[0].id, invoices[2].id])
    assert [(d.kind, d.reference) for d in report.differences] == [
        ("invoice_not_posted", poison.id),
        ("receivable_mismatch", f"receivable:{subscription.user_id}"),
    ]

    # The fix (the invoice's amount corrected), then the operator's command.
    await db.execute("UPDATE invoicing.invoices SET amount = 2.5 WHERE id = $1", poison.id)
    retried = outbox_retry("invoicing_svc", "--id", str(parked[0]["id"]), database_url=database_url)
    again = outbox_retry("invoicing_svc", "--id", str(parked[0]["id"]), database_url=database_url)
    assert (retried.returncode, retried.stdout) == (
        0,
        f"1 dead letter(s) due again: [{parked[0]['id']}]\n",
    )
    assert (again.returncode, again.stderr) == (
        1,
        f"python -m invoicing_svc outbox-retry: message {parked[0]['id']} is not a dead letter\n",
    )
    assert await relay.relay_once() == 1
    report = await platform.stub.Reconcile(pb.ReconcileRequest(), metadata=shop.metadata)
    assert list(report.differences) == []
    assert value(await scrape(port), "outbox_dead_messages", service="invoicing_svc") == before
    assert await shop.balance(f"receivable:{subscription.user_id}") == "7.500000"


def test_outbox_retry_needs_a_target_and_a_database() -> None:
    nowhere = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/billing"
    untargeted = outbox_retry("settlement_svc", database_url=nowhere)
    unreachable = outbox_retry("settlement_svc", "--all", database_url=nowhere)
    assert untargeted.returncode == 2
    assert untargeted.stderr.endswith("error: outbox-retry needs --id N or --all\n")
    assert (unreachable.returncode, unreachable.stderr) == (
        1,
        "python -m settlement_svc outbox-retry: the database cannot be reached"
        " (SETTLEMENT_DATABASE_URL names it)\n",
    )
