"""Invoices the Retempo way, the legal status moves, payment by settlement, PAST_DUE."""

from datetime import timedelta

import grpc
import pytest

from billing.invoicing.v1 import invoicing_pb2 as pb
from invoicing_svc.service_layer.period_close import mark_overdue
from service_kit.clock import ManualClock
from tests.conftest import field_violation
from tests.invoicing.conftest import Merchant


async def retempo_invoice(merchant: Merchant, **fields: object) -> pb.Invoice:
    return await merchant.stub.CreateInvoice(
        pb.CreateInvoiceRequest(**fields),  # type: ignore[arg-type]
        metadata=merchant.metadata,
    )


async def expect_error(call: object) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    return caught.value.code(), field_violation(caught.value)


async def test_a_merchant_computed_invoice_needs_the_subscriptions_plan(merchant: Merchant) -> None:
    plan = await merchant.plan(pricing_type=pb.PRICING_TYPE_USAGE_BASED, amount="0.000010")
    subscription = await merchant.subscribe(plan)
    other_plan = await merchant.plan(pricing_type=pb.PRICING_TYPE_USAGE_BASED, amount="0.5")

    invoice = await retempo_invoice(
        merchant, subscription_id=subscription.id, payment_plan_id=plan.id, amount="0.5"
    )

    assert (invoice.status, invoice.amount, invoice.payment_plan_id) == (
        pb.INVOICE_STATUS_OPEN,
        "0.500000",
        plan.id,
    )
    assert await expect_error(
        retempo_invoice(
            merchant, subscription_id=subscription.id, payment_plan_id=other_plan.id, amount="1"
        )
    ) == (grpc.StatusCode.INVALID_ARGUMENT, "payment_plan_id")
    assert await expect_error(
        retempo_invoice(merchant, subscription_id=subscription.id, amount="1")
    ) == (grpc.StatusCode.INVALID_ARGUMENT, "payment_plan_id")
    for amount in ("0", "-1", "0.0000001", "abc"):
        assert await expect_error(
            retempo_invoice(
                merchant, subscription_id=subscription.id, payment_plan_id=plan.id, amount=amount
            )
        ) == (grpc.StatusCode.INVALID_ARGUMENT, "amount")
    assert await expect_error(
        retempo_invoice(merchant, subscription_id="sub_nope", payment_plan_id=plan.id, amount="1")
    ) == (grpc.StatusCode.NOT_FOUND, "subscription_id")


async def test_one_invoice_per_subscription_and_period(merchant: Merchant) -> None:
    plan = await merchant.plan(pricing_type=pb.PRICING_TYPE_USAGE_BASED, amount="1")
    subscription = await merchant.subscribe(plan)
    period = {
        "period_start": subscription.current_period_start,
        "period_end": subscription.current_period_end,
    }
    await retempo_invoice(
        merchant, subscription_id=subscription.id, payment_plan_id=plan.id, amount="3", **period
    )

    assert await expect_error(
        retempo_invoice(
            merchant, subscription_id=subscription.id, payment_plan_id=plan.id, amount="4", **period
        )
    ) == (grpc.StatusCode.ALREADY_EXISTS, "period_start")
    # The scheduler finds the period invoiced and does not bill it again.
    await merchant.advance(subscription, timedelta(days=31, hours=1))
    assert [i.amount for i in await merchant.invoices(subscription)] == ["3.000000"]


async def test_a_retried_create_returns_the_first_invoice(merchant: Merchant) -> None:
    plan = await merchant.plan(pricing_type=pb.PRICING_TYPE_USAGE_BASED, amount="1")
    subscription = await merchant.subscribe(plan)
    request = {
        "subscription_id": subscription.id,
        "payment_plan_id": plan.id,
        "amount": "2",
        "request_id": "r-1",
    }

    first = await retempo_invoice(merchant, **request)
    again = await retempo_invoice(merchant, **request)

    assert again == first
    assert len(await merchant.invoices(subscription)) == 1


