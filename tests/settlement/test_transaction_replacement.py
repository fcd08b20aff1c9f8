"""The transaction manager on anvil: a collection stuck below the chain's price is signed again
at the same nonce for more, the settlement follows the one mined, and it is collected once."""

from datetime import timedelta

from billing.invoicing.v1 import invoicing_pb2 as ipb
from billing.settlement.v1 import settlement_pb2 as pb
from devstack.chain import Anvil
from devstack.mandates import Mandates
from settlement_svc.adapters.account_key import gas_price_of
from settlement_svc.adapters.outgoing_transaction_store import OutgoingStatus, OutgoingTransaction
from settlement_svc.service_layer.collections import collect_due
from settlement_svc.service_layer.transactions import resend_unmined
from tests.conftest import CONFIRMATIONS
from tests.settlement.conftest import Shop
from tests.settlement.test_collections import (
    PAYER,
    collection_of,
    enrol,
    finalized,
    invoice_status,
    subscriber,
)


async def outgoing_of(shop: Shop, transaction_hash: str) -> OutgoingTransaction:
    async with shop.platform.settlements.unit_of_work() as uow:
        [found] = [t for t in await uow.outgoing.unmined(1000) if transaction_hash in t.hashes]
        return found


async def receipt(shop: Shop, transaction_hash: str) -> object:
    found = await shop.usdc.w3.provider.make_request(
        "eth_getTransactionReceipt", [transaction_hash]
    )
    return found["result"]


async def test_a_stuck_collection_is_replaced_at_a_higher_fee_and_settles_once(
    shop: Shop, anvil: Anvil, mandates: Mandates
) -> None:
    plan, subscription = await subscriber(shop)
    await enrol(shop, anvil, mandates, subscription.id, funds=3_000_000)
    payer = anvil.accounts[PAYER]
    held = await shop.usdc.balance(payer)
    invoice = await finalized(shop, plan, subscription, "1.25")
    w3, settlements = shop.usdc.w3, shop.platform.settlements
    rpc = w3.provider.make_request
    base_fee = int((await w3.eth.get_block("latest"))["baseFeePerGas"])
    await rpc("evm_setAutomine", [False])
    try:
        await collect_due(settlements)
        collection, _ = await collection_of(shop, invoice.id)
        stuck = (await shop.get(collection.settlement_id)).transaction_hash
        first = await outgoing_of(shop, stuck)
        # The chain's price rises above what the collection pays: blocks leave it out.
        await rpc("anvil_setNextBlockBaseFeePerGas", [hex(4 * gas_price_of(first.raw))])
        await shop.usdc.mine(1)
        assert await receipt(shop, stuck) is None
    except Exception:
        await rpc("evm_setAutomine", [True])
        raise
    try:
        # Not stuck long enough yet: sent again as it is.
        await resend_unmined(settlements)
        assert (await outgoing_of(shop, stuck)).transaction_hash == stuck
        shop.platform.clock.advance(timedelta(seconds=settlements.settings.relayer_replace_seconds))
        assert await resend_unmined(settlements) == 1
        replaced = await outgoing_of(shop, stuck)
        node_price = int(await w3.eth.gas_price)
        assert (replaced.nonce, replaced.replaced_hashes) == (first.nonce, (stuck,))
        assert replaced.transaction_hash != stuck
        assert gas_price_of(replaced.raw) >= max(node_price, gas_price_of(first.raw) * 5 // 4)
        await shop.usdc.mine(1)
    finally:
        await rpc("evm_setAutomine", [True])
        await rpc("anvil_setNextBlockBaseFeePerGas", [hex(base_fee)])

    await shop.usdc.mine(CONFIRMATIONS)
    await resend_unmined(settlements)
    async with settlements.unit_of_work() as uow:
        mined = await uow.outgoing.get(first.id)
    assert mined is not None
    assert (mined.status, mined.transaction_hash) == (
        OutgoingStatus.MINED,
        replaced.transaction_hash,
    )
    # The settlement follows the transaction mined, and confirms.
    await shop.settle()
    settled = await shop.get(collection.settlement_id)
    assert (settled.status, settled.transaction_hash, settled.amount_paid) == (
        pb.SETTLEMENT_STATUS_CONFIRMED,
        replaced.transaction_hash,
        "1.250000",
    )
    assert await invoice_status(shop, invoice.id) == ipb.INVOICE_STATUS_PAID
    assert await receipt(shop, stuck) is None
    collected = [
        e
        for e in await mandates.events()
        if e.name == "Collected" and e.args["reference"].hex() == collection.reference_hash[2:]
    ]
    assert [e.transaction_hash for e in collected] == [replaced.transaction_hash]
    assert await shop.usdc.balance(shop.wallet) == 1_250_000
    assert await shop.usdc.balance(payer) == held - 1_250_000
