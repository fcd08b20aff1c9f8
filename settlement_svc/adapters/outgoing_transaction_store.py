"""The platform's own transactions: stored signed before they are sent, so a crash re-sends the
same bytes (same hash) instead of signing a second transaction."""

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import func, select, update
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

    async def mark_mined(self, transaction_ids: list[str]) -> None:
        if transaction_ids:
            await self._session.execute(
                update(OutgoingTransactionRow)
                .where(OutgoingTransactionRow.id.in_(transaction_ids))
                .values(status=OutgoingStatus.MINED.value)
            )
