"""Metering's local replicas of subscriptions and invoices, written by invoicing."""

from collections.abc import Collection
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from metering_svc.adapters.tables import InvoiceReferenceRow, SubscriptionRow
from metering_svc.domain.model import InvoiceReference, SubscriptionState, SubscriptionStatus

Row = TypeVar("Row", SubscriptionRow, InvoiceReferenceRow)


def _state(row: SubscriptionRow) -> SubscriptionState:
    return SubscriptionState(
        subscription_id=row.id,
        merchant_id=row.merchant_id,
        service_id=row.service_id,
        user_id=row.user_id,
        status=SubscriptionStatus(row.status),
        current_period_start=row.current_period_start,
        current_period_end=row.current_period_end,
        version=row.version,
        test_clock_time=row.test_clock_time,
    )


def _reference(row: InvoiceReferenceRow) -> InvoiceReference:
    return InvoiceReference(
        invoice_id=row.id,
        merchant_id=row.merchant_id,
        service_id=row.service_id,
        user_id=row.user_id,
    )


class ReplicaRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def subscriptions_for_ingestion(
        self, merchant_id: str, ids: Collection[str]
    ) -> dict[str, SubscriptionState]:
        """Reads and share-locks the subscriptions, so a state change (a period close) waits for
        the events being ingested against the old state to commit."""
        rows = await self._session.scalars(
            select(SubscriptionRow)
            .where(SubscriptionRow.id.in_(sorted(ids)), SubscriptionRow.merchant_id == merchant_id)
            .order_by(SubscriptionRow.id)
            .with_for_update(read=True)
        )
        return {row.id: _state(row) for row in rows}

    async def subscription(
        self, merchant_id: str, subscription_id: str
    ) -> SubscriptionState | None:
        row = await self._session.get(SubscriptionRow, subscription_id)
        return _state(row) if row and row.merchant_id == merchant_id else None

    async def upsert_subscription(
        self, state: SubscriptionState, now: datetime
    ) -> SubscriptionState:
        """Writes the state unless the stored one is as new or newer; returns what is stored."""
        stored = await self._upsert(
            SubscriptionRow,
            {
                "id": state.subscription_id,
                "merchant_id": state.merchant_id,
                "service_id": state.service_id,
                "user_id": state.user_id,
                "status": state.status.value,
                "current_period_start": state.current_period_start,
                "current_period_end": state.current_period_end,
                "version": state.version,
                "test_clock_time": state.test_clock_time,
                "update_time": now,
            },
            newer_only=True,
        )
        return _state(stored)

    async def invoices(self, merchant_id: str, ids: Collection[str]) -> dict[str, InvoiceReference]:
        if not ids:
            return {}
        rows = await self._session.scalars(
            select(InvoiceReferenceRow).where(
                InvoiceReferenceRow.id.in_(sorted(ids)),
                InvoiceReferenceRow.merchant_id == merchant_id,
            )
        )
        return {row.id: _reference(row) for row in rows}

    async def upsert_invoice(self, reference: InvoiceReference, now: datetime) -> InvoiceReference:
        stored = await self._upsert(
            InvoiceReferenceRow,
            {
                "id": reference.invoice_id,
                "merchant_id": reference.merchant_id,
                "service_id": reference.service_id,
                "user_id": reference.user_id,
                "update_time": now,
            },
            newer_only=False,
        )
        return _reference(stored)

    async def _upsert(self, row: type[Row], values: dict[str, Any], *, newer_only: bool) -> Row:
        """Inserts or updates by id, never across merchants (nor to an older version when
        `newer_only`), and returns the row as stored: the caller sees a refused write."""
        statement = insert(row).values(values)
        guard = row.merchant_id == statement.excluded.merchant_id
        if newer_only:
            guard &= row.version < statement.excluded.version  # type: ignore[attr-defined]
        statement = statement.on_conflict_do_update(
            index_elements=[row.id],
            set_={key: statement.excluded[key] for key in values if key != "id"},
            where=guard,
        )
        await self._session.execute(statement)
        stored = await self._session.scalar(
            select(row).where(row.id == values["id"]).execution_options(populate_existing=True)
        )
        assert stored is not None
        return stored
