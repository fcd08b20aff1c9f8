"""Collections of invoices under mandates, and their attempts."""

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from settlement_svc.adapters.tables import CollectionAttemptRow, CollectionRow
from settlement_svc.domain.collections import (
    Collection,
    CollectionAttempt,
    CollectionFailure,
    CollectionStatus,
)


def _collection(row: CollectionRow) -> Collection:
    return Collection(
        id=row.id,
        merchant_id=row.merchant_id,
        invoice_id=row.invoice_id,
        user_id=row.user_id,
        mandate_id=row.mandate_id,
        reference_hash=row.reference_hash,
        amount=row.amount,
        status=CollectionStatus(row.status),
        failures=row.failures,
        next_attempt_time=row.next_attempt_time,
        first_failure_time=row.first_failure_time,
        settlement_id=row.settlement_id or "",
        create_time=row.create_time,
    )


class CollectionStore:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, collection: Collection) -> bool:
        """Stores a new collection; False when the invoice has one already."""
        inserted = await self._session.execute(
            insert(CollectionRow)
            .values(
                id=collection.id,
                merchant_id=collection.merchant_id,
                invoice_id=collection.invoice_id,
                user_id=collection.user_id,
                mandate_id=collection.mandate_id,
                reference_hash=collection.reference_hash,
                amount=collection.amount,
                status=collection.status.value,
                failures=0,
                next_attempt_time=collection.next_attempt_time,
                create_time=collection.create_time,
            )
            .on_conflict_do_nothing(constraint="collections_invoice_once")
            .returning(CollectionRow.id)
        )
        return inserted.first() is not None

    async def due(self, now: datetime, limit: int) -> list[Collection]:
        """DUE collections whose attempt is due, the longest waiting first."""
        rows = await self._session.scalars(
            select(CollectionRow)
            .where(
                CollectionRow.status == CollectionStatus.DUE.value,
                CollectionRow.next_attempt_time <= now,
            )
            .order_by(CollectionRow.next_attempt_time)
            .limit(limit)
        )
        return [_collection(row) for row in rows]

    async def lock(self, collection_id: str) -> Collection | None:
        row = await self._session.scalar(
            select(CollectionRow).where(CollectionRow.id == collection_id).with_for_update()
        )
        return _collection(row) if row else None

    async def of_invoice(self, merchant_id: str, invoice_id: str) -> Collection | None:
        row = await self._session.scalar(
            select(CollectionRow).where(
                CollectionRow.merchant_id == merchant_id, CollectionRow.invoice_id == invoice_id
            )
        )
        return _collection(row) if row else None

    async def save(self, collection: Collection) -> None:
        await self._session.execute(
            update(CollectionRow)
            .where(CollectionRow.id == collection.id)
            .values(
                status=collection.status.value,
                failures=collection.failures,
                next_attempt_time=collection.next_attempt_time,
                first_failure_time=collection.first_failure_time,
                settlement_id=collection.settlement_id or None,
            )
        )

    async def add_attempt(self, attempt: CollectionAttempt) -> None:
        """Stores the attempt; one of its number already stored (sent, then reverted on chain)
        takes its outcome."""
        values = {
            "attempt_time": attempt.attempt_time,
            "failure": attempt.failure.value if attempt.failure else None,
            "detail": attempt.detail,
            "next_attempt_time": attempt.next_attempt_time,
        }
        await self._session.execute(
            insert(CollectionAttemptRow)
            .values(collection_id=attempt.collection_id, number=attempt.number, **values)
            .on_conflict_do_update(index_elements=["collection_id", "number"], set_=values)
        )

    async def lock_sent_by(self, settlement_id: str) -> Collection | None:
        """The SENT collection whose transaction this settlement follows, locked."""
        row = await self._session.scalar(
            select(CollectionRow)
            .where(
                CollectionRow.settlement_id == settlement_id,
                CollectionRow.status == CollectionStatus.SENT.value,
            )
            .with_for_update()
        )
        return _collection(row) if row else None

    async def attempts(self, collection_id: str) -> list[CollectionAttempt]:
        rows = await self._session.scalars(
            select(CollectionAttemptRow)
            .where(CollectionAttemptRow.collection_id == collection_id)
            .order_by(CollectionAttemptRow.number)
        )
        return [
            CollectionAttempt(
                collection_id=row.collection_id,
                number=row.number,
                attempt_time=row.attempt_time,
                failure=CollectionFailure(row.failure) if row.failure else None,
                detail=row.detail,
                next_attempt_time=row.next_attempt_time,
            )
            for row in rows
        ]
