"""Relayed authorizations: one per (payer, nonce), the authorization's slot on chain."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from settlement_svc.adapters.tables import RelayRow


@dataclass(frozen=True)
class Relay:
    id: str
    merchant_id: str
    reference_hash: str
    payer: str
    settlement_id: str
    outgoing_transaction_id: str
    create_time: datetime


class RelayStore:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def find(self, payer: str, reference_hash: str) -> Relay | None:
        row = await self._session.scalar(
            select(RelayRow).where(
                RelayRow.payer_wallet_address == payer, RelayRow.reference_hash == reference_hash
            )
        )
        if row is None:
            return None
        return Relay(
            row.id,
            row.merchant_id,
            row.reference_hash,
            row.payer_wallet_address,
            row.settlement_id,
            row.outgoing_transaction_id,
            row.create_time,
        )

    async def add(self, relay: Relay) -> bool:
        """Stores the relay; False when this authorization was relayed already."""
        inserted = await self._session.execute(
            insert(RelayRow)
            .values(
                id=relay.id,
                merchant_id=relay.merchant_id,
                reference_hash=relay.reference_hash,
                payer_wallet_address=relay.payer,
                settlement_id=relay.settlement_id,
                outgoing_transaction_id=relay.outgoing_transaction_id,
                create_time=relay.create_time,
            )
            .on_conflict_do_nothing()
            .returning(RelayRow.id)
        )
        return inserted.first() is not None
