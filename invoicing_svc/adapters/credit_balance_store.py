"""Subscribers' credit balances as settlement reports them."""

from collections.abc import Collection
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from invoicing_svc.adapters.tables import CreditBalanceRow
from service_kit.database import lock_name


class CreditBalanceStore:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def lock_subscriber(self, merchant_id: str, user_id: str) -> None:
        """Until commit, no other transaction decides on this subscriber's credits: an auto
        top-up, a second prepaid-only subscription."""
        await lock_name(self._session, f"invoicing.credits:{merchant_id}:{user_id}")

    async def balance(self, merchant_id: str, user_id: str) -> Decimal:
        """The balance last reported; 0 before any report."""
        row = await self._session.get(CreditBalanceRow, (merchant_id, user_id))
        return Decimal(0) if row is None else row.balance

    async def report(
        self, merchant_id: str, user_id: str, balance: Decimal, version: int, now: datetime
    ) -> bool:
        """Keeps the report unless a newer version is stored (reports may arrive out of order);
        answers whether it was kept, or was stored already (settlement's answer to a spending
        of credits stores the version its report carries later)."""
        statement = insert(CreditBalanceRow).values(
            merchant_id=merchant_id,
            user_id=user_id,
            balance=balance,
            version=version,
            update_time=now,
        )
        kept = await self._session.execute(
            statement.on_conflict_do_update(
                index_elements=[CreditBalanceRow.merchant_id, CreditBalanceRow.user_id],
                set_={
                    "balance": statement.excluded.balance,
                    "version": statement.excluded.version,
                    "update_time": statement.excluded.update_time,
                },
                where=CreditBalanceRow.version <= statement.excluded.version,
            ).returning(CreditBalanceRow.version)
        )
        return kept.first() is not None

    async def balances(
        self, subscribers: Collection[tuple[str, str]]
    ) -> dict[tuple[str, str], Decimal]:
        """The balance last reported of each (merchant, user) pair reported; absent is 0."""
        if not subscribers:
            return {}
        rows = await self._session.execute(
            select(
                CreditBalanceRow.merchant_id, CreditBalanceRow.user_id, CreditBalanceRow.balance
            ).where(
                tuple_(CreditBalanceRow.merchant_id, CreditBalanceRow.user_id).in_(
                    list(subscribers)
                )
            )
        )
        return {(row.merchant_id, row.user_id): row.balance for row in rows}

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
