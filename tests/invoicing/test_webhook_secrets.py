"""Webhook signing secrets are stored encrypted, rotate, and are sealed by the migration that
introduced the encryption."""

import asyncio
from pathlib import Path

import asyncpg
import pytest
from cryptography.fernet import Fernet, InvalidToken

from billing.invoicing.v1 import invoicing_pb2 as pb
from invoicing_svc.adapters.secret_box import SecretBox
from service_kit import migrations
from tests.conftest import SECRETS_KEY, scratch_database
from tests.invoicing.conftest import Merchant

MIGRATIONS = Path(__file__).parents[2] / "invoicing_svc" / "migrations"


async def test_the_stored_secret_is_sealed_and_opens_only_with_the_key(
    merchant: Merchant, db: asyncpg.Connection
) -> None:
    endpoint = await merchant.stub.CreateWebhookEndpoint(
        pb.CreateWebhookEndpointRequest(
            endpoint=pb.WebhookEndpoint(url="https://merchant.example/hooks", event_types=["*"])
        ),
        metadata=merchant.metadata,
    )
    sealed = await db.fetchval(
        "SELECT sealed_secret FROM invoicing.webhook_endpoints WHERE id = $1", endpoint.id
    )
    assert endpoint.secret.encode() not in sealed
    assert SecretBox(SECRETS_KEY).open(sealed) == endpoint.secret
    with pytest.raises(InvalidToken):
        SecretBox(Fernet.generate_key().decode()).open(sealed)
    columns = await db.fetch(
        "SELECT column_name FROM information_schema.columns"
        " WHERE table_schema = 'invoicing' AND table_name = 'webhook_endpoints'"
    )
    assert "secret" not in {c["column_name"] for c in columns}


def test_a_new_key_seals_and_the_old_one_still_opens() -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    sealed_before = SecretBox(old).seal("whsec_before")
    rotated = SecretBox(f"{new},{old}")
    assert rotated.open(sealed_before) == "whsec_before"
    assert SecretBox(new).open(rotated.seal("whsec_after")) == "whsec_after"
    with pytest.raises(ValueError, match="INVOICING_SECRETS_KEY is required"):
        SecretBox(" ")


async def test_the_migration_seals_secrets_stored_in_clear(
    database_url: str, db: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with scratch_database(db, database_url, "sealing_migration") as (url, connection):
        await _upgrade(url, "0001")
        await connection.execute(
            "INSERT INTO invoicing.webhook_endpoints (id, merchant_id, url, event_types, secret,"
            " create_time) VALUES ('we_1', 'mer_1', 'https://m.example/h', '{*}', 'whsec_clear',"
            " now())"
        )
        monkeypatch.setenv("INVOICING_SECRETS_KEY", SECRETS_KEY)
        await _upgrade(url, "head")
        sealed = await connection.fetchval(
            "SELECT sealed_secret FROM invoicing.webhook_endpoints WHERE id = 'we_1'"
        )
    assert SecretBox(SECRETS_KEY).open(sealed) == "whsec_clear"


async def _upgrade(url: str, revision: str) -> None:
    await asyncio.to_thread(migrations.upgrade, MIGRATIONS, url, revision)
