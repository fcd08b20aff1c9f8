"""Session fixtures: one private PostgreSQL cluster, migrated by Alembic, and real gRPC servers."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from billing.metering.v1 import metering_pb2_grpc
from devstack.postgres import PrivateCluster
from metering_svc import bootstrap as metering_bootstrap
from metering_svc.service_layer.unit_of_work import Metering
from metering_svc.settings import MeteringSettings
from service_kit import migrations
from service_kit.clock import ManualClock

REPO = Path(__file__).parent.parent
MIGRATIONS = [
    REPO / service / "migrations" for service in ("metering_svc", "invoicing_svc", "settlement_svc")
]

# Tests run on a manual clock: events default to its "now", and it never moves backwards.
TEST_START = datetime(2026, 11, 26, 10, 30, tzinfo=UTC)


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    root = Path(tempfile.mkdtemp(prefix="billing-tests-"))
    cluster = PrivateCluster(root / "pgdata")
    cluster.start()
    try:
        cluster.create_database("billing")
        url = cluster.url("billing")
        for script_location in MIGRATIONS:
            migrations.upgrade(script_location, url)
        yield url
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A direct connection, for checking what the services stored."""
    connection = await asyncpg.connect(database_url.replace("postgresql+asyncpg", "postgresql"))
    yield connection
    await connection.close()


def merchant_metadata(merchant_id: str) -> tuple[tuple[str, str], ...]:
    return (("x-merchant-id", merchant_id),)


@asynccontextmanager
async def metering_server(database_url: str, clock: ManualClock) -> AsyncIterator[RunningMetering]:
    """A metering service on a free loopback port, on its own (manual) clock."""
    settings = MeteringSettings(database_url=database_url, grpc_port=0, db_pool_size=20)
    service = metering_bootstrap.build(settings, clock=clock)
    running = await metering_bootstrap.start(service)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{running.port}")
    try:
        yield RunningMetering(service, running.port, metering_pb2_grpc.MeteringServiceStub(channel))
    finally:
        await channel.close()
        await running.stop(1)
        await service.engine.dispose()


@dataclass(frozen=True)
class RunningMetering:
    service: Metering
    port: int
    stub: metering_pb2_grpc.MeteringServiceAsyncStub


def field_violation(error: grpc.aio.AioRpcError) -> str:
    """The field named by the error's google.rpc details (BadRequest, PreconditionFailure or
    ResourceInfo)."""
    details = dict(error.trailing_metadata() or ()).get("grpc-status-details-bin")
    assert isinstance(details, bytes), "the error carries no google.rpc.Status details"
    status = status_pb2.Status.FromString(details)
    assert status.code == error.code().value[0]
    for detail in status.details:
        for kind in (
            error_details_pb2.BadRequest,
            error_details_pb2.PreconditionFailure,
            error_details_pb2.ResourceInfo,
        ):
            if detail.Is(kind.DESCRIPTOR):
                message = kind()
                detail.Unpack(message)
                if isinstance(message, error_details_pb2.BadRequest):
                    return str(message.field_violations[0].field)
                if isinstance(message, error_details_pb2.PreconditionFailure):
                    return str(message.violations[0].subject)
                return str(message.resource_name)
    raise AssertionError("no field in the error details")
