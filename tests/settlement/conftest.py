"""The whole platform for settlement tests: anvil with MockUSDC, metering, invoicing and
settlement servers on loopback, one manual clock."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta

import grpc
import pytest

from billing.invoicing.v1 import invoicing_pb2 as ipb
from billing.invoicing.v1 import invoicing_pb2_grpc
from billing.metering.v1 import metering_pb2_grpc
from billing.settlement.v1 import settlement_pb2 as pb
from billing.settlement.v1 import settlement_pb2_grpc
from devstack.chain import Anvil, MockUsdc
from devstack.postgres import free_port
from invoicing_svc import bootstrap as invoicing_bootstrap
from invoicing_svc.service_layer.unit_of_work import Invoicing
from invoicing_svc.settings import InvoicingSettings
from service_kit.clock import ManualClock
from settlement_svc import bootstrap as settlement_bootstrap
from settlement_svc.service_layer.relay import outbox_relay
from settlement_svc.service_layer.unit_of_work import Settlements
from settlement_svc.service_layer.verification import verify_pending
from settlement_svc.settings import SettlementSettings
from tests.conftest import TEST_START, metering_server
from tests.invoicing.conftest import Merchant

CONFIRMATIONS = 3
USDC = 1_000_000  # base units


@pytest.fixture(scope="session")
def anvil() -> Iterator[Anvil]:
    chain = Anvil()
    chain.start()
    yield chain
    chain.stop()


@pytest.fixture(scope="session")
async def usdc(anvil: Anvil) -> AsyncIterator[MockUsdc]:
    token = await MockUsdc.deploy(anvil.url, anvil.accounts[0])
    yield token
    await token.close()


@dataclass
class Platform:
    invoicing: Invoicing
    invoicing_stub: invoicing_pb2_grpc.InvoicingServiceAsyncStub
    settlements: Settlements
    stub: settlement_pb2_grpc.SettlementServiceAsyncStub
    metering_stub: metering_pb2_grpc.MeteringServiceAsyncStub
    clock: ManualClock


@pytest.fixture(scope="session")
async def platform(database_url: str, anvil: Anvil, usdc: MockUsdc) -> AsyncIterator[Platform]:
    clock = ManualClock(TEST_START)
    settlement_port = free_port()
    async with metering_server(database_url, clock) as metering:
        invoicing = invoicing_bootstrap.build(
            InvoicingSettings(
                database_url=database_url,
                grpc_port=0,
                metering_address=f"127.0.0.1:{metering.port}",
                settlement_address=f"127.0.0.1:{settlement_port}",
                test_clock_enabled=True,
            ),
            clock=clock,
        )
        invoicing_server = await invoicing_bootstrap.start(invoicing)
        settlements = settlement_bootstrap.build(
            SettlementSettings(
                database_url=database_url,
                grpc_port=settlement_port,
                invoicing_address=f"127.0.0.1:{invoicing_server.port}",
                chain_rpc_url=anvil.url,
                usdc_contract_address=usdc.address,
                required_confirmations=CONFIRMATIONS,
                settlement_expiry=timedelta(minutes=30),
            ),
            clock=clock,
        )
        settlement_server = await settlement_bootstrap.start(settlements)
        invoicing_channel = grpc.aio.insecure_channel(f"127.0.0.1:{invoicing_server.port}")
        settlement_channel = grpc.aio.insecure_channel(f"127.0.0.1:{settlement_server.port}")
        yield Platform(
            invoicing=invoicing,
            invoicing_stub=invoicing_pb2_grpc.InvoicingServiceStub(invoicing_channel),
            settlements=settlements,
            stub=settlement_pb2_grpc.SettlementServiceStub(settlement_channel),
            metering_stub=metering.stub,
            clock=clock,
        )
        await invoicing_channel.close()
        await settlement_channel.close()
        await settlement_server.stop(1)
        await invoicing_server.stop(1)
        await settlement_bootstrap.close(settlements)
        await invoicing_bootstrap.close(invoicing)


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
            "merchant_wallet_address": self.wallet,
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


@pytest.fixture
async def shop(platform: Platform, usdc: MockUsdc, anvil: Anvil) -> Shop:
    merchant = Merchant(
        platform.invoicing,
        platform.invoicing_stub,
        platform.metering_stub,
        f"mer_shop{next(_shops)}",
    )
    return Shop(merchant, platform, usdc, anvil.accounts[0], anvil.accounts[1], anvil.accounts[2])
