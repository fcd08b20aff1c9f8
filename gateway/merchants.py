"""Merchants and their API keys: "bk_<key id>_<secret>", of which only a hash is stored."""

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.tables import ApiKeyRow, MerchantRow
from service_kit.ids import new_id

KEY_PREFIX = "bk_"


@dataclass(frozen=True)
class Merchant:
    id: str
    name: str
    wallet_address: str


def _hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


async def create_merchant(
    session: AsyncSession, name: str, wallet_address: str, now: datetime, merchant_id: str = ""
) -> Merchant:
    merchant = Merchant(merchant_id or new_id("mer"), name, wallet_address)
    session.add(
        MerchantRow(id=merchant.id, name=name, wallet_address=wallet_address, create_time=now)
    )
    await session.flush()
    return merchant


async def create_api_key(session: AsyncSession, merchant_id: str, now: datetime) -> str:
    """Returns the new key; it cannot be read back later."""
    key_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    session.add(
        ApiKeyRow(id=key_id, merchant_id=merchant_id, secret_hash=_hash(secret), create_time=now)
    )
    await session.flush()
    return f"{KEY_PREFIX}{key_id}_{secret}"


async def merchant_for_key(session: AsyncSession, key: str) -> Merchant | None:
    """The merchant owning an unrevoked key; the secret is compared in constant time."""
    if not key.startswith(KEY_PREFIX) or key.count("_") < 2:
        return None
    key_id, _, secret = key.removeprefix(KEY_PREFIX).partition("_")
    found = await session.execute(
        select(ApiKeyRow.secret_hash, MerchantRow.id, MerchantRow.name, MerchantRow.wallet_address)
        .join(MerchantRow, MerchantRow.id == ApiKeyRow.merchant_id)
        .where(ApiKeyRow.id == key_id, ApiKeyRow.revoke_time.is_(None))
    )
    match = found.first()
    if match is None or not hmac.compare_digest(match.secret_hash, _hash(secret)):
        return None
    return Merchant(match.id, match.name, match.wallet_address)


async def merchant(session: AsyncSession, merchant_id: str) -> Merchant | None:
    row = await session.get(MerchantRow, merchant_id)
    return Merchant(row.id, row.name, row.wallet_address) if row else None
