"""Session fixtures: one private PostgreSQL cluster, migrated by Alembic, and real gRPC servers."""

import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import grpc
import pytest

from devstack.postgres import PrivateCluster
from service_kit import migrations

MIGRATIONS = {"metering": Path(__file__).parent.parent / "metering_svc" / "migrations"}

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
        for script_location in MIGRATIONS.values():
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


def status_of(error: grpc.aio.AioRpcError) -> grpc.StatusCode:
    return error.code()
