"""The whole platform for settlement tests: anvil with MockUSDC, metering, invoicing and
settlement servers on loopback, one manual clock."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from billing.invoicing.v1 import invoicing_pb2 as ipb
from billing.settlement.v1 import settlement_pb2 as pb
from devstack.chain import Anvil, MockUsdc
from settlement_svc.service_layer.relay import outbox_relay
from settlement_svc.service_layer.verification import verify_pending
from tests.conftest import CONFIRMATIONS, Platform, register_payout_wallet
from tests.invoicing.conftest import Merchant

_shops = iter(range(1, 10_000))


@dataclass
class Shop:
    """A merchant with a subscriber whose wallet holds USDC, and a wallet to be paid in."""

    merchant: Merchant
    platform: Platform
    usdc: MockUsdc
    minter: str
    payer: str
    wallet: str

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return self.merchant.metadata

    async def open_invoice(self, amount: str = "0.5") -> ipb.Invoice:
        plan = await self.merchant.plan(
            pricing_type=ipb.PRICING_TYPE_USAGE_BASED, amount="0.000010"
        )
        subscription = await self.merchant.subscribe(plan)
        invoice = await self.merchant.stub.CreateInvoice(
            ipb.CreateInvoiceRequest(
                subscription_id=subscription.id, payment_plan_id=plan.id, amount=amount
            ),
            metadata=self.metadata,
        )
        await self.merchant.relay()  # the ledger records the invoice
        return invoice

    async def pay(
        self,
        base_units: int,
        *,
        receiver: str | None = None,
        sender: str | None = None,
        token: MockUsdc | None = None,
        gas: int | None = None,
    ) -> str:
        coin = token or self.usdc
        payer = sender or self.payer
        if gas is None:
            await coin.mint(payer, base_units, self.minter)
        return await coin.transfer(payer, receiver or self.wallet, base_units, gas=gas)

    async def submit(self, invoice_id: str, transaction_hash: str, **fields: str) -> pb.Settlement:
        values = {
            "invoice_id": invoice_id,
            "reference_hash": "0x" + "5e" * 32,
            "transaction_hash": transaction_hash,
            "payer_wallet_address": self.payer,
        }
        values.update(fields)
        return await self.platform.stub.SubmitSettlement(
            pb.SubmitSettlementRequest(**values), metadata=self.metadata
        )

    async def settle(self) -> None:
        """Enough blocks for confirmation, a verifier pass, and both outboxes relayed."""
        await self.usdc.mine(CONFIRMATIONS)
        await verify_pending(self.platform.settlements)
        relay = outbox_relay(self.platform.settlements)
        while await relay.relay_once():
            pass
        await self.merchant.relay()

    async def get(self, settlement_id: str) -> pb.Settlement:
        return await self.platform.stub.GetSettlement(
            pb.GetSettlementRequest(id=settlement_id), metadata=self.metadata
        )

    async def balance(self, account: str) -> str:
        found = await self.platform.stub.GetBalance(
            pb.GetBalanceRequest(account=account), metadata=self.metadata
        )
        return found.debit_balance


async def open_shop(
    platform: Platform, usdc: MockUsdc, anvil: Anvil, *, payout_wallet: bool = True
) -> Shop:
    """A new merchant, with a payout wallet of its own unless `payout_wallet` is False."""
    merchant = Merchant(
        platform.invoicing,
        platform.invoicing_stub,
        platform.metering_stub,
        f"mer_shop{next(_shops)}",
    )
    wallet = await register_payout_wallet(platform, merchant.merchant_id) if payout_wallet else ""
    return Shop(merchant, platform, usdc, anvil.accounts[0], anvil.accounts[1], wallet)


@pytest.fixture
async def shop(platform: Platform, usdc: MockUsdc, anvil: Anvil) -> Shop:
    return await open_shop(platform, usdc, anvil)


@pytest.fixture
async def other_shop(platform: Platform, usdc: MockUsdc, anvil: Anvil) -> Shop:
    return await open_shop(platform, usdc, anvil)
