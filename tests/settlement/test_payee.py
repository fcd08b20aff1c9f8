"""The payee of a settlement is the merchant's payout wallet on record, never a field of the
request: merchant B cannot settle its own invoice with a public transaction in which A's
subscriber paid A, and nothing B does with that transaction blocks A or tells B about A."""

import grpc
import pytest

from billing.invoicing.v1 import invoicing_pb2 as ipb
from billing.settlement.v1 import settlement_pb2 as pb
from devstack.chain import Anvil, MockUsdc
from tests.conftest import Platform, field_violation
from tests.settlement.conftest import Shop, open_shop


async def invoice_status(shop: Shop, invoice_id: str) -> int:
    found = await shop.platform.invoicing_stub.GetInvoice(
        ipb.GetInvoiceRequest(id=invoice_id), metadata=shop.metadata
    )
    return found.status


async def test_another_merchants_customer_payment_settles_only_the_invoice_it_paid(
    shop: Shop, other_shop: Shop
) -> None:
    a, b = shop, other_shop
    a_invoice, b_invoice = await a.open_invoice("0.5"), await b.open_invoice("0.5")
    # A's subscriber pays A's wallet; the transaction hash is public.
    paid_a = await a.pay(500_000)

    # B names A's wallet as the payee: refused, nothing stored.
    with pytest.raises(grpc.aio.AioRpcError) as named:
        await b.submit(b_invoice.id, paid_a, merchant_wallet_address=a.wallet)
    assert (named.value.code(), field_violation(named.value)) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "merchant_wallet_address",
    )
    listed = await b.platform.stub.ListSettlements(
        pb.ListSettlementsRequest(invoice_id=b_invoice.id), metadata=b.metadata
    )
    assert list(listed.settlements) == []

    # B submits it without naming a payee: it is held to B's own wallet, so it fails, and
    # while it is pending it does not block A.
    b_pending = await b.submit(b_invoice.id, paid_a)
    assert (b_pending.status, b_pending.merchant_wallet_address) == (
        pb.SETTLEMENT_STATUS_PENDING,
        b.wallet,
    )
    a_pending = await a.submit(a_invoice.id, paid_a)
    assert a_pending.status == pb.SETTLEMENT_STATUS_PENDING
    await a.settle()

    a_settled, b_failed = await a.get(a_pending.id), await b.get(b_pending.id)
    assert (a_settled.status, a_settled.amount_paid) == (pb.SETTLEMENT_STATUS_CONFIRMED, "0.500000")
    assert (b_failed.status, b_failed.failure_reason, b_failed.failure_detail) == (
        pb.SETTLEMENT_STATUS_FAILED,
        pb.FAILURE_REASON_WRONG_RECIPIENT,
        f"the USDC went to {a.wallet}, not {b.wallet}",
    )
    assert await invoice_status(a, a_invoice.id) == ipb.INVOICE_STATUS_PAID
    assert await invoice_status(b, b_invoice.id) == ipb.INVOICE_STATUS_OPEN
    assert await a.balance("usdc_received") == "0.500000"
    assert await b.balance("usdc_received") == "0.000000"
    assert await b.balance(f"receivable:{b_invoice.user_id}") == "0.500000"

    # Once A's payment is confirmed, B's new submission answers as for any transaction that
    # did not pay B (PENDING, then FAILED), not 409: B learns nothing of A's settlement.
    again = await b.submit(b_invoice.id, paid_a)
    assert again.status == pb.SETTLEMENT_STATUS_FAILED
    assert again.failure_reason == pb.FAILURE_REASON_WRONG_RECIPIENT


async def test_a_wallet_pays_one_merchant_and_a_merchant_without_one_cannot_settle(
    shop: Shop, other_shop: Shop, platform: Platform
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as taken:
        await platform.stub.SetPayoutWallet(
            pb.SetPayoutWalletRequest(wallet_address=shop.wallet), metadata=other_shop.metadata
        )
    assert (taken.value.code(), field_violation(taken.value)) == (
        grpc.StatusCode.ALREADY_EXISTS,
        "wallet_address",
    )
    kept = await platform.stub.GetPayoutWallet(
        pb.GetPayoutWalletRequest(), metadata=other_shop.metadata
    )
    assert kept.wallet_address == other_shop.wallet

    with pytest.raises(grpc.aio.AioRpcError) as zero:
        await platform.stub.SetPayoutWallet(
            pb.SetPayoutWalletRequest(wallet_address="0x" + "00" * 20), metadata=shop.metadata
        )
    assert (zero.value.code(), field_violation(zero.value)) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "wallet_address",
    )

    nobody = (("x-merchant-id", "mer_no_wallet"),)
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await platform.stub.GetPayoutWallet(pb.GetPayoutWalletRequest(), metadata=nobody)
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND

    # Lowercase in, checksummed out; setting it again is a no-op for the same merchant.
    lower = shop.wallet.lower()
    same = await platform.stub.SetPayoutWallet(
        pb.SetPayoutWalletRequest(wallet_address=lower), metadata=shop.metadata
    )
    assert same.wallet_address == shop.wallet


async def test_a_merchant_without_a_payout_wallet_is_told_so(
    platform: Platform, usdc: MockUsdc, anvil: Anvil
) -> None:
    newcomer = await open_shop(platform, usdc, anvil, payout_wallet=False)
    invoice = await newcomer.open_invoice()
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await newcomer.submit(invoice.id, await newcomer.pay(500_000, receiver=anvil.accounts[2]))
    assert (refused.value.code(), field_violation(refused.value)) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "merchant_wallet_address",
    )
    listed = await platform.stub.ListSettlements(
        pb.ListSettlementsRequest(invoice_id=invoice.id), metadata=newcomer.metadata
    )
    assert list(listed.settlements) == []


async def test_a_transaction_settles_one_payment_even_when_a_wallet_changes_hands(
    shop: Shop, other_shop: Shop, platform: Platform
) -> None:
    """A's confirmed payment to wallet W; A moves to another wallet and B registers W: B's proof
    of the same transaction fails TRANSACTION_USED instead of settling a second invoice."""
    a, b = shop, other_shop
    a_invoice, b_invoice = await a.open_invoice("0.5"), await b.open_invoice("0.5")
    paid = await a.pay(500_000)
    confirmed = await a.submit(a_invoice.id, paid)
    await a.settle()
    assert (await a.get(confirmed.id)).status == pb.SETTLEMENT_STATUS_CONFIRMED

    await platform.stub.SetPayoutWallet(
        pb.SetPayoutWalletRequest(wallet_address="0x" + "ab" * 20), metadata=a.metadata
    )
    await platform.stub.SetPayoutWallet(
        pb.SetPayoutWalletRequest(wallet_address=a.wallet), metadata=b.metadata
    )
    reused = await b.submit(b_invoice.id, paid)
    assert (reused.status, reused.failure_reason) == (
        pb.SETTLEMENT_STATUS_FAILED,
        pb.FAILURE_REASON_TRANSACTION_USED,
    )
    assert await b.balance("usdc_received") == "0.000000"
