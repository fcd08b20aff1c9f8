"""The platform's own transactions: stored signed before they are sent, so a crash re-sends the
same bytes (same hash) instead of signing a second transaction."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Text, cast, func, or_, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from service_kit.database import lock_name
from settlement_svc.adapters.tables import OutgoingTransactionRow


class OutgoingStatus(StrEnum):
    SIGNED = "SIGNED"
    SENT = "SENT"
    MINED = "MINED"


@dataclass(frozen=True)
class OutgoingTransaction:
    id: str
    account: str
    nonce: int
    transaction_hash: str
    raw: bytes
    status: OutgoingStatus
    send_attempts: int
    create_time: datetime
    send_time: datetime | None
    # When `raw` was signed; the earlier transactions of this nonce it replaced at a higher fee
    # (any one of them may be the one mined).
    sign_time: datetime
    replaced_hashes: tuple[str, ...] = ()

    @property
    def hashes(self) -> tuple[str, ...]:
        return (self.transaction_hash, *self.replaced_hashes)


def _transaction(row: OutgoingTransactionRow) -> OutgoingTransaction:
    return OutgoingTransaction(
        row.id,
        row.account,
        row.nonce,
        row.transaction_hash,
        row.raw_transaction,
        OutgoingStatus(row.status),
        row.send_attempts,
        row.create_time,
        row.send_time,
        row.sign_time,
        tuple(row.replaced_hashes),
    )


class OutgoingTransactionStore:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def lock_account(self, account: str) -> None:
        """One signer of this account at a time, to the end of the transaction: nonces are
        handed out in order, each once."""
        await lock_name(self._session, f"account:{account}")

    async def next_nonce(self, account: str) -> int:
        """One past the highest nonce stored for the account (0 for none)."""
        highest = await self._session.scalar(
            select(func.max(OutgoingTransactionRow.nonce)).where(
                OutgoingTransactionRow.account == account
            )
        )
        return 0 if highest is None else int(highest) + 1

    async def add(self, transaction: OutgoingTransaction) -> None:
        self._session.add(
            OutgoingTransactionRow(
                id=transaction.id,
                account=transaction.account,
                nonce=transaction.nonce,
                transaction_hash=transaction.transaction_hash,
                raw_transaction=transaction.raw,
                status=transaction.status.value,
                send_attempts=transaction.send_attempts,
                create_time=transaction.create_time,
                send_time=transaction.send_time,
                last_error="",
                replaced_hashes=list(transaction.replaced_hashes),
                sign_time=transaction.sign_time,
            )
        )
        await self._session.flush()

    async def get(self, transaction_id: str) -> OutgoingTransaction | None:
        row = await self._session.get(OutgoingTransactionRow, transaction_id)
        return _transaction(row) if row else None

    async def unmined(self, limit: int) -> list[OutgoingTransaction]:
        """The oldest transactions not seen mined yet, lowest nonce first; rows another
        replica is working on are skipped."""
        rows = await self._session.scalars(
            select(OutgoingTransactionRow)
            .where(OutgoingTransactionRow.status != OutgoingStatus.MINED.value)
            .order_by(OutgoingTransactionRow.account, OutgoingTransactionRow.nonce)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return [_transaction(row) for row in rows]

    async def record_send(self, transaction_id: str, at: datetime, error: str) -> None:
        """One send attempt: SENT when the node took it, its error otherwise."""
        values: dict[str, object] = {
            "send_attempts": OutgoingTransactionRow.send_attempts + 1,
            "send_time": at,
            "last_error": error,
        }
        if not error:
            values["status"] = OutgoingStatus.SENT.value
        await self._session.execute(
            update(OutgoingTransactionRow)
            .where(
                OutgoingTransactionRow.id == transaction_id,
                OutgoingTransactionRow.status != OutgoingStatus.MINED.value,
            )
            .values(values)
        )

    async def mark_mined(self, transaction_id: str, mined_hash: str) -> None:
        """Final: `mined_hash`, one of the row's hashes, has the confirmations."""
        await self._session.execute(
            update(OutgoingTransactionRow)
            .where(OutgoingTransactionRow.id == transaction_id)
            .values(status=OutgoingStatus.MINED.value, transaction_hash=mined_hash)
        )

    async def replace(
        self, transaction: OutgoingTransaction, hash_: str, raw: bytes, at: datetime
    ) -> bool:
        """The same nonce signed again at a higher fee, to be sent next; False when another
        pass replaced it or saw it mined meanwhile."""
        replaced = await self._session.execute(
            update(OutgoingTransactionRow)
            .where(
                OutgoingTransactionRow.id == transaction.id,
                OutgoingTransactionRow.transaction_hash == transaction.transaction_hash,
                OutgoingTransactionRow.status != OutgoingStatus.MINED.value,
            )
            .values(
                transaction_hash=hash_,
                raw_transaction=raw,
                status=OutgoingStatus.SIGNED.value,
                sign_time=at,
                replaced_hashes=func.array_append(
                    OutgoingTransactionRow.replaced_hashes, transaction.transaction_hash
                ),
            )
            .returning(OutgoingTransactionRow.id)
        )
        return replaced.first() is not None

    async def siblings(
        self, hashes: Sequence[str], *, unmined_only: bool = False
    ) -> dict[str, tuple[str, ...]]:
        """Each of these hashes that is one of ours, with every hash signed at its nonce; only
        of transactions not final yet (their manager still sends them) with `unmined_only`."""
        if not hashes:
            return {}
        query = select(
            OutgoingTransactionRow.transaction_hash, OutgoingTransactionRow.replaced_hashes
        ).where(
            or_(
                OutgoingTransactionRow.transaction_hash.in_(hashes),
                OutgoingTransactionRow.replaced_hashes.overlap(cast(list(hashes), ARRAY(Text))),
            )
        )
        if unmined_only:
            query = query.where(OutgoingTransactionRow.status != OutgoingStatus.MINED.value)
        found: dict[str, tuple[str, ...]] = {}
        for current, replaced in await self._session.execute(query):
            every = (current, *replaced)
            for hash_ in every:
                found[hash_] = every
        return {h: found[h] for h in hashes if h in found}
