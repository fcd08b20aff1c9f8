"""Paid top-ups: a top-up invoice sells prepaid credits, owed as any invoice but not revenue;
its payment on chain grants them once (an overpayment is a credit of its own), credits never
pay a top-up, a voided one grants nothing, and the credits bought pay the next invoice."""

from billing.invoicing.v1 import invoicing_pb2 as ipb
from billing.settlement.v1 import settlement_pb2 as pb
from settlement_svc.service_layer.verification import verify_pending
from tests.conftest import CONFIRMATIONS
from tests.settlement.conftest import Shop


async def top_up(shop: Shop, amount: str) -> ipb.Invoice:
    """A top-up of the shop's subscriber, recorded by the ledger."""
    plan = await shop.merchant.plan(pricing_type=ipb.PRICING_TYPE_USAGE_BASED, amount="0.000010")
    subscription = await shop.merchant.subscribe(plan)
    invoice = await shop.merchant.stub.CreateInvoice(
        ipb.CreateInvoiceRequest(
            subscription_id=subscription.id, payment_plan_id=plan.id, amount=amount, top_up=True
        ),
        metadata=shop.metadata,
    )
    await shop.merchant.relay()
    return invoice


async def grants(shop: Shop, user_id: str) -> list[tuple[int, str, str, str]]:
    found = await shop.platform.stub.ListCreditGrants(
        pb.ListCreditGrantsRequest(user_id=user_id), metadata=shop.metadata
    )
    return sorted((g.source, g.amount, g.remaining, g.reference) for g in found.credit_grants)


async def credit_balance(shop: Shop, user_id: str) -> str:
    found = await shop.platform.stub.GetCreditBalance(
        pb.GetCreditBalanceRequest(user_id=user_id), metadata=shop.metadata
    )
    return found.balance


async def reconciled(shop: Shop) -> list[str]:
    report = await shop.platform.stub.Reconcile(pb.ReconcileRequest(), metadata=shop.metadata)
    return [d.kind for d in report.differences]


async def test_a_paid_top_up_grants_its_credits_once_and_they_pay_the_next_invoice(
    shop: Shop,
) -> None:
    invoice = await top_up(shop, "5")
    user = invoice.user_id
    assert (invoice.status, invoice.amount, invoice.top_up, invoice.credits_applied) == (
        ipb.INVOICE_STATUS_OPEN,
        "5.000000",
        True,
        "0.000000",
    )
    assert [(line.description, line.amount) for line in invoice.lines] == [
        ("Prepaid credits", "5.000000")
    ]
    # Sold, not earned: owed by the subscriber, owed back to it in credits once paid.
    assert await shop.balance(f"receivable:{user}") == "5.000000"
    assert await shop.balance("top_ups") == "-5.000000"
    assert await shop.balance("revenue") == "0.000000"
    assert await credit_balance(shop, user) == "0.000000"

    settlement = await shop.submit(invoice.id, await shop.pay(6_000_000))
    await shop.settle()

    paid = await shop.merchant.stub.GetInvoice(
        ipb.GetInvoiceRequest(id=invoice.id), metadata=shop.metadata
    )
    assert (paid.status, paid.settlement_id) == (ipb.INVOICE_STATUS_PAID, settlement.id)
    # The top-up's 5 and the overpayment's 1, each its own grant.
    assert await grants(shop, user) == [
        (pb.CREDIT_SOURCE_PAYMENT, "1.000000", "1.000000", settlement.id),
        (pb.CREDIT_SOURCE_TOP_UP, "5.000000", "5.000000", invoice.id),
    ]
    assert await credit_balance(shop, user) == "6.000000"
    assert await shop.balance("top_ups") == "0.000000"
    assert await shop.balance(f"receivable:{user}") == "0.000000"
    assert await shop.balance(f"credit:{user}") == "-6.000000"
    assert await shop.balance("usdc_received") == "6.000000"
    assert await reconciled(shop) == []
    entries = await shop.platform.stub.ListEntries(
        pb.ListEntriesRequest(account="top_ups"), metadata=shop.metadata
    )
    assert [(e.kind, e.reference, e.debit, e.credit) for e in entries.entries] == [
        ("credit_top_up", invoice.id, "5.000000", "0.000000"),
        ("invoice", invoice.id, "0.000000", "5.000000"),
    ]

    # A verifier pass again grants nothing twice.
    await shop.settle()
    assert len(await grants(shop, user)) == 2

    # The credits bought pay the next invoice; a top-up is never paid by credits.
    plan_id = invoice.payment_plan_id
    billed = await shop.merchant.stub.CreateInvoice(
        ipb.CreateInvoiceRequest(
            subscription_id=invoice.subscription_id, payment_plan_id=plan_id, amount="2.5"
        ),
        metadata=shop.metadata,
    )
    assert (billed.status, billed.amount, billed.credits_applied) == (
        ipb.INVOICE_STATUS_PAID,
        "0.000000",
        "2.500000",
    )
    again = await shop.merchant.stub.CreateInvoice(
        ipb.CreateInvoiceRequest(
            subscription_id=invoice.subscription_id,
            payment_plan_id=plan_id,
            amount="1",
            top_up=True,
        ),
        metadata=shop.metadata,
    )
    assert (again.status, again.amount, again.credits_applied) == (
        ipb.INVOICE_STATUS_OPEN,
        "1.000000",
        "0.000000",
    )
    assert await credit_balance(shop, user) == "3.500000"


