"""Credits: payments the watcher found that could not settle their request."""

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import cast

from sqlalchemy import Table, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from settlement_svc.adapters.tables import CreditRow
from settlement_svc.domain.chain_logs import CreditReason
from settlement_svc.domain.credits import Credit, CreditStatus


def _credit(row: CreditRow) -> Credit:
    return Credit(
        id=row.id,
        merchant_id=row.merchant_id,
        user_id=row.user_id,
        reference_hash=row.reference_hash,
        invoice_id=row.invoice_id or "",
        checkout_session_id=row.checkout_session_id or "",
        transaction_hash=row.transaction_hash,
        log_index=row.log_index,
        payer_wallet_address=row.payer_wallet_address,
        amount=row.amount,
        reason=CreditReason(row.reason),
        block_number=row.block_number,
        block_hash=row.block_hash,
        status=CreditStatus(row.status),
        create_time=row.create_time,
        post_time=row.post_time,
    )


class CreditStore:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add_many(self, credits: Sequence[Credit]) -> int:
        """Stores new credits; one of a payment credited before is left out. Returns how many
        were stored."""
        if not credits:
            return 0
        table = cast(Table, CreditRow.__table__)
        inserted = await self._session.execute(
            insert(table)
            .on_conflict_do_nothing(constraint="credits_payment_once")
            .returning(table.c.id),
            [
                {
                    "id": c.id,
                    "merchant_id": c.merchant_id,
                    "user_id": c.user_id,
                    "reference_hash": c.reference_hash,
                    "invoice_id": c.invoice_id or None,
                    "checkout_session_id": c.checkout_session_id or None,
                    "transaction_hash": c.transaction_hash,
                    "log_index": c.log_index,
                    "payer_wallet_address": c.payer_wallet_address,
                    "amount": c.amount,
                    "reason": c.reason.value,
                    "block_number": c.block_number,
                    "block_hash": c.block_hash,
                    "status": c.status.value,
                    "create_time": c.create_time,
                }
                for c in credits
            ],
        )
        return len(inserted.all())

    async def credit_transaction(self, merchant_id: str, transaction_hash: str) -> bool:
        """Whether a payment of the transaction is the merchant's credit already."""
        found = await self._session.scalar(
            select(CreditRow.id)
            .where(
                CreditRow.transaction_hash == transaction_hash,
                CreditRow.merchant_id == merchant_id,
            )
            .limit(1)
        )
        return found is not None

    async def pending_up_to(self, last_block: int) -> list[Credit]:
        """PENDING credits in blocks up to `last_block`, oldest block first."""
        rows = await self._session.scalars(
            select(CreditRow)
            .where(
                CreditRow.status == CreditStatus.PENDING.value,
                CreditRow.block_number <= last_block,
            )
            .order_by(CreditRow.block_number, CreditRow.log_index)
        )
        return [_credit(row) for row in rows]

    async def lock_pending(self, ids: Sequence[str]) -> list[Credit]:
        """Those of these credits still PENDING (not posted or forgotten meanwhile), locked."""
        rows = await self._session.scalars(
            select(CreditRow)
            .where(CreditRow.id.in_(ids), CreditRow.status == CreditStatus.PENDING.value)
            .order_by(CreditRow.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return [_credit(row) for row in rows]

    async def mark_posted(self, ids: Sequence[str], now: datetime) -> None:
        if ids:
            await self._session.execute(
                update(CreditRow)
                .where(CreditRow.id.in_(ids))
                .values(status=CreditStatus.POSTED.value, post_time=now)
            )

    async def posted_amounts(self, merchant_id: str) -> dict[str, Decimal]:
        """id -> amount of the merchant's POSTED credits."""
        rows = await self._session.execute(
            select(CreditRow.id, CreditRow.amount).where(
                CreditRow.merchant_id == merchant_id,
                CreditRow.status == CreditStatus.POSTED.value,
            )
        )
        return {id_: amount for id_, amount in rows}

    async def of_merchant(self, merchant_id: str) -> list[Credit]:
        rows = await self._session.scalars(
            select(CreditRow)
            .where(CreditRow.merchant_id == merchant_id)
            .order_by(CreditRow.block_number, CreditRow.log_index)
        )
        return [_credit(row) for row in rows]
