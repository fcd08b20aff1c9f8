"""`python -m metering_svc`: migrates, serves with JSON logs, and stops cleanly on SIGTERM."""

import asyncio
import json
import os
import signal
import sys
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from devstack.postgres import free_port


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


async def test_the_service_process_serves_and_stops_on_sigterm(database_url: str) -> None:
    port = free_port()
    env = {**os.environ, "METERING_DATABASE_URL": database_url, "METERING_GRPC_PORT": str(port)}
    migrate = await run_module("migrate", env)
    migrate_output, _ = await asyncio.wait_for(migrate.communicate(), 60)
    assert migrate.returncode == 0, migrate_output
    server = await run_module("serve", env)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            await asyncio.wait_for(channel.channel_ready(), 30)
            stub: Any = health_pb2_grpc.HealthStub(channel)
            health = await stub.Check(health_pb2.HealthCheckRequest(service=""))
        server.send_signal(signal.SIGTERM)
        output, _ = await asyncio.wait_for(server.communicate(), 15)
    finally:
        if server.returncode is None:
            server.kill()
            await server.wait()
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    assert server.returncode == 0
    logged = [json.loads(line) for line in output.decode().splitlines() if line.startswith("{")]
    assert [entry["event"] for entry in logged] == ["serving", "stopping"]
    assert logged[0]["address"] == f"127.0.0.1:{port}"
