"""Subscriptions' auto top-ups."""

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from invoicing_svc.adapters.tables import AutoTopUpRow
from invoicing_svc.domain.credits import AutoTopUp


def _auto_top_up(row: AutoTopUpRow) -> AutoTopUp:
    return AutoTopUp(
        row.merchant_id,
        row.subscription_id,
        row.user_id,
        row.threshold,
        row.amount,
        row.update_time,
    )


class AutoTopUpStore:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def save(self, auto_top_up: AutoTopUp) -> None:
        statement = insert(AutoTopUpRow).values(
            subscription_id=auto_top_up.subscription_id,
            merchant_id=auto_top_up.merchant_id,
            user_id=auto_top_up.user_id,
            threshold=auto_top_up.threshold,
            amount=auto_top_up.amount,
            update_time=auto_top_up.update_time,
        )
        await self._session.execute(
            statement.on_conflict_do_update(
                index_elements=[AutoTopUpRow.subscription_id],
                set_={
                    "threshold": statement.excluded.threshold,
                    "amount": statement.excluded.amount,
                    "update_time": statement.excluded.update_time,
                },
            )
        )

    async def remove(self, subscription_id: str) -> None:
        await self._session.execute(
            delete(AutoTopUpRow).where(AutoTopUpRow.subscription_id == subscription_id)
        )

    async def of_subscription(self, subscription_id: str) -> AutoTopUp | None:
        row = await self._session.get(AutoTopUpRow, subscription_id)
        return None if row is None else _auto_top_up(row)

    async def of_user(self, merchant_id: str, user_id: str) -> list[AutoTopUp]:
        """The subscriber's auto top-ups, the longest standing first."""
        rows = await self._session.scalars(
            select(AutoTopUpRow)
            .where(AutoTopUpRow.merchant_id == merchant_id, AutoTopUpRow.user_id == user_id)
            .order_by(AutoTopUpRow.update_time, AutoTopUpRow.subscription_id)
        )
        return [_auto_top_up(row) for row in rows]
