"""Settlements."""

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from service_kit.pagination import in_creation_order
from settlement_svc.adapters.tables import SettlementRow
from settlement_svc.domain.model import FailureReason, Settlement, SettlementStatus


def _settlement(row: SettlementRow) -> Settlement:
    return Settlement(
        id=row.id,
        merchant_id=row.merchant_id,
        invoice_id=row.invoice_id or "",
        checkout_session_id=row.checkout_session_id or "",
        user_id=row.user_id,
        reference_hash=row.reference_hash,
        transaction_hash=row.transaction_hash,
        payer_wallet_address=row.payer_wallet_address,
        merchant_wallet_address=row.merchant_wallet_address,
        amount_due=row.amount_due,
        status=SettlementStatus(row.status),
        create_time=row.create_time,
        failure_reason=FailureReason(row.failure_reason) if row.failure_reason else None,
        failure_detail=row.failure_detail,
        amount_paid=row.amount_paid,
        block_number=row.block_number,
        confirmations=row.confirmations,
        confirm_time=row.confirm_time,
    )


class SettlementStore:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, settlement: Settlement) -> str | None:
        """Stores a new settlement; returns the unique constraint it broke, if any."""
        statement = (
            insert(SettlementRow)
            .values(
                id=settlement.id,
                merchant_id=settlement.merchant_id,
                invoice_id=settlement.invoice_id or None,
                checkout_session_id=settlement.checkout_session_id or None,
                user_id=settlement.user_id,
                reference_hash=settlement.reference_hash,
                transaction_hash=settlement.transaction_hash,
                payer_wallet_address=settlement.payer_wallet_address,
                merchant_wallet_address=settlement.merchant_wallet_address,
                amount_due=settlement.amount_due,
                status=settlement.status.value,
                create_time=settlement.create_time,
            )
            .on_conflict_do_nothing()
            .returning(SettlementRow.id)
        )
        if (await self._session.execute(statement)).first() is not None:
            return None
        taken = await self._session.scalar(
            select(SettlementRow.id).where(
                SettlementRow.merchant_id == settlement.merchant_id,
                SettlementRow.transaction_hash == settlement.transaction_hash,
                SettlementRow.status != SettlementStatus.FAILED.value,
            )
        )
        return "transaction_hash" if taken else "live_settlement"

    async def confirmed_elsewhere(self, settlement: Settlement) -> bool:
        """Whether another settlement, of any merchant, is confirmed by the same transaction."""
        other = await self._session.scalar(
            select(SettlementRow.id).where(
                SettlementRow.transaction_hash == settlement.transaction_hash,
                SettlementRow.status == SettlementStatus.CONFIRMED.value,
                SettlementRow.id != settlement.id,
            )
        )
        return other is not None

    async def record_verdict(self, settlement: Settlement) -> None:
        await self._session.execute(
            update(SettlementRow)
            .where(SettlementRow.id == settlement.id)
            .values(
                status=settlement.status.value,
                failure_reason=settlement.failure_reason.value
                if settlement.failure_reason
                else None,
                failure_detail=settlement.failure_detail,
                amount_paid=settlement.amount_paid,
                block_number=settlement.block_number,
                confirmations=settlement.confirmations,
                confirm_time=settlement.confirm_time,
            )
        )

    async def get(self, merchant_id: str, settlement_id: str) -> Settlement | None:
        row = await self._session.scalar(
            select(SettlementRow)
            .where(SettlementRow.id == settlement_id, SettlementRow.merchant_id == merchant_id)
            .execution_options(populate_existing=True)
        )
        return _settlement(row) if row else None

    async def page(
        self,
        merchant_id: str,
        invoice_id: str | None,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> list[Settlement]:
        query = select(SettlementRow).where(SettlementRow.merchant_id == merchant_id)
        if invoice_id:
            query = query.where(SettlementRow.invoice_id == invoice_id)
        rows = await self._session.scalars(
            in_creation_order(query, SettlementRow.create_time, SettlementRow.id, after, limit)
        )
        return [_settlement(row) for row in rows]

    async def confirmed(self, merchant_id: str) -> list[Settlement]:
        rows = await self._session.scalars(
            select(SettlementRow).where(
                SettlementRow.merchant_id == merchant_id,
                SettlementRow.status == SettlementStatus.CONFIRMED.value,
            )
        )
        return [_settlement(row) for row in rows]

    async def claim_pending(self, limit: int, settlement_id: str | None = None) -> list[Settlement]:
        """Locks pending settlements for one verification pass; others' are skipped."""
        query = select(SettlementRow).where(SettlementRow.status == SettlementStatus.PENDING.value)
        if settlement_id:
            query = query.where(SettlementRow.id == settlement_id)
        rows = await self._session.scalars(
            query.order_by(SettlementRow.create_time)
            .limit(limit)
            .with_for_update(skip_locked=True)
            .execution_options(populate_existing=True)
        )
        return [_settlement(row) for row in rows]
