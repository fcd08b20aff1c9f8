"""The chain watcher's state: its cursor, recent block hashes, what it must know of settlements,
and what a reorg makes it forget."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from settlement_svc.adapters.tables import (
    CreditRow,
    SettlementRow,
    WatchedBlockRow,
    WatcherCursorRow,
)
from settlement_svc.domain.credits import CreditStatus
from settlement_svc.domain.model import SettlementOrigin, SettlementStatus

# Block hashes kept, counted back from the newest: a reorg deeper than this rolls the cursor back
# to the oldest one kept, not to the fork itself.
KEPT_BLOCKS = 256


@dataclass(frozen=True)
class Forgotten:
    settlements: int
    credits: int


class WatcherStore:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def cursor(self, token: str) -> int | None:
        """The next block to read for `token`; None before the first pass."""
        found: int | None = await self._session.scalar(
            select(WatcherCursorRow.next_block).where(WatcherCursorRow.token_address == token)
        )
        return found

    async def lock_cursor(self, token: str) -> int | None:
        """The cursor, locked to the end of the transaction: passes of several replicas write
        one after the other, and each sees whether another moved it meanwhile."""
        found: int | None = await self._session.scalar(
            select(WatcherCursorRow.next_block)
            .where(WatcherCursorRow.token_address == token)
            .with_for_update()
        )
        return found

    async def hold_cursor(self, token: str) -> None:
        """Waits for a pass recording a range to commit, and makes the next wait for this
        transaction: a proof and a pass then each see what the other stored."""
        await self._session.execute(
            select(WatcherCursorRow.next_block)
            .where(WatcherCursorRow.token_address == token)
            .with_for_update(read=True)
        )

    async def resume(self, token: str, first: int) -> int:
        """The next block to read for `token`; `first` when no pass ran yet (unless another
        pass started it meanwhile)."""
        found = await self.cursor(token)
        if found is not None:
            return found
        await self._session.execute(
            insert(WatcherCursorRow)
            .values(token_address=token, next_block=first)
            .on_conflict_do_nothing()
        )
        found = await self.cursor(token)
        assert found is not None
        return found

    async def move_cursor(self, token: str, next_block: int, recognised: int, credits: int) -> None:
        """Past a range, counting what it held (the counters move with the cursor, once)."""
        await self._session.execute(
            update(WatcherCursorRow)
            .where(WatcherCursorRow.token_address == token)
            .values(
                next_block=next_block,
                payments_recognised=WatcherCursorRow.payments_recognised + recognised,
                credits_recorded=WatcherCursorRow.credits_recorded + credits,
            )
        )

    async def totals(self) -> tuple[int, int]:
        """Payments recognised and credits recorded, over every cursor's life."""
        row = (
            await self._session.execute(
                select(
                    func.coalesce(func.sum(WatcherCursorRow.payments_recognised), 0),
                    func.coalesce(func.sum(WatcherCursorRow.credits_recorded), 0),
                )
            )
        ).one()
        return int(row[0]), int(row[1])

    async def recent_blocks(self) -> list[tuple[int, str]]:
        """Stored (number, hash), highest first."""
        rows = await self._session.execute(
            select(WatchedBlockRow.number, WatchedBlockRow.hash).order_by(
                WatchedBlockRow.number.desc()
            )
        )
        return [(number, hash_) for number, hash_ in rows]

    async def remember_blocks(self, blocks: Mapping[int, str]) -> None:
        """Stores these blocks' hashes and drops those more than KEPT_BLOCKS below the newest."""
        if not blocks:
            return
        statement = insert(WatchedBlockRow).values(
            [{"number": number, "hash": hash_} for number, hash_ in sorted(blocks.items())]
        )
        await self._session.execute(
            statement.on_conflict_do_update(
                index_elements=[WatchedBlockRow.number], set_={"hash": statement.excluded.hash}
            )
        )
        newest = select(func.max(WatchedBlockRow.number)).scalar_subquery()
        await self._session.execute(
            delete(WatchedBlockRow).where(WatchedBlockRow.number <= newest - KEPT_BLOCKS)
        )

    async def forget_above(self, fork: int) -> Forgotten:
        """What the watcher saw above block `fork`, none of it final: the stored hashes, its
        pending credits and its pending settlements. The settlements are locked first, as the
        verifier locks those it judges, so it never judges one forgotten meanwhile."""
        await self._session.execute(delete(WatchedBlockRow).where(WatchedBlockRow.number > fork))
        credits = await self._session.scalars(
            delete(CreditRow)
            .where(CreditRow.block_number > fork, CreditRow.status == CreditStatus.PENDING.value)
            .returning(CreditRow.id)
        )
        forgotten_credits = len(credits.all())
        watched = (
            select(SettlementRow.id)
            .where(
                SettlementRow.origin == SettlementOrigin.WATCHER.value,
                SettlementRow.status == SettlementStatus.PENDING.value,
                SettlementRow.block_number > fork,
            )
            .with_for_update()
        )
        ids = list(await self._session.scalars(watched))
        if ids:
            await self._session.execute(delete(SettlementRow).where(SettlementRow.id.in_(ids)))
        return Forgotten(settlements=len(ids), credits=forgotten_credits)

    async def live_transactions(self, hashes: Sequence[str]) -> dict[tuple[str, str], str]:
        """(merchant, transaction) -> payer of each live settlement of these transactions."""
        if not hashes:
            return {}
        rows = await self._session.execute(
            select(
                SettlementRow.merchant_id,
                SettlementRow.transaction_hash,
                SettlementRow.payer_wallet_address,
            ).where(
                SettlementRow.transaction_hash.in_(hashes),
                SettlementRow.status != SettlementStatus.FAILED.value,
            )
        )
        return {(merchant, transaction): payer for merchant, transaction, payer in rows}

    async def settled_payables(self, payable_ids: Sequence[str]) -> set[str]:
        """Those of these invoices and checkout sessions that have a live settlement."""
        if not payable_ids:
            return set()
        rows = await self._session.execute(
            select(SettlementRow.invoice_id, SettlementRow.checkout_session_id).where(
                or_(
                    SettlementRow.invoice_id.in_(payable_ids),
                    SettlementRow.checkout_session_id.in_(payable_ids),
                ),
                SettlementRow.status != SettlementStatus.FAILED.value,
            )
        )
        return {str(invoice_id or checkout_session_id) for invoice_id, checkout_session_id in rows}
