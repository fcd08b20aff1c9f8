"""A merchant's settings of invoicing: one row, written the first time one changes."""

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from invoicing_svc.adapters.tables import MerchantSettingsRow
from invoicing_svc.domain.dunning import DunningFinalAction, MerchantSettings


class MerchantSettingsStore:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, merchant_id: str) -> MerchantSettings:
        """The merchant's settings; the defaults while it has changed none."""
        row = await self._session.scalar(
            select(MerchantSettingsRow)
            .where(MerchantSettingsRow.merchant_id == merchant_id)
            .execution_options(populate_existing=True)
        )
        if row is None:
            return MerchantSettings(merchant_id)
        return MerchantSettings(
            merchant_id=row.merchant_id,
            dunning_final_action=DunningFinalAction(row.dunning_final_action),
            update_time=row.update_time,
        )

    async def save(self, settings: MerchantSettings) -> None:
        assert settings.update_time is not None
        values = {
            "dunning_final_action": settings.dunning_final_action.value,
            "update_time": settings.update_time,
        }
        await self._session.execute(
            insert(MerchantSettingsRow)
            .values(merchant_id=settings.merchant_id, **values)
            .on_conflict_do_update(index_elements=[MerchantSettingsRow.merchant_id], set_=values)
        )
