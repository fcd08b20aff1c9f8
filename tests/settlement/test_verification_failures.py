"""Every way a payment proof is refused: formats, conflicts, and what the chain shows."""

from datetime import timedelta

import grpc
import pytest

from billing.invoicing.v1 import invoicing_pb2 as ipb
from billing.settlement.v1 import settlement_pb2 as pb
from devstack.chain import Anvil, MockUsdc
from tests.conftest import field_violation
from tests.settlement.conftest import Shop

REVERTED = pb.FAILURE_REASON_REVERTED


async def test_a_reverted_transfer_fails(shop: Shop) -> None:
    invoice = await shop.open_invoice()
    # More than the payer holds, with gas fixed so the node mines it rather than refusing it.
    transaction = await shop.pay(10**15, gas=100_000)
    settlement = await shop.submit(invoice.id, transaction)
    await shop.settle()
    failed = await shop.get(settlement.id)
    assert (failed.status, failed.failure_reason) == (pb.SETTLEMENT_STATUS_FAILED, REVERTED)


async def test_a_transfer_to_another_address_fails(shop: Shop, anvil: Anvil) -> None:
    invoice = await shop.open_invoice()
    settlement = await shop.submit(invoice.id, await shop.pay(500_000, receiver=anvil.accounts[3]))
    await shop.settle()
    failed = await shop.get(settlement.id)
    assert (failed.status, failed.failure_reason) == (
        pb.SETTLEMENT_STATUS_FAILED,
        pb.FAILURE_REASON_WRONG_RECIPIENT,
    )
    assert anvil.accounts[3] in failed.failure_detail


async def test_another_token_fails(shop: Shop, anvil: Anvil) -> None:
    counterfeit = await MockUsdc.deploy(anvil.url, shop.minter)
    invoice = await shop.open_invoice()
    await counterfeit.mint(shop.payer, 500_000, shop.minter)
    transaction = await counterfeit.transfer(shop.payer, shop.wallet, 500_000)
    settlement = await shop.submit(invoice.id, transaction)
    await shop.settle()
    await counterfeit.close()
    failed = await shop.get(settlement.id)
    assert failed.failure_reason == pb.FAILURE_REASON_WRONG_TOKEN


async def test_usdc_from_another_wallet_fails(shop: Shop, anvil: Anvil) -> None:
    invoice = await shop.open_invoice()
    transaction = await shop.pay(500_000, sender=anvil.accounts[4])
    settlement = await shop.submit(invoice.id, transaction)
    await shop.settle()
    assert (await shop.get(settlement.id)).failure_reason == pb.FAILURE_REASON_WRONG_PAYER


async def test_a_short_amount_fails_and_the_invoice_stays_open(shop: Shop) -> None:
    invoice = await shop.open_invoice("0.5")
    settlement = await shop.submit(invoice.id, await shop.pay(499_999))
    await shop.settle()
    failed = await shop.get(settlement.id)
    assert (failed.failure_reason, failed.failure_detail) == (
        pb.FAILURE_REASON_SHORT_AMOUNT,
        "paid 499999 base units of 500000 due",
    )
    # A failed settlement frees the invoice for a correct payment.
    retry = await shop.submit(invoice.id, await shop.pay(500_000))
    await shop.settle()
    assert (await shop.get(retry.id)).status == pb.SETTLEMENT_STATUS_CONFIRMED


async def test_an_unknown_transaction_stays_pending_then_expires(shop: Shop) -> None:
    invoice = await shop.open_invoice()
    settlement = await shop.submit(invoice.id, "0x" + "de" * 32)
    await shop.settle()
    assert (await shop.get(settlement.id)).status == pb.SETTLEMENT_STATUS_PENDING

    shop.platform.clock.advance(timedelta(minutes=31))
    await shop.settle()
    expired = await shop.get(settlement.id)
    assert (expired.status, expired.failure_reason) == (
        pb.SETTLEMENT_STATUS_FAILED,
        pb.FAILURE_REASON_EXPIRED,
    )


async def test_a_transaction_dropped_by_a_reorg_is_never_confirmed(shop: Shop) -> None:
    invoice = await shop.open_invoice()
    await shop.usdc.mint(shop.payer, 500_000, shop.minter)
    before = await shop.usdc.snapshot()
    transaction = await shop.usdc.transfer(shop.payer, shop.wallet, 500_000)
    settlement = await shop.submit(invoice.id, transaction)
    assert settlement.status == pb.SETTLEMENT_STATUS_PENDING
    assert settlement.block_number > 0

    await shop.usdc.revert(before)  # the block holding the transfer is gone
    await shop.settle()
    await shop.settle()

    assert (await shop.get(settlement.id)).status == pb.SETTLEMENT_STATUS_PENDING


async def test_one_transaction_settles_one_invoice(shop: Shop) -> None:
    first, second = await shop.open_invoice(), await shop.open_invoice()
    transaction = await shop.pay(500_000)
    await shop.submit(first.id, transaction)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await shop.submit(second.id, transaction)
    assert (caught.value.code(), field_violation(caught.value)) == (
        grpc.StatusCode.ALREADY_EXISTS,
        "transaction_hash",
    )
    with pytest.raises(grpc.aio.AioRpcError) as again:
        await shop.submit(first.id, await shop.pay(500_000))
    assert (again.value.code(), field_violation(again.value)) == (
        grpc.StatusCode.ALREADY_EXISTS,
        "invoice_id",
    )


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"transaction_hash": "0x1234"}, "transaction_hash"),
        ({"transaction_hash": "0x" + "zz" * 32}, "transaction_hash"),
        ({"reference_hash": "5e" * 32}, "reference_hash"),
        ({"payer_wallet_address": "0x12"}, "payer_wallet_address"),
        # A mixed-case address whose EIP-55 checksum is wrong.
        (
            {"merchant_wallet_address": "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293Bc"},
            "merchant_wallet_address",
        ),
        ({"invoice_id": ""}, "invoice_id"),
        ({"checkout_session_id": "cs_1"}, "invoice_id"),
    ],
)
async def test_malformed_proofs_are_rejected(
    shop: Shop, fields: dict[str, str], field: str
) -> None:
    invoice = await shop.open_invoice()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await shop.submit(
            **({"invoice_id": invoice.id, "transaction_hash": "0x" + "ab" * 32} | fields)
        )
    assert (caught.value.code(), field_violation(caught.value)) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        field,
    )


async def test_an_invoice_that_is_not_open_or_not_ours_is_refused(shop: Shop) -> None:
    invoice = await shop.open_invoice()
    await shop.merchant.stub.VoidInvoice(
        ipb.VoidInvoiceRequest(id=invoice.id), metadata=shop.metadata
    )
    with pytest.raises(grpc.aio.AioRpcError) as voided:
        await shop.submit(invoice.id, "0x" + "ab" * 32)
    assert (voided.value.code(), field_violation(voided.value)) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "invoice_id",
    )
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await shop.submit("in_nope", "0x" + "ab" * 32)
    assert (missing.value.code(), field_violation(missing.value)) == (
        grpc.StatusCode.NOT_FOUND,
        "invoice_id",
    )
