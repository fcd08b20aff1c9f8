"""Subscribers' credit balances as settlement reports them."""

from collections.abc import Collection
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from invoicing_svc.adapters.tables import CreditBalanceRow


class CreditBalanceStore:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def report(
        self, merchant_id: str, user_id: str, balance: Decimal, version: int, now: datetime
    ) -> None:
        """Keeps the report unless a newer version is stored (reports may arrive out of order)."""
        statement = insert(CreditBalanceRow).values(
            merchant_id=merchant_id,
            user_id=user_id,
            balance=balance,
            version=version,
            update_time=now,
        )
        await self._session.execute(
            statement.on_conflict_do_update(
                index_elements=[CreditBalanceRow.merchant_id, CreditBalanceRow.user_id],
                set_={
                    "balance": statement.excluded.balance,
                    "version": statement.excluded.version,
                    "update_time": statement.excluded.update_time,
                },
                where=CreditBalanceRow.version < statement.excluded.version,
            )
        )

    async def holders(self, subscribers: Collection[tuple[str, str]]) -> set[tuple[str, str]]:
        """The (merchant, user) pairs among `subscribers` that hold credits, in one query."""
        if not subscribers:
            return set()
        rows = await self._session.execute(
            select(CreditBalanceRow.merchant_id, CreditBalanceRow.user_id).where(
                tuple_(CreditBalanceRow.merchant_id, CreditBalanceRow.user_id).in_(
                    list(subscribers)
                ),
                CreditBalanceRow.balance > 0,
            )
        )
        return {(row.merchant_id, row.user_id) for row in rows}
