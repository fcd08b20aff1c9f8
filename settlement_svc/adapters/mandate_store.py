"""Mandates: the platform's record of each subscriber's mandate on the contract."""

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from settlement_svc.adapters.tables import MandateRow
from settlement_svc.domain.mandates import Mandate, MandateStatus

LIVE = (MandateStatus.PENDING.value, MandateStatus.ACTIVE.value)


def _mandate(row: MandateRow) -> Mandate:
    return Mandate(
        id=row.id,
        merchant_id=row.merchant_id,
        user_id=row.user_id,
        subscription_id=row.subscription_id,
        payer_wallet_address=row.payer_wallet_address,
        merchant_wallet_address=row.merchant_wallet_address,
        contract_address=row.contract_address,
        cap=row.cap,
        period_seconds=row.period_seconds,
        expire_time=row.expire_time,
        status=MandateStatus(row.status),
        transaction_hash=row.transaction_hash,
        create_time=row.create_time,
    )


class MandateStore:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, mandate: Mandate) -> None:
        self._session.add(
            MandateRow(
                id=mandate.id,
                merchant_id=mandate.merchant_id,
                user_id=mandate.user_id,
                subscription_id=mandate.subscription_id,
                payer_wallet_address=mandate.payer_wallet_address,
                merchant_wallet_address=mandate.merchant_wallet_address,
                contract_address=mandate.contract_address,
                cap=mandate.cap,
                period_seconds=mandate.period_seconds,
                expire_time=mandate.expire_time,
                status=mandate.status.value,
                transaction_hash=mandate.transaction_hash,
                create_time=mandate.create_time,
                update_time=mandate.create_time,
            )
        )
        await self._session.flush()

    async def of_subscription(self, merchant_id: str, subscription_id: str) -> Mandate | None:
        """The subscription's newest mandate, whatever its state."""
        row = await self._session.scalar(
            select(MandateRow)
            .where(
                MandateRow.merchant_id == merchant_id,
                MandateRow.subscription_id == subscription_id,
            )
            .order_by(MandateRow.create_time.desc(), MandateRow.id.desc())
            .limit(1)
        )
        return _mandate(row) if row else None

    async def live_of_users(self, merchant_id: str, user_ids: Sequence[str]) -> dict[str, Mandate]:
        """Each of these subscribers' newest PENDING or ACTIVE mandate with the merchant."""
        if not user_ids:
            return {}
        rows = await self._session.scalars(
            select(MandateRow)
            .where(
                MandateRow.merchant_id == merchant_id,
                MandateRow.user_id.in_(user_ids),
                MandateRow.status.in_(LIVE),
            )
            .order_by(MandateRow.create_time, MandateRow.id)
        )
        return {row.user_id: _mandate(row) for row in rows}  # the newest wins

    async def get(self, mandate_id: str) -> Mandate | None:
        row = await self._session.get(MandateRow, mandate_id)
        return _mandate(row) if row else None

    async def live_of_pairs(
        self, contract: str, pairs: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], list[Mandate]]:
        """The PENDING and ACTIVE mandates on `contract` of these (payer, merchant wallet) pairs,
        locked: the watcher's pass moves them."""
        if not pairs:
            return {}
        rows = await self._session.scalars(
            select(MandateRow)
            .where(
                MandateRow.contract_address == contract,
                tuple_(MandateRow.payer_wallet_address, MandateRow.merchant_wallet_address).in_(
                    pairs
                ),
                MandateRow.status.in_(LIVE),
            )
            .order_by(MandateRow.create_time, MandateRow.id)
            .with_for_update()
        )
        found: dict[tuple[str, str], list[Mandate]] = {}
        for row in rows:
            pair = row.payer_wallet_address, row.merchant_wallet_address
            found.setdefault(pair, []).append(_mandate(row))
        return found

    async def expire_due(self, now: datetime) -> int:
        """Marks EXPIRED the live mandates whose expiry has passed; answers how many."""
        expired = await self._session.execute(
            update(MandateRow)
            .where(MandateRow.status.in_(LIVE), MandateRow.expire_time <= now)
            .values(status=MandateStatus.EXPIRED.value, update_time=now)
            .returning(MandateRow.id)
        )
        return len(expired.all())

    async def follow_transaction(self, hashes: Sequence[str], mined_hash: str) -> None:
        """Mandates relayed by any of these hashes show the one mined."""
        await self._session.execute(
            update(MandateRow)
            .where(MandateRow.transaction_hash.in_(hashes))
            .values(transaction_hash=mined_hash)
        )

    async def set_status(
        self, mandate_id: str, expected: MandateStatus, status: MandateStatus, now: datetime
    ) -> bool:
        """Moves the mandate on unless another pass moved it first."""
        moved = await self._session.execute(
            update(MandateRow)
            .where(MandateRow.id == mandate_id, MandateRow.status == expected.value)
            .values(status=status.value, update_time=now)
            .returning(MandateRow.id)
        )
        return moved.first() is not None