async def test_only_legal_status_moves(merchant: Merchant) -> None:
    plan = await merchant.plan(pricing_type=pb.PRICING_TYPE_USAGE_BASED, amount="1")
    subscription = await merchant.subscribe(plan)
    draft = await retempo_invoice(
        merchant, subscription_id=subscription.id, payment_plan_id=plan.id, amount="2", draft=True
    )
    assert draft.status == pb.INVOICE_STATUS_DRAFT
    md = merchant.metadata

    opened = await merchant.stub.FinalizeInvoice(
        pb.FinalizeInvoiceRequest(id=draft.id), metadata=md
    )
    assert opened.status == pb.INVOICE_STATUS_OPEN and opened.HasField("due_time")
    assert await expect_error(
        merchant.stub.FinalizeInvoice(pb.FinalizeInvoiceRequest(id=draft.id), metadata=md)
    ) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "id",
    )
    lost = await merchant.stub.MarkInvoiceUncollectible(
        pb.MarkInvoiceUncollectibleRequest(id=draft.id), metadata=md
    )
    assert lost.status == pb.INVOICE_STATUS_UNCOLLECTIBLE
    voided = await merchant.stub.VoidInvoice(pb.VoidInvoiceRequest(id=draft.id), metadata=md)
    assert voided.status == pb.INVOICE_STATUS_VOID
    assert await expect_error(
        merchant.stub.MarkInvoicePaid(
            pb.MarkInvoicePaidRequest(id=draft.id, settlement_id="stl_1"), metadata=md
        )
    ) == (grpc.StatusCode.FAILED_PRECONDITION, "id")


async def test_mark_paid_is_idempotent_and_clears_past_due(
    merchant: Merchant, billing_clock: ManualClock
) -> None:
    plan = await merchant.plan(pricing_type=pb.PRICING_TYPE_USAGE_BASED, amount="1")
    subscription = await merchant.subscribe(plan)
    await merchant.record(subscription, "token_generated", "5")
    await merchant.advance(subscription, timedelta(days=31, hours=1))
    [invoice] = await merchant.invoices(subscription)
    md = merchant.metadata

    # Past its due time (7 days of payment terms), the subscription is PAST_DUE.
    await merchant.advance(subscription, timedelta(days=8))
    assert await mark_overdue(merchant.invoicing) >= 1
    past_due = await merchant.stub.GetSubscription(
        pb.GetSubscriptionRequest(id=subscription.id), metadata=md
    )
    assert past_due.status == pb.SUBSCRIPTION_STATUS_PAST_DUE

    paid = await merchant.stub.MarkInvoicePaid(
        pb.MarkInvoicePaidRequest(id=invoice.id, settlement_id="stl_9"), metadata=md
    )
    again = await merchant.stub.MarkInvoicePaid(
        pb.MarkInvoicePaidRequest(id=invoice.id, settlement_id="stl_9"), metadata=md
    )

    assert (paid.status, paid.settlement_id) == (pb.INVOICE_STATUS_PAID, "stl_9")
    assert again == paid
    assert await expect_error(
        merchant.stub.MarkInvoicePaid(
            pb.MarkInvoicePaidRequest(id=invoice.id, settlement_id="stl_other"), metadata=md
        )
    ) == (grpc.StatusCode.FAILED_PRECONDITION, "settlement_id")
    active = await merchant.stub.GetSubscription(
        pb.GetSubscriptionRequest(id=subscription.id), metadata=md
    )
    assert active.status == pb.SUBSCRIPTION_STATUS_ACTIVE


async def test_another_merchant_sees_no_invoice(merchant: Merchant) -> None:
    plan = await merchant.plan(pricing_type=pb.PRICING_TYPE_USAGE_BASED, amount="1")
    subscription = await merchant.subscribe(plan)
    invoice = await retempo_invoice(
        merchant, subscription_id=subscription.id, payment_plan_id=plan.id, amount="1"
    )
    intruder = (("x-merchant-id", "mer_intruder"),)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await merchant.stub.GetInvoice(pb.GetInvoiceRequest(id=invoice.id), metadata=intruder)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    listed = await merchant.stub.ListInvoices(pb.ListInvoicesRequest(), metadata=intruder)
    assert list(listed.invoices) == []
