"""Prepaid credits paying invoices as invoicing finalizes them, with both services running:
settlement's outbox tells invoicing who holds credits, a period's invoice shows what they paid
as a line and owes the rest, an invoice they pay whole is PAID with no settlement, a retried
finalization spends nothing twice, and a voided invoice gives its credits back."""

from datetime import timedelta

from billing.invoicing.v1 import invoicing_pb2 as ipb
from billing.settlement.v1 import settlement_pb2 as pb
from settlement_svc.service_layer.relay import outbox_relay
from tests.settlement.conftest import Shop

PERIOD_AND_GRACE = timedelta(days=31, hours=2)


async def granted(shop: Shop, user_id: str, amount: str, description: str) -> pb.CreditGrant:
    """A promotional grant, and invoicing told of the balance (settlement's outbox relayed)."""
    created = await shop.platform.stub.CreateCreditGrant(
        pb.CreateCreditGrantRequest(user_id=user_id, amount=amount, description=description),
        metadata=shop.metadata,
    )
    await relay_settlement(shop)
    return created


async def relay_settlement(shop: Shop) -> None:
    relay = outbox_relay(shop.platform.settlements)
    while await relay.relay_once():
        pass


async def credit_balance(shop: Shop, user_id: str) -> str:
    found = await shop.platform.stub.GetCreditBalance(
        pb.GetCreditBalanceRequest(user_id=user_id), metadata=shop.metadata
    )
    return found.balance


async def usage_plan(shop: Shop) -> tuple[ipb.Plan, ipb.Subscription]:
    plan = await shop.merchant.plan(pricing_type=ipb.PRICING_TYPE_USAGE_BASED, amount="0.000010")
    return plan, await shop.merchant.subscribe(plan)


def lines(invoice: ipb.Invoice) -> list[tuple[str, str]]:
    return [(line.description, line.amount) for line in invoice.lines]


async def test_credits_pay_part_of_a_periods_invoice_and_the_rest_is_owed(shop: Shop) -> None:
    _, subscription = await usage_plan(shop)
    user = subscription.user_id
    await granted(shop, user, "0.2", "Welcome")
    for _ in range(10):
        await shop.merchant.record(subscription, "token_generated", "5000")

    await shop.merchant.advance(subscription, PERIOD_AND_GRACE)

    [invoice] = await shop.merchant.invoices(subscription)
    assert (invoice.status, invoice.amount, invoice.credits_applied) == (
        ipb.INVOICE_STATUS_OPEN,
        "0.300000",
        "0.200000",
    )
    assert lines(invoice) == [
        ("Usage: 50000 x 0.00001", "0.500000"),
        ("Credits applied", "-0.200000"),
    ]
    assert await credit_balance(shop, user) == "0.000000"
    await shop.merchant.relay()  # the ledger records what is left to pay
    assert await shop.balance(f"receivable:{user}") == "0.300000"
    assert await shop.balance("revenue") == "-0.500000"
    assert await shop.balance(f"credit:{user}") == "0.000000"
    report = await shop.platform.stub.Reconcile(pb.ReconcileRequest(), metadata=shop.metadata)
    assert list(report.differences) == []


async def test_credits_that_pay_all_of_an_invoice_make_it_paid_and_spend_once(
    shop: Shop,
) -> None:
    plan, subscription = await usage_plan(shop)
    user = subscription.user_id
    await granted(shop, user, "0.3", "Big spender")
    await granted(shop, user, "1", "Launch")
    request = ipb.CreateInvoiceRequest(
        subscription_id=subscription.id, payment_plan_id=plan.id, amount="0.5", request_id="inv-1"
    )

    invoice = await shop.merchant.stub.CreateInvoice(request, metadata=shop.metadata)
    again = await shop.merchant.stub.CreateInvoice(request, metadata=shop.metadata)

    assert again == invoice
    assert (invoice.status, invoice.amount, invoice.credits_applied, invoice.settlement_id) == (
        ipb.INVOICE_STATUS_PAID,
        "0.000000",
        "0.500000",
        "",
    )
    assert invoice.paid_time == invoice.finalize_time
    assert lines(invoice) == [
        ("Amount computed by the merchant", "0.500000"),
        ("Credits applied", "-0.500000"),
    ]
    # Both grants never expire and have the same priority: the older is spent first.
    found = await shop.platform.stub.ListCreditGrants(
        pb.ListCreditGrantsRequest(user_id=user), metadata=shop.metadata
    )
    assert {(g.description, g.remaining, g.status) for g in found.credit_grants} == {
        ("Big spender", "0.000000", pb.CREDIT_GRANT_STATUS_SPENT),
        ("Launch", "0.800000", pb.CREDIT_GRANT_STATUS_ACTIVE),
    }
    assert await credit_balance(shop, user) == "0.800000"
    await shop.merchant.relay()
    assert await shop.balance(f"receivable:{user}") == "0.000000"
    assert await shop.balance("revenue") == "-0.500000"


async def test_a_finalized_draft_takes_credits_and_voiding_it_gives_them_back(
    shop: Shop,
) -> None:
    plan, subscription = await usage_plan(shop)
    user = subscription.user_id
    await granted(shop, user, "2", "Refund of an outage")
    draft = await shop.merchant.stub.CreateInvoice(
        ipb.CreateInvoiceRequest(
            subscription_id=subscription.id, payment_plan_id=plan.id, amount="5", draft=True
        ),
        metadata=shop.metadata,
    )
    assert (draft.status, draft.credits_applied) == (ipb.INVOICE_STATUS_DRAFT, "0.000000")

    opened = await shop.merchant.stub.FinalizeInvoice(
        ipb.FinalizeInvoiceRequest(id=draft.id), metadata=shop.metadata
    )

    assert (opened.status, opened.amount, opened.credits_applied) == (
        ipb.INVOICE_STATUS_OPEN,
        "3.000000",
        "2.000000",
    )
    got = await shop.merchant.stub.GetInvoice(
        ipb.GetInvoiceRequest(id=draft.id), metadata=shop.metadata
    )
    assert got == opened
    assert await credit_balance(shop, user) == "0.000000"

    await shop.merchant.stub.VoidInvoice(
        ipb.VoidInvoiceRequest(id=draft.id), metadata=shop.metadata
    )
    await shop.merchant.relay()  # the ledger reverses the invoice and gives the credits back

    assert await credit_balance(shop, user) == "2.000000"
    assert await shop.balance(f"receivable:{user}") == "0.000000"
    assert await shop.balance("revenue") == "0.000000"
    assert await shop.balance(f"credit:{user}") == "-2.000000"


async def test_a_subscriber_without_credits_is_billed_in_full(shop: Shop, other_shop: Shop) -> None:
    _, subscription = await usage_plan(shop)
    # The same user id with another merchant holds credits: they are that merchant's.
    await granted(other_shop, subscription.user_id, "5", "Elsewhere")
    await shop.merchant.record(subscription, "token_generated", "5000")

    await shop.merchant.advance(subscription, PERIOD_AND_GRACE)

    [invoice] = await shop.merchant.invoices(subscription)
    assert (invoice.status, invoice.amount, invoice.credits_applied) == (
        ipb.INVOICE_STATUS_OPEN,
        "0.050000",
        "0.000000",
    )
    assert lines(invoice) == [("Usage: 5000 x 0.00001", "0.050000")]
    assert await credit_balance(other_shop, subscription.user_id) == "5.000000"
