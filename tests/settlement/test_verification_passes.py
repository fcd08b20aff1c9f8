"""Verification passes read the chain with no database transaction open, several at once, and
write their verdicts in one short transaction: passes that overlap decide a settlement once, a
failed read holds back only its own settlement, and one transaction settles one payment also
within one batch.

The chain is anvil, behind a JSON-RPC proxy (a real HTTP server) that can refuse or hold the
receipt reads of chosen transactions."""

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from aiohttp import ClientSession, web
from sqlalchemy import text

from billing.settlement.v1 import settlement_pb2 as pb
from devstack.chain import Anvil
from settlement_svc.adapters.chain import Chain
from settlement_svc.service_layer.unit_of_work import Settlements
from settlement_svc.service_layer.verification import verify_pending
from tests.conftest import CONFIRMATIONS, Platform
from tests.settlement.conftest import Shop

CONFIRMED, PENDING, FAILED = (
    pb.SETTLEMENT_STATUS_CONFIRMED,
    pb.SETTLEMENT_STATUS_PENDING,
    pb.SETTLEMENT_STATUS_FAILED,
)


@dataclass
class ChainProxy:
    """Forwards JSON-RPC to anvil. Receipt reads of `refused` transactions answer an error;
    while `held` is set, receipt reads wait until it is cleared (`holding` tells one waits)."""

    upstream: str
    refused: set[str] = field(default_factory=set)
    held: bool = False
    holding: asyncio.Event = field(default_factory=asyncio.Event)
    released: asyncio.Event = field(default_factory=asyncio.Event)
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        call: dict[str, Any] = await request.json()
        if call.get("method") == "eth_getTransactionReceipt":
            if call["params"][0].lower() in self.refused:
                error = {"code": -32603, "message": "receipt read refused by the test proxy"}
                return web.json_response({"jsonrpc": "2.0", "id": call["id"], "error": error})
            if self.held:
                self.holding.set()
                await self.released.wait()
        async with ClientSession() as session, session.post(self.upstream, json=call) as answer:
            return web.json_response(await answer.json())


