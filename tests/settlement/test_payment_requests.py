"""Payment requests: issued per payable, fixed payee/token/chain, renewed after expiry."""

from datetime import timedelta

import grpc
import pytest

from billing.invoicing.v1 import invoicing_pb2 as ipb
from billing.settlement.v1 import settlement_pb2 as pb
from tests.conftest import field_violation
from tests.settlement.conftest import Shop


async def request_of(shop: Shop, invoice_id: str) -> pb.PaymentRequest:
    return await shop.platform.stub.GetPaymentRequest(
        pb.GetPaymentRequestRequest(invoice_id=invoice_id), metadata=shop.metadata
    )


async def test_an_open_invoice_has_one_payment_request_with_every_term(shop: Shop) -> None:
    invoice = await shop.open_invoice("0.5")
    found = await request_of(shop, invoice.id)
    again = await request_of(shop, invoice.id)
    assert found == again
    assert found.reference_hash.startswith("0x") and len(found.reference_hash) == 66
    assert found.reference_hash == found.reference_hash.lower()
    token = shop.usdc.address
    assert (found.invoice_id, found.checkout_session_id, found.user_id) == (
        invoice.id,
        "",
        invoice.user_id,
    )
    assert (found.amount, found.amount_base_units) == ("0.500000", "500000")
    assert (found.payee_wallet_address, found.token_address, found.chain_id) == (
        shop.wallet,
        token,
        31337,
    )
    assert (found.token_name, found.token_version) == ("USD Coin", "2")
    assert found.uri == f"ethereum:{token}@31337/transfer?address={shop.wallet}&uint256=500000"
    assert found.hosted_url == f"http://127.0.0.1:8080/pay/{invoice.id}"
    assert found.status == pb.PAYMENT_REQUEST_STATUS_OPEN
    assert found.settlement_id == ""
    issued = shop.platform.clock.now()
    assert found.create_time.ToDatetime().replace(tzinfo=issued.tzinfo) == issued
    assert found.expire_time.seconds - found.create_time.seconds == 7 * 24 * 3600


async def test_references_are_unique_across_invoices_and_merchants(
    shop: Shop, other_shop: Shop
) -> None:
    references = set()
    for owner in (shop, shop, other_shop):
        invoice = await owner.open_invoice("1")
        references.add((await request_of(owner, invoice.id)).reference_hash)
    assert len(references) == 3


async def test_an_expired_request_of_an_open_invoice_is_replaced(shop: Shop) -> None:
    invoice = await shop.open_invoice("2")
    first = await request_of(shop, invoice.id)
    shop.platform.clock.advance(timedelta(days=7))
    second = await request_of(shop, invoice.id)
    assert second.reference_hash != first.reference_hash
    assert second.status == pb.PAYMENT_REQUEST_STATUS_OPEN
    assert second.expire_time.seconds - first.expire_time.seconds == 7 * 24 * 3600


async def test_nothing_payable_has_no_request(shop: Shop) -> None:
    plan = await shop.merchant.plan(pricing_type=ipb.PRICING_TYPE_USAGE_BASED, amount="0.00001")
    subscription = await shop.merchant.subscribe(plan)
    draft = await shop.merchant.stub.CreateInvoice(
        ipb.CreateInvoiceRequest(
            subscription_id=subscription.id, payment_plan_id=plan.id, amount="3", draft=True
        ),
        metadata=shop.metadata,
    )
    with pytest.raises(grpc.aio.AioRpcError) as unpayable:
        await request_of(shop, draft.id)
    assert unpayable.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert unpayable.value.details() == f"invoice {draft.id} is DRAFT, not OPEN"
    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        await request_of(shop, "in_unknown")
    assert unknown.value.code() is grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as both:
        await shop.platform.stub.GetPaymentRequest(
            pb.GetPaymentRequestRequest(invoice_id="in_a", checkout_session_id="cs_b"),
            metadata=shop.metadata,
        )
    assert both.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert field_violation(both.value) == "invoice_id"


async def test_another_merchants_invoice_has_no_request_for_it(
    shop: Shop, other_shop: Shop
) -> None:
    invoice = await shop.open_invoice("1")
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await request_of(other_shop, invoice.id)
    assert error.value.code() is grpc.StatusCode.NOT_FOUND


async def test_locate_invoice_answers_the_owner_only(shop: Shop) -> None:
    invoice = await shop.open_invoice("1")
    found = await shop.platform.stub.LocateInvoice(pb.LocateInvoiceRequest(invoice_id=invoice.id))
    assert found.merchant_id == shop.merchant.merchant_id
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await shop.platform.stub.LocateInvoice(pb.LocateInvoiceRequest(invoice_id="in_nobody"))
    assert error.value.code() is grpc.StatusCode.NOT_FOUND
