"""Merchants and their API keys: "bk_<key id>_<secret>", of which only a hash is stored."""

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.tables import ApiKeyRow, KeyRevocationsRow, MerchantRow
from service_kit.ids import new_id

KEY_PREFIX = "bk_"


@dataclass(frozen=True)
class Merchant:
    """A merchant account. The wallet it is paid in is settlement's record (SetPayoutWallet)."""

    id: str
    name: str


def _hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


async def create_merchant(
    session: AsyncSession, name: str, now: datetime, merchant_id: str = ""
) -> Merchant:
    merchant = Merchant(merchant_id or new_id("mer"), name)
    session.add(MerchantRow(id=merchant.id, name=name, create_time=now))
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


async def revoke_api_key(session: AsyncSession, key: str, now: datetime) -> bool:
    """Revokes a key given whole or as its "bk_<key id>" prefix; False when no live key matched.
    The revocation version moves in the same transaction: gateways that remember the key forget
    it at their next poll of it (KeyCache.poll_revocations)."""
    key_id = key_id_of(key)
    revoked = await session.execute(
        update(ApiKeyRow)
        .where(ApiKeyRow.id == key_id, ApiKeyRow.revoke_time.is_(None))
        .values(revoke_time=now)
        .returning(ApiKeyRow.id)
    )
    if revoked.first() is None:
        return False
    await session.execute(update(KeyRevocationsRow).values(version=KeyRevocationsRow.version + 1))
    return True


def key_id_of(key: str) -> str:
    """The key id of "bk_<key id>_<secret>" (or of its "bk_<key id>" prefix)."""
    return key.removeprefix(KEY_PREFIX).partition("_")[0]


async def merchant_for_key(session: AsyncSession, key: str) -> Merchant | None:
    """The merchant owning an unrevoked key; the secret is compared in constant time."""
    if not key.startswith(KEY_PREFIX) or key.count("_") < 2:
        return None
    key_id, _, secret = key.removeprefix(KEY_PREFIX).partition("_")
    found = await session.execute(
        select(ApiKeyRow.secret_hash, MerchantRow.id, MerchantRow.name)
        .join(MerchantRow, MerchantRow.id == ApiKeyRow.merchant_id)
        .where(ApiKeyRow.id == key_id, ApiKeyRow.revoke_time.is_(None))
    )
    match = found.first()
    if match is None or not hmac.compare_digest(match.secret_hash, _hash(secret)):
        return None
    return Merchant(match.id, match.name)


class KeyCache:
    """Recently authenticated keys, so a merchant's requests skip the database lookup.

    Entries are keyed by the SHA-256 of the whole key (the key itself is never held) and live
    `ttl_seconds` at most. Each remembers the revocation version read before its lookup, and
    counts only while that is still the latest version polled: a key revoked in the database
    stops working at this process's next poll. Only valid keys are cached; an unknown key is
    looked up each time."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], ttl_seconds: float) -> None:
        self._sessions = sessions
        self._ttl = ttl_seconds
        self._entries: dict[bytes, _Remembered] = {}
        self._version: int | None = None

    def remembered(self, key: str) -> Merchant | None:
        """The merchant of a key validated recently, without a database lookup."""
        entry = self._entries.get(_hash(key))
        if entry is None or entry.expires <= time.monotonic() or entry.version != self._version:
            return None
        return entry.merchant

    async def look_up(self, key: str) -> Merchant | None:
        """The merchant of a key, from the database; remembered when the key is valid."""
        digest = _hash(key)
        # Read before the lookup: a revocation that commits after the lookup read the key moves
        # the version past this one, so the entry stops counting at the next poll.
        version = self._version
        async with self._sessions() as session:
            found = await merchant_for_key(session, key)
        if found is None:
            self._entries.pop(digest, None)
        else:
            self._entries[digest] = _Remembered(found, time.monotonic() + self._ttl, version)
        return found

    async def poll_revocations(self) -> None:
        """Reads the revocation version; once it moved, every remembered key is looked up again."""
        async with self._sessions() as session:
            version = await session.scalar(select(KeyRevocationsRow.version))
        if version != self._version:
            self._version = version
            self._entries.clear()


@dataclass(frozen=True)
class _Remembered:
    merchant: Merchant
    expires: float
    version: int | None


async def merchant(session: AsyncSession, merchant_id: str) -> Merchant | None:
    row = await session.get(MerchantRow, merchant_id)
    return Merchant(row.id, row.name) if row else None