@pytest.fixture
async def proxy(anvil: Anvil) -> AsyncIterator[ChainProxy]:
    proxy = ChainProxy(anvil.url)
    app = web.Application()
    app.router.add_post("/", proxy.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    proxy.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield proxy
    finally:
        proxy.released.set()
        await runner.cleanup()


@pytest.fixture
async def proxied(platform: Platform, proxy: ChainProxy) -> AsyncIterator[Settlements]:
    """Settlement reading the chain through the proxy (the node is the same anvil)."""
    chain = Chain(proxy.url, 5.0)
    try:
        yield replace(platform.settlements, chain=chain)
    finally:
        await chain.close()


async def pending_payments(shop: Shop, count: int) -> list[tuple[str, str]]:
    """`count` invoices, each paid and its proof submitted: (settlement id, transaction hash),
    every one PENDING with fewer than CONFIRMATIONS blocks on top. What earlier tests left
    decidable is decided first, so that a pass's count is of these alone."""
    await shop.usdc.mint(shop.payer, count * 500_000, shop.minter)
    submitted = []
    for _ in range(count):
        invoice = await shop.open_invoice("0.5")
        transaction = await shop.usdc.transfer(shop.payer, shop.wallet, 500_000)
        settlement = await shop.submit(invoice.id, transaction)
        assert settlement.status == PENDING
        submitted.append((settlement.id, transaction.lower()))
    await verify_pending(shop.platform.settlements)
    return submitted


async def statuses(shop: Shop, ids: Sequence[str]) -> list[tuple[int, int]]:
    found = [await shop.get(id_) for id_ in ids]
    return [(s.status, s.failure_reason) for s in found]


async def count(platform: Platform, query: str, ids: Sequence[str]) -> int:
    async with platform.settlements.engine.connect() as connection:
        return int((await connection.execute(text(query), {"ids": list(ids)})).scalar_one())


POSTINGS = "SELECT count(*) FROM settlement.journal_transactions WHERE reference = ANY(:ids)"
ANNOUNCED = "SELECT count(*) FROM settlement.outbox WHERE payload->>'settlement_id' = ANY(:ids)"


async def test_two_passes_at_once_confirm_each_settlement_once_and_post_it_once(
    shop: Shop, platform: Platform
) -> None:
    ids = [id_ for id_, _ in await pending_payments(shop, 3)]
    await shop.usdc.mine(CONFIRMATIONS)

    decided = await asyncio.gather(
        verify_pending(platform.settlements), verify_pending(platform.settlements)
    )

    assert sum(decided) == 3
    assert await statuses(shop, ids) == [(CONFIRMED, pb.FAILURE_REASON_UNSPECIFIED)] * 3
    assert await count(platform, POSTINGS, ids) == 3
    assert await count(platform, ANNOUNCED, ids) == 3
    assert await shop.balance("usdc_received") == "1.500000"


async def test_a_failed_receipt_read_leaves_its_settlement_pending_and_the_others_confirm(
    shop: Shop, platform: Platform, proxy: ChainProxy, proxied: Settlements
) -> None:
    payments = await pending_payments(shop, 3)
    ids = [id_ for id_, _ in payments]
    proxy.refused.add(payments[1][1])
    await shop.usdc.mine(CONFIRMATIONS)

    assert await verify_pending(proxied) == 2
    assert await statuses(shop, ids) == [
        (CONFIRMED, pb.FAILURE_REASON_UNSPECIFIED),
        (PENDING, pb.FAILURE_REASON_UNSPECIFIED),
        (CONFIRMED, pb.FAILURE_REASON_UNSPECIFIED),
    ]
    assert await shop.balance("usdc_received") == "1.000000"

    proxy.refused.clear()
    assert await verify_pending(proxied) == 1
    assert await statuses(shop, ids) == [(CONFIRMED, pb.FAILURE_REASON_UNSPECIFIED)] * 3
    assert await shop.balance("usdc_received") == "1.500000"
    assert await count(platform, POSTINGS, ids) == 3


async def test_two_settlements_of_one_transaction_in_one_batch_confirm_one(
    shop: Shop, other_shop: Shop, platform: Platform
) -> None:
    """A's pending proof of a payment to wallet W; A moves to another wallet and B registers W,
    then submits the same transaction. One pass reads both: the older settles, the other fails
    TRANSACTION_USED."""
    a, b = shop, other_shop
    a_invoice, b_invoice = await a.open_invoice("0.5"), await b.open_invoice("0.5")
    paid = await a.pay(500_000)
    first = await a.submit(a_invoice.id, paid)
    await platform.stub.SetPayoutWallet(
        pb.SetPayoutWalletRequest(wallet_address="0x" + "cd" * 20), metadata=a.metadata
    )
    await platform.stub.SetPayoutWallet(
        pb.SetPayoutWalletRequest(wallet_address=a.wallet), metadata=b.metadata
    )
    second = await b.submit(b_invoice.id, paid)
    assert (first.status, second.status) == (PENDING, PENDING)

    await a.usdc.mine(CONFIRMATIONS)
    assert await verify_pending(platform.settlements) == 2

    confirmed, used = await a.get(first.id), await b.get(second.id)
    assert (confirmed.status, confirmed.amount_paid) == (CONFIRMED, "0.500000")
    assert (used.status, used.failure_reason) == (FAILED, pb.FAILURE_REASON_TRANSACTION_USED)
    assert (await a.balance("usdc_received"), await b.balance("usdc_received")) == (
        "0.500000",
        "0.000000",
    )
    assert await count(platform, POSTINGS, [first.id, second.id]) == 1


async def test_a_pass_holds_no_lock_while_it_waits_for_the_node(
    shop: Shop, platform: Platform, proxy: ChainProxy, proxied: Settlements
) -> None:
    ids = [id_ for id_, _ in await pending_payments(shop, 2)]
    await shop.usdc.mine(CONFIRMATIONS)
    proxy.held = True
    verifying = asyncio.create_task(verify_pending(proxied))
    await proxy.holding.wait()

    # While the pass waits for its receipts, its settlements are not locked.
    async with platform.settlements.engine.connect() as connection:
        locked = await connection.execute(
            text(
                "SELECT id FROM settlement.settlements WHERE id = ANY(:ids) "
                "ORDER BY id FOR UPDATE NOWAIT"
            ),
            {"ids": ids},
        )
        assert [row.id for row in locked] == sorted(ids)
        await connection.rollback()

    proxy.released.set()
    assert await verifying == 2
    assert await statuses(shop, ids) == [(CONFIRMED, pb.FAILURE_REASON_UNSPECIFIED)] * 2
