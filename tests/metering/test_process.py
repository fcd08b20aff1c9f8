"""`python -m metering_svc`: migrates, serves with JSON logs (a line per RPC, never the service
token), and stops cleanly on SIGTERM."""

import asyncio
import json
import os
import signal
import sys
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from billing.metering.v1 import metering_pb2, metering_pb2_grpc
from devstack.postgres import free_port
from tests.conftest import SERVICE_TOKEN, service_channel


async def run_module(command: str, env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "metering_svc",
        command,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )


async def read_through_rpc_line(server: asyncio.subprocess.Process) -> bytes:
    assert server.stdout is not None
    read = b""
    while b'"event": "rpc"' not in read:
        line = await server.stdout.readline()
        assert line, read
        read += line
    return read


async def test_the_service_process_serves_and_stops_on_sigterm(database_url: str) -> None:
    port = free_port()
    env = {
        **os.environ,
        "METERING_DATABASE_URL": database_url,
        "METERING_GRPC_PORT": str(port),
        "METERING_METRICS_PORT": "0",
        "BILLING_SERVICE_TOKEN": SERVICE_TOKEN,
    }
    migrate = await run_module("migrate", env)
    migrate_output, _ = await asyncio.wait_for(migrate.communicate(), 60)
    assert migrate.returncode == 0, migrate_output
    server = await run_module("serve", env)
    try:
        async with service_channel(port) as channel:
            await asyncio.wait_for(channel.channel_ready(), 30)
            stub: Any = health_pb2_grpc.HealthStub(channel)
            health = await stub.Check(health_pb2.HealthCheckRequest(service=""))
            with pytest.raises(grpc.aio.AioRpcError):
                await metering_pb2_grpc.MeteringServiceStub(channel).GetMeter(
                    metering_pb2.GetMeterRequest(id="mtr_none"),
                    metadata=(("x-merchant-id", "mer_process"), ("x-request-id", "req_process_1")),
                )
        # grpc's abort sends the status before the call's log line is written: wait for the
        # line, or SIGTERM can be logged first.
        before_signal = await asyncio.wait_for(read_through_rpc_line(server), 15)
        server.send_signal(signal.SIGTERM)
        rest, _ = await asyncio.wait_for(server.communicate(), 15)
        output = before_signal + rest
    finally:
        if server.returncode is None:
            server.kill()
            await server.wait()
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    assert server.returncode == 0
    logged = [json.loads(line) for line in output.decode().splitlines() if line.startswith("{")]
    assert [entry["event"] for entry in logged] == ["serving", "rpc", "stopping"]
    assert {key: logged[1][key] for key in ("method", "code", "request_id", "level")} == {
        "method": "/billing.metering.v1.MeteringService/GetMeter",
        "code": "NOT_FOUND",
        "request_id": "req_process_1",
        "level": "info",
    }
    assert logged[0]["address"] == f"127.0.0.1:{port}"
    assert env["BILLING_SERVICE_TOKEN"] not in output.decode()
