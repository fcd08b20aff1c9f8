"""The journal: transactions of balanced entries, appended once per business event."""

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, select, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from service_kit.ids import new_id
from settlement_svc.adapters.tables import JournalEntryRow, JournalTransactionRow
from settlement_svc.domain.ledger import Entry, PostedEntry, Posting, PostingKind


def _key(posting: Posting) -> tuple[str, str]:
    return posting.kind, posting.reference


class JournalStore:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def post(
        self,
        merchant_id: str,
        kind: PostingKind,
        reference: str,
        entries: Sequence[Entry],
        now: datetime,
    ) -> str:
        """Appends the transaction unless this (kind, reference) was posted before; returns its
        id. The database checks at commit that its debits equal its credits."""
        posted = await self.post_many(merchant_id, [Posting(kind, reference, entries)], now)
        return posted[(kind, reference)]

    async def post_many(
        self, merchant_id: str, postings: Sequence[Posting], now: datetime
    ) -> dict[tuple[str, str], str]:
        """`post` of each posting, in three statements whatever their number; returns the
        transaction id of each (kind, reference)."""
        # In one order, so that concurrent calls lock the rows in the same order.
        ordered = sorted({(p.kind, p.reference): p for p in postings}.values(), key=_key)
        fresh = {_key(p): new_id("jtx") for p in ordered}
        # Many rows as parameters of one statement, compiled once (a VALUES list of many rows
        # is compiled anew for each count).
        inserted = await self._session.execute(
            insert(JournalTransactionRow)
            .on_conflict_do_nothing(constraint="journal_posted_once")
            .returning(
                JournalTransactionRow.kind,
                JournalTransactionRow.reference,
                JournalTransactionRow.id,
            ),
            [
                {
                    "id": fresh[_key(p)],
                    "merchant_id": merchant_id,
                    "kind": p.kind,
                    "reference": p.reference,
                    "create_time": now,
                }
                for p in ordered
            ],
        )
        posted = {(kind, reference): id_ for kind, reference, id_ in inserted}
        earlier = {key for key in fresh if key not in posted}
        if earlier:
            existing = await self._session.execute(
                select(
                    JournalTransactionRow.kind,
                    JournalTransactionRow.reference,
                    JournalTransactionRow.id,
                ).where(
                    JournalTransactionRow.merchant_id == merchant_id,
                    tuple_(JournalTransactionRow.kind, JournalTransactionRow.reference).in_(
                        sorted(earlier)
                    ),
                )
            )
            posted.update({(kind, reference): id_ for kind, reference, id_ in existing})
        entries = [
            {
                "transaction_id": posted[_key(p)],
                "line_number": number,
                "merchant_id": merchant_id,
                "account": entry.account,
                "debit": entry.debit,
                "credit": entry.credit,
                "currency": "USDC",
            }
            for p in ordered
            if _key(p) not in earlier
            for number, entry in enumerate(p.entries, start=1)
        ]
        if entries:
            await self._session.execute(insert(JournalEntryRow), entries)
        return posted

    async def invoice_owner(self, invoice_id: str) -> str | None:
        """The merchant whose invoice this id is, if the ledger recorded it."""
        owner: str | None = await self._session.scalar(
            select(JournalTransactionRow.merchant_id).where(
                JournalTransactionRow.kind == PostingKind.INVOICE.value,
                JournalTransactionRow.reference == invoice_id,
            )
        )
        return owner

    async def voided_invoices(self, invoices: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
        """Those of these (merchant id, invoice id) whose void the ledger recorded."""
        if not invoices:
            return set()
        rows = await self._session.execute(
            select(JournalTransactionRow.merchant_id, JournalTransactionRow.reference).where(
                JournalTransactionRow.kind == PostingKind.INVOICE_VOID.value,
                tuple_(JournalTransactionRow.merchant_id, JournalTransactionRow.reference).in_(
                    invoices
                ),
            )
        )
        return {(merchant_id, reference) for merchant_id, reference in rows}

    async def balance(self, merchant_id: str, account: str) -> Decimal:
        """Debits minus credits of the account."""
        total = await self._session.scalar(
            select(
                func.coalesce(func.sum(JournalEntryRow.debit - JournalEntryRow.credit), 0)
            ).where(JournalEntryRow.merchant_id == merchant_id, JournalEntryRow.account == account)
        )
        return Decimal(total or 0).quantize(Decimal("0.000001"))

    async def balances(self, merchant_id: str, prefix: str) -> dict[str, Decimal]:
        rows = await self._session.execute(
            select(
                JournalEntryRow.account, func.sum(JournalEntryRow.debit - JournalEntryRow.credit)
            )
            .where(
                JournalEntryRow.merchant_id == merchant_id,
                JournalEntryRow.account.startswith(prefix),
            )
            .group_by(JournalEntryRow.account)
        )
        return {account: Decimal(total) for account, total in rows}

    async def posted(self, merchant_id: str) -> dict[tuple[PostingKind, str], Decimal]:
        """(kind, reference) -> total debits of each posted transaction."""
        rows = await self._session.execute(
            select(
                JournalTransactionRow.kind,
                JournalTransactionRow.reference,
                func.sum(JournalEntryRow.debit),
            )
            .join(JournalEntryRow, JournalEntryRow.transaction_id == JournalTransactionRow.id)
            .where(JournalTransactionRow.merchant_id == merchant_id)
            .group_by(JournalTransactionRow.kind, JournalTransactionRow.reference)
        )
        return {(PostingKind(kind), reference): Decimal(total) for kind, reference, total in rows}

    async def unbalanced(self, merchant_id: str) -> list[tuple[str, Decimal]]:
        rows = await self._session.execute(
            select(
                JournalEntryRow.transaction_id,
                func.sum(JournalEntryRow.debit - JournalEntryRow.credit),
            )
            .where(JournalEntryRow.merchant_id == merchant_id)
            .group_by(JournalEntryRow.transaction_id)
            .having(func.sum(JournalEntryRow.debit - JournalEntryRow.credit) != 0)
        )
        return [(transaction_id, Decimal(difference)) for transaction_id, difference in rows]

    async def entries(
        self,
        merchant_id: str,
        account: str | None,
        after: tuple[datetime, str] | None,
        transactions: int,
    ) -> tuple[list[PostedEntry], tuple[datetime, str] | None]:
        """The entries of up to `transactions` journal transactions (touching `account`, if
        given), newest first, and the position of the last one when more follow."""
        query = select(JournalTransactionRow).where(
            JournalTransactionRow.merchant_id == merchant_id
        )
        if account:
            query = query.where(
                JournalTransactionRow.id.in_(
                    select(JournalEntryRow.transaction_id).where(
                        JournalEntryRow.merchant_id == merchant_id,
                        JournalEntryRow.account == account,
                    )
                )
            )
        if after:
            query = query.where(
                tuple_(JournalTransactionRow.create_time, JournalTransactionRow.id) < tuple_(*after)
            )
        found = list(
            await self._session.scalars(
                query.order_by(
                    JournalTransactionRow.create_time.desc(), JournalTransactionRow.id.desc()
                ).limit(transactions + 1)
            )
        )
        page = found[:transactions]
        by_id = {transaction.id: transaction for transaction in page}
        entry_query = select(JournalEntryRow).where(JournalEntryRow.transaction_id.in_(by_id))
        if account:
            entry_query = entry_query.where(JournalEntryRow.account == account)
        rows = await self._session.scalars(entry_query)
        order = {transaction.id: index for index, transaction in enumerate(page)}
        entries = [
            PostedEntry(
                transaction_id=row.transaction_id,
                kind=PostingKind(by_id[row.transaction_id].kind),
                reference=by_id[row.transaction_id].reference,
                account=row.account,
                debit=row.debit,
                credit=row.credit,
                currency=row.currency,
                create_time=by_id[row.transaction_id].create_time,
                line_number=row.line_number,
            )
            for row in rows
        ]
        entries.sort(key=lambda e: (order[e.transaction_id], e.line_number))
        more = len(found) > transactions
        return entries, (page[-1].create_time, page[-1].id) if more else None
