"""The chain watcher: a used authorization bound to a payment request settles its invoice,
whoever sent it; one that cannot settle is credited; a reorg before finality un-sees it."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from billing.invoicing.v1 import invoicing_pb2 as ipb
from billing.settlement.v1 import settlement_pb2 as pb
from devstack.chain import Anvil
from settlement_svc.domain.payment_requests import PaymentRequest, new_reference_hash
from settlement_svc.service_layer.watcher import watch_once
from tests.settlement.authorizations import sign
from tests.settlement.conftest import Shop
from tests.settlement.test_payment_requests import request_of

PAYER = 1
OTHER_PAYER = 2


def x402(authorization: pb.Authorization) -> dict[str, Any]:
    return {
        "from": authorization.from_address,
        "to": authorization.to_address,
        "value": authorization.value,
        "validAfter": authorization.valid_after,
        "validBefore": authorization.valid_before,
        "nonce": authorization.nonce,
    }


async def pay_directly(shop: Shop, anvil: Anvil, payer: int, request: pb.PaymentRequest) -> str:
    """The payer's own wallet submits its authorization (it pays the gas; no relayer)."""
    await shop.usdc.mint(anvil.accounts[payer], int(request.amount_base_units), shop.minter)
    authorization = sign(anvil.private_keys[payer], request)
    return await shop.usdc.transfer_with_authorization(
        anvil.accounts[payer], x402(authorization), authorization.signature
    )


async def settlements_of(shop: Shop, invoice_id: str) -> list[pb.Settlement]:
    found = await shop.platform.stub.ListSettlements(
        pb.ListSettlementsRequest(invoice_id=invoice_id), metadata=shop.metadata
    )
    return list(found.settlements)


async def test_a_payment_sent_by_the_payers_wallet_is_found_and_settles_once(
    shop: Shop, anvil: Anvil
) -> None:
    await watch_once(shop.platform.settlements)
    invoice = await shop.open_invoice("0.5")
    request = await request_of(shop, invoice.id)
    transaction = await pay_directly(shop, anvil, PAYER, request)
    assert await watch_once(shop.platform.settlements) == 1
    assert await watch_once(shop.platform.settlements) == 0
    [found] = await settlements_of(shop, invoice.id)
    assert (found.status, found.origin) == (
        pb.SETTLEMENT_STATUS_PENDING,
        pb.SETTLEMENT_ORIGIN_WATCHER,
    )
    assert (found.transaction_hash, found.reference_hash) == (transaction, request.reference_hash)
    assert found.payer_wallet_address == anvil.accounts[PAYER]
    await shop.settle()
    await watch_once(shop.platform.settlements)
    [confirmed] = await settlements_of(shop, invoice.id)
    assert (confirmed.status, confirmed.amount_paid) == (pb.SETTLEMENT_STATUS_CONFIRMED, "0.500000")
    paid = await shop.merchant.stub.GetInvoice(
        ipb.GetInvoiceRequest(id=invoice.id), metadata=shop.metadata
    )
    assert (paid.status, paid.settlement_id) == (ipb.INVOICE_STATUS_PAID, confirmed.id)
    assert await shop.balance("usdc_received") == "0.500000"


async def test_a_second_payment_of_a_paid_request_is_the_subscribers_credit(
    shop: Shop, anvil: Anvil
) -> None:
    await watch_once(shop.platform.settlements)
    invoice = await shop.open_invoice("0.5")
    request = await request_of(shop, invoice.id)
    await pay_directly(shop, anvil, PAYER, request)
    await watch_once(shop.platform.settlements)
    await shop.settle()
    # Another wallet signs the same reference (its own authorization slot): paid already.
    await pay_directly(shop, anvil, OTHER_PAYER, request)
    assert await watch_once(shop.platform.settlements) == 1
    assert await shop.balance(f"credit:{invoice.user_id}") == "0.000000"
    await shop.usdc.mine(3)
    await watch_once(shop.platform.settlements)
    assert await shop.balance(f"credit:{invoice.user_id}") == "-0.500000"
    assert await shop.balance("usdc_received") == "1.000000"
    assert len(await settlements_of(shop, invoice.id)) == 1
    await watch_once(shop.platform.settlements)
    assert await shop.balance(f"credit:{invoice.user_id}") == "-0.500000"


async def test_a_payment_to_an_expired_request_is_credited(shop: Shop, anvil: Anvil) -> None:
    await watch_once(shop.platform.settlements)
    invoice = await shop.open_invoice("0.75")
    chain_now = datetime.fromtimestamp(await shop.usdc.block_time(), UTC)
    expired = PaymentRequest(
        reference_hash=new_reference_hash(),
        merchant_id=shop.merchant.merchant_id,
        invoice_id=invoice.id,
        checkout_session_id="",
        user_id=invoice.user_id,
        amount=Decimal("0.75"),
        payee=shop.wallet,
        token=shop.usdc.address,
        chain_id=31337,
        create_time=chain_now - timedelta(days=8),
        expire_time=chain_now - timedelta(days=1),
    )
    async with shop.platform.settlements.unit_of_work() as uow:
        await uow.payment_requests.add(expired)
        await uow.commit()
    request = pb.PaymentRequest(
        reference_hash=expired.reference_hash,
        amount_base_units="750000",
        payee_wallet_address=shop.wallet,
        token_address=shop.usdc.address,
        chain_id=31337,
        token_name="USD Coin",
        token_version="2",
    )
    request.expire_time.FromDatetime(chain_now + timedelta(hours=1))
    await pay_directly(shop, anvil, PAYER, request)
    assert await watch_once(shop.platform.settlements) == 1
    assert await settlements_of(shop, invoice.id) == []
    await shop.usdc.mine(3)
    await watch_once(shop.platform.settlements)
    assert await shop.balance(f"credit:{invoice.user_id}") == "-0.750000"


async def test_a_payment_to_another_wallet_with_our_reference_is_ignored(
    shop: Shop, anvil: Anvil
) -> None:
    await watch_once(shop.platform.settlements)
    invoice = await shop.open_invoice("0.5")
    request = await request_of(shop, invoice.id)
    elsewhere = pb.PaymentRequest()
    elsewhere.CopyFrom(request)
    elsewhere.payee_wallet_address = anvil.accounts[4]
    await pay_directly(shop, anvil, PAYER, elsewhere)
    assert await watch_once(shop.platform.settlements) == 0
    assert await settlements_of(shop, invoice.id) == []


async def test_a_reorg_before_finality_unsees_the_payment(shop: Shop, anvil: Anvil) -> None:
    await watch_once(shop.platform.settlements)
    invoice = await shop.open_invoice("0.5")
    request = await request_of(shop, invoice.id)
    snapshot = await shop.usdc.snapshot()
    await pay_directly(shop, anvil, PAYER, request)
    assert await watch_once(shop.platform.settlements) == 1
    assert len(await settlements_of(shop, invoice.id)) == 1
    await shop.usdc.revert(snapshot)
    await shop.usdc.mine(2)  # the other branch grows past the vanished block
    assert await watch_once(shop.platform.settlements) == 0
    assert await settlements_of(shop, invoice.id) == []
    # Mined again (on the new branch): seen again, and it settles.
    await pay_directly(shop, anvil, PAYER, request)
    assert await watch_once(shop.platform.settlements) == 1
    await shop.settle()
    [confirmed] = await settlements_of(shop, invoice.id)
    assert confirmed.status == pb.SETTLEMENT_STATUS_CONFIRMED
