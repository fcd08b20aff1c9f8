"""Payout wallets: the wallet each merchant is paid in."""

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from settlement_svc.adapters.tables import PayoutWalletRow
from settlement_svc.domain.model import PayoutWallet


class PayoutWalletStore:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, merchant_id: str) -> PayoutWallet | None:
        row = await self._session.get(PayoutWalletRow, merchant_id)
        return PayoutWallet(row.merchant_id, row.wallet_address, row.update_time) if row else None

    async def owner(self, wallet_address: str) -> str | None:
        """The merchant paid at this (checksummed) wallet, if any."""
        owner: str | None = await self._session.scalar(
            select(PayoutWalletRow.merchant_id).where(
                PayoutWalletRow.wallet_address == wallet_address
            )
        )
        return owner

    async def put(self, wallet: PayoutWallet) -> bool:
        """Sets the merchant's wallet; False, changing nothing, when another merchant has it."""
        statement = insert(PayoutWalletRow).values(
            merchant_id=wallet.merchant_id,
            wallet_address=wallet.wallet_address,
            update_time=wallet.update_time,
        )
        upsert = statement.on_conflict_do_update(
            index_elements=[PayoutWalletRow.merchant_id],
            set_={
                "wallet_address": statement.excluded.wallet_address,
                "update_time": statement.excluded.update_time,
            },
        )
        try:
            async with self._session.begin_nested():
                await self._session.execute(upsert)
        except IntegrityError:  # payout_wallets_one_merchant: the wallet is another's
            return False
        return True