async def test_a_top_up_paid_before_the_ledger_heard_of_it_grants_once_when_it_does(
    shop: Shop,
) -> None:
    """The payment may confirm before invoicing's outbox records the top-up in the ledger: the
    recording then grants it, and recording it again grants nothing more."""
    plan = await shop.merchant.plan(pricing_type=ipb.PRICING_TYPE_USAGE_BASED, amount="0.000010")
    subscription = await shop.merchant.subscribe(plan)
    invoice = await shop.merchant.stub.CreateInvoice(
        ipb.CreateInvoiceRequest(
            subscription_id=subscription.id, payment_plan_id=plan.id, amount="5", top_up=True
        ),
        metadata=shop.metadata,
    )
    settlement = await shop.submit(invoice.id, await shop.pay(5_000_000))
    # Confirmed, while invoicing's outbox has not recorded the invoice in the ledger yet.
    await shop.usdc.mine(CONFIRMATIONS)
    await verify_pending(shop.platform.settlements)
    assert (await shop.get(settlement.id)).status == pb.SETTLEMENT_STATUS_CONFIRMED
    assert await grants(shop, invoice.user_id) == []

    await shop.settle()  # the record arrives
    await shop.settle()

    assert await grants(shop, invoice.user_id) == [
        (pb.CREDIT_SOURCE_TOP_UP, "5.000000", "5.000000", invoice.id)
    ]
    assert await credit_balance(shop, invoice.user_id) == "5.000000"
    assert await reconciled(shop) == []


async def test_a_voided_top_up_grants_nothing(shop: Shop) -> None:
    invoice = await top_up(shop, "5")

    await shop.merchant.stub.VoidInvoice(
        ipb.VoidInvoiceRequest(id=invoice.id), metadata=shop.metadata
    )
    await shop.merchant.relay()

    assert await shop.balance("top_ups") == "0.000000"
    assert await shop.balance(f"receivable:{invoice.user_id}") == "0.000000"
    assert await grants(shop, invoice.user_id) == []
    assert await credit_balance(shop, invoice.user_id) == "0.000000"
    entries = await shop.platform.stub.ListEntries(
        pb.ListEntriesRequest(account="top_ups"), metadata=shop.metadata
    )
    assert [(e.kind, e.debit, e.credit) for e in entries.entries] == [
        ("invoice_void", "5.000000", "0.000000"),
        ("invoice", "0.000000", "5.000000"),
    ]
    assert await reconciled(shop) == []
