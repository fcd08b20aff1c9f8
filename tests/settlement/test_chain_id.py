"""Settlement reads only the chain it is configured for (SETTLEMENT_CHAIN_ID): a node on
another chain refuses the start, and a node not reachable yet keeps it NOT_SERVING and refusing
proofs until it answers with the right id."""

import asyncio
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from billing.settlement.v1 import settlement_pb2 as pb
from billing.settlement.v1 import settlement_pb2_grpc
from devstack.chain import Anvil, MockUsdc
from devstack.postgres import free_port
from service_kit.clock import ManualClock
from service_kit.service_main import CannotServe
from settlement_svc import bootstrap
from settlement_svc.settings import SettlementSettings
from tests.conftest import SERVICE_TOKEN, TEST_START, service_channel
from tests.faults.waiting import eventually


def settings(database_url: str, rpc_url: str, usdc: MockUsdc, chain_id: int) -> SettlementSettings:
    return SettlementSettings(
        database_url=database_url,
        grpc_port=0,
        metrics_port=0,
        service_token=SERVICE_TOKEN,
        chain_rpc_url=rpc_url,
        chain_id=chain_id,
        usdc_contract_address=usdc.address,
        poll_interval_seconds=0.05,
    )


async def test_a_node_on_another_chain_refuses_the_start(
    database_url: str, anvil: Anvil, usdc: MockUsdc
) -> None:
    service = bootstrap.build(settings(database_url, anvil.url, usdc, chain_id=8453))
    try:
        with pytest.raises(CannotServe) as refused:
            await bootstrap.start(service)
    finally:
        await bootstrap.close(service)
    assert str(refused.value) == (
        f"the node at {anvil.url} is chain 31337, not SETTLEMENT_CHAIN_ID 8453"
    )


async def test_an_unreachable_node_keeps_settlement_not_ready_until_it_answers(
    database_url: str, usdc: MockUsdc
) -> None:
    node = Anvil(free_port())
    service = bootstrap.build(
        settings(database_url, node.url, usdc, chain_id=31337), clock=ManualClock(TEST_START)
    )
    running = await bootstrap.start(service)
    background = bootstrap.start_background_work(service, running)
    channel = service_channel(running.port)
    health: Any = health_pb2_grpc.HealthStub(channel)  # its typing stubs lack Check
    name = "billing.settlement.v1.SettlementService"
    try:
        down = await health.Check(health_pb2.HealthCheckRequest(service=name))
        assert down.status == health_pb2.HealthCheckResponse.NOT_SERVING
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await settlement_pb2_grpc.SettlementServiceStub(channel).SubmitSettlement(
                pb.SubmitSettlementRequest(
                    invoice_id="in_1",
                    reference_hash="0x" + "5e" * 32,
                    transaction_hash="0x" + "ab" * 32,
                    payer_wallet_address="0x" + "11" * 20,
                ),
                metadata=(("x-merchant-id", "mer_chain_check"),),
            )
        assert (refused.value.code(), refused.value.details()) == (
            grpc.StatusCode.UNAVAILABLE,
            "settlement is not ready: the chain cannot be reached",
        )

        await asyncio.to_thread(node.start)
        async with asyncio.timeout(10):
            await eventually(
                lambda: health.Check(health_pb2.HealthCheckRequest(service=name)),
                lambda up: up.status == health_pb2.HealthCheckResponse.SERVING,
                interval=0.05,
            )
        overall = await health.Check(health_pb2.HealthCheckRequest())
        assert overall.status == health_pb2.HealthCheckResponse.SERVING
    finally:
        for task in background:
            task.cancel()
        await channel.close()
        await running.stop(0)
        await bootstrap.close(service)
        node.stop()
