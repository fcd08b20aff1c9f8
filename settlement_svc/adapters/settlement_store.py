"""Settlements."""

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import Table, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from service_kit.pagination import in_creation_order
from settlement_svc.adapters.tables import SettlementRow
from settlement_svc.domain.model import (
    FailureReason,
    Settlement,
    SettlementOrigin,
    SettlementStatus,
)


@dataclass(frozen=True)
class LockedForVerdicts:
    """What verdicts may be written, under the lock: for the settlements still PENDING (the
    others were decided by another pass meanwhile), knowing the transactions already CONFIRMED
    for some settlement."""

    pending: frozenset[str]
    confirmed_transactions: frozenset[str]


def _turn(transaction_hash: str) -> int:
    """The advisory lock key of a transaction: its hash is a keccak digest, so its first 8
    bytes are as good a key as any (a collision only makes two passes wait for each other)."""
    return int.from_bytes(bytes.fromhex(transaction_hash[2:18]), "big", signed=True)


def _settlement(row: SettlementRow) -> Settlement:
    return Settlement(
        id=row.id,
        merchant_id=row.merchant_id,
        invoice_id=row.invoice_id or "",
        checkout_session_id=row.checkout_session_id or "",
        user_id=row.user_id,
        reference_hash=row.reference_hash,
        transaction_hash=row.transaction_hash,
        payer_wallet_address=row.payer_wallet_address,
        merchant_wallet_address=row.merchant_wallet_address,
        amount_due=row.amount_due,
        status=SettlementStatus(row.status),
        create_time=row.create_time,
        failure_reason=FailureReason(row.failure_reason) if row.failure_reason else None,
        failure_detail=row.failure_detail,
        amount_paid=row.amount_paid,
        block_number=row.block_number,
        confirmations=row.confirmations,
        confirm_time=row.confirm_time,
        origin=SettlementOrigin(row.origin),
    )


def _new_row(settlement: Settlement) -> dict[str, object]:
    return {
        "id": settlement.id,
        "merchant_id": settlement.merchant_id,
        "invoice_id": settlement.invoice_id or None,
        "checkout_session_id": settlement.checkout_session_id or None,
        "user_id": settlement.user_id,
        "reference_hash": settlement.reference_hash,
        "transaction_hash": settlement.transaction_hash,
        "payer_wallet_address": settlement.payer_wallet_address,
        "merchant_wallet_address": settlement.merchant_wallet_address,
        "amount_due": settlement.amount_due,
        "status": settlement.status.value,
        "create_time": settlement.create_time,
        "block_number": settlement.block_number,
        "origin": settlement.origin.value,
    }


