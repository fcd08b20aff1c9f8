"""The chain watcher's state: cursor, recent block hashes, credits, and what a reorg forgets."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

# Block hashes kept: a reorg deeper than this is beyond what the watcher can walk back.
KEPT_BLOCKS = 256


@dataclass(frozen=True)
class Credit:
    transaction_hash: str
    log_index: int
    merchant_id: str
    user_id: str
    reference_hash: str
    amount: Decimal
    reason: str
    block_number: int
    block_hash: str


class WatcherStore:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def cursor(self) -> int | None:
        """The next block to read, locked to the end of the transaction (one watcher at a time);
        None before the first pass."""
        found = await self._session.scalar(
            text("SELECT next_block FROM settlement.watcher_cursor WHERE id = 1 FOR UPDATE")
        )
        return None if found is None else int(found)

    async def peek_cursor(self) -> int | None:
        """The cursor, without waiting for a pass that holds it."""
        found = await self._session.scalar(
            text("SELECT next_block FROM settlement.watcher_cursor WHERE id = 1")
        )
        return None if found is None else int(found)

    async def move_cursor(self, next_block: int) -> None:
        await self._session.execute(
            text(
                "INSERT INTO settlement.watcher_cursor (id, next_block) VALUES (1, :n)"
                " ON CONFLICT (id) DO UPDATE SET next_block = excluded.next_block"
            ),
            {"n": next_block},
        )

    async def recent_blocks(self) -> list[tuple[int, str]]:
        """Stored (number, hash), highest first."""
        rows = await self._session.execute(
            text("SELECT number, hash FROM settlement.watched_blocks ORDER BY number DESC")
        )
        return [(int(n), str(h)) for n, h in rows]

    async def remember_blocks(self, blocks: dict[int, str]) -> None:
        if not blocks:
            return
        await self._session.execute(
            text(
                "INSERT INTO settlement.watched_blocks (number, hash) VALUES (:number, :hash)"
                " ON CONFLICT (number) DO UPDATE SET hash = excluded.hash"
            ),
            [{"number": n, "hash": h} for n, h in blocks.items()],
        )
        await self._session.execute(
            text(
                "DELETE FROM settlement.watched_blocks WHERE number <"
                " (SELECT max(number) FROM settlement.watched_blocks) - :kept"
            ),
            {"kept": KEPT_BLOCKS},
        )

    async def forget_above(self, fork: int) -> int:
        """What vanished in a reorg above block `fork`, never final: stored hashes, pending
        credits, and the watcher's pending settlements (locked first, as the verifier locks
        what it judges). Returns the settlements forgotten."""
        params = {"fork": fork}
        await self._session.execute(
            text("DELETE FROM settlement.watched_blocks WHERE number > :fork"), params
        )
        await self._session.execute(
            text(
                "DELETE FROM settlement.credits WHERE block_number > :fork AND status = 'PENDING'"
            ),
            params,
        )
        forgotten = await self._session.execute(
            text(
                "DELETE FROM settlement.settlements WHERE id IN (SELECT id FROM"
                " settlement.settlements WHERE origin = 'WATCHER' AND status = 'PENDING'"
                " AND block_number > :fork FOR UPDATE) RETURNING id"
            ),
            params,
        )
        return len(forgotten.all())

    async def add_credit(self, credit: Credit, now: datetime) -> None:
        await self._session.execute(
            text(
                "INSERT INTO settlement.credits (transaction_hash, log_index, merchant_id,"
                " user_id, reference_hash, amount, reason, block_number, block_hash, status,"
                " create_time) VALUES (:transaction_hash, :log_index, :merchant_id, :user_id,"
                " :reference_hash, :amount, :reason, :block_number, :block_hash, 'PENDING', :now)"
                " ON CONFLICT DO NOTHING"
            ),
            {**credit.__dict__, "now": now},
        )

    async def final_credits(self, last_final_block: int) -> list[Credit]:
        rows = await self._session.execute(
            text(
                "SELECT transaction_hash, log_index, merchant_id, user_id, reference_hash,"
                " amount, reason, block_number, block_hash FROM settlement.credits"
                " WHERE status = 'PENDING' AND block_number <= :last FOR UPDATE"
            ),
            {"last": last_final_block},
        )
        return [Credit(*row) for row in rows]

    async def mark_posted(self, credits: list[Credit]) -> None:
        if credits:
            await self._session.execute(
                text(
                    "UPDATE settlement.credits SET status = 'POSTED'"
                    " WHERE transaction_hash = :t AND log_index = :i"
                ),
                [{"t": c.transaction_hash, "i": c.log_index} for c in credits],
            )