class SettlementStore:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, settlement: Settlement) -> str | None:
        """Stores a new settlement; returns the unique constraint it broke, if any."""
        statement = (
            insert(SettlementRow)
            .values(_new_row(settlement))
            .on_conflict_do_nothing()
            .returning(SettlementRow.id)
        )
        if (await self._session.execute(statement)).first() is not None:
            return None
        taken = await self._session.scalar(
            select(SettlementRow.id).where(
                SettlementRow.merchant_id == settlement.merchant_id,
                SettlementRow.transaction_hash == settlement.transaction_hash,
                SettlementRow.status != SettlementStatus.FAILED.value,
            )
        )
        return "transaction_hash" if taken else "live_settlement"

    async def add_many(self, settlements: Sequence[Settlement]) -> set[str]:
        """Stores new settlements, in their order; returns the ids stored. One that breaks a
        unique index (also against an earlier one of the same call) is left out."""
        if not settlements:
            return set()
        # On the table, not the ORM entity: one statement compiled once, rows sent in batches.
        table = cast(Table, SettlementRow.__table__)
        inserted = await self._session.execute(
            insert(table).on_conflict_do_nothing().returning(table.c.id),
            [_new_row(s) for s in settlements],
        )
        return set(inserted.scalars())

    async def lock_for_verdicts(self, settlements: Sequence[Settlement]) -> LockedForVerdicts:
        """Takes the turn of these settlements' transactions and locks the settlements; answers
        which are still PENDING and which of the transactions a settlement is CONFIRMED by.

        Every writer of verdicts takes the turn of a transaction first (an advisory lock keyed
        on its hash, in key order), so two passes that read the same settlement, or two
        settlements of one transaction, from the chain at once write one after the other, and
        the second sees the first's verdicts."""
        hashes = sorted({s.transaction_hash for s in settlements})
        keys = sorted({_turn(h) for h in hashes})
        await self._session.execute(
            text("SELECT pg_advisory_xact_lock(key) FROM unnest(CAST(:keys AS bigint[])) AS key"),
            {"keys": keys},
        )
        rows = await self._session.execute(
            select(SettlementRow.id, SettlementRow.transaction_hash, SettlementRow.status)
            .where(
                SettlementRow.id.in_([s.id for s in settlements])
                | (
                    SettlementRow.transaction_hash.in_(hashes)
                    & (SettlementRow.status == SettlementStatus.CONFIRMED.value)
                )
            )
            .with_for_update()
        )
        pending, confirmed = set(), set()
        for id_, transaction_hash, status in rows:
            if status == SettlementStatus.PENDING.value:
                pending.add(id_)
            elif status == SettlementStatus.CONFIRMED.value:
                confirmed.add(transaction_hash)
        return LockedForVerdicts(frozenset(pending), frozenset(confirmed))

    async def record_verdicts(self, settlements: Sequence[Settlement]) -> None:
        """Writes each one's verdict (or progress, while PENDING), in one round trip."""
        if not settlements:
            return
        await self._session.execute(
            update(SettlementRow),
            [
                {
                    "id": s.id,
                    "status": s.status.value,
                    "failure_reason": s.failure_reason.value if s.failure_reason else None,
                    "failure_detail": s.failure_detail,
                    "amount_paid": s.amount_paid,
                    "block_number": s.block_number,
                    "confirmations": s.confirmations,
                    "confirm_time": s.confirm_time,
                }
                for s in settlements
            ],
        )

    async def follow_transaction(self, hashes: Sequence[str], mined_hash: str) -> None:
        """The pending settlements of any of these hashes (one nonce's transaction and those
        that replaced it) follow the one mined."""
        await self._session.execute(
            update(SettlementRow)
            .where(
                SettlementRow.transaction_hash.in_(hashes),
                SettlementRow.status == SettlementStatus.PENDING.value,
            )
            .values(transaction_hash=mined_hash)
        )

    async def get(self, merchant_id: str, settlement_id: str) -> Settlement | None:
        row = await self._session.scalar(
            select(SettlementRow)
            .where(SettlementRow.id == settlement_id, SettlementRow.merchant_id == merchant_id)
            .execution_options(populate_existing=True)
        )
        return _settlement(row) if row else None

    async def page(
        self,
        merchant_id: str,
        invoice_id: str | None,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> list[Settlement]:
        query = select(SettlementRow).where(SettlementRow.merchant_id == merchant_id)
        if invoice_id:
            query = query.where(SettlementRow.invoice_id == invoice_id)
        rows = await self._session.scalars(
            in_creation_order(query, SettlementRow.create_time, SettlementRow.id, after, limit)
        )
        return [_settlement(row) for row in rows]

    async def confirmed_invoices(self, merchant_id: str, invoice_ids: Collection[str]) -> set[str]:
        """The invoices among `invoice_ids` a CONFIRMED settlement paid."""
        if not invoice_ids:
            return set()
        rows = await self._session.scalars(
            select(SettlementRow.invoice_id).where(
                SettlementRow.merchant_id == merchant_id,
                SettlementRow.invoice_id.in_(sorted(invoice_ids)),
                SettlementRow.status == SettlementStatus.CONFIRMED.value,
            )
        )
        return {invoice_id for invoice_id in rows if invoice_id}

    async def confirmed(self, merchant_id: str) -> list[Settlement]:
        rows = await self._session.scalars(
            select(SettlementRow).where(
                SettlementRow.merchant_id == merchant_id,
                SettlementRow.status == SettlementStatus.CONFIRMED.value,
            )
        )
        return [_settlement(row) for row in rows]

    async def count_by_status(self, origin: SettlementOrigin) -> dict[SettlementStatus, int]:
        rows = await self._session.execute(
            select(SettlementRow.status, func.count())
            .where(SettlementRow.origin == origin.value)
            .group_by(SettlementRow.status)
        )
        return {SettlementStatus(status): int(count) for status, count in rows}

    async def pending(self, limit: int) -> list[Settlement]:
        """The oldest pending settlements, for one verification pass, first submitted first (ids
        grow with time, so they order submissions of one clock reading). Rows locked right now
        are skipped: another pass is writing their verdicts."""
        rows = await self._session.scalars(
            select(SettlementRow)
            .where(SettlementRow.status == SettlementStatus.PENDING.value)
            .order_by(SettlementRow.create_time, SettlementRow.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
            .execution_options(populate_existing=True)
        )
        return [_settlement(row) for row in rows]
