"""Invoices and their lines."""

from collections.abc import Collection, Sequence
from datetime import datetime
from decimal import Decimal
from typing import cast

from sqlalchemy import Table, bindparam, exists, func, insert, or_, select, text, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from invoicing_svc.adapters.tables import (
    InvoiceLineRow,
    InvoiceRow,
    PaymentAttemptRow,
    SubscriptionRow,
)
from invoicing_svc.domain.model import (
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    PaymentAttempt,
    PaymentFailureReason,
    SubscriptionStatus,
)
from service_kit.ids import new_id
from service_kit.pagination import in_creation_order
from service_kit.sql_filters import id_in

# New invoices and their lines, one array per column; a period invoiced already keeps its invoice.
_INSERT_INVOICES = text("""
    INSERT INTO invoicing.invoices (
        id, merchant_id, subscription_id, service_id, user_id, plan_id, status, period_start,
        period_end, currency, amount, create_time, finalize_time, due_time, paid_time,
        hold_reason, credits_applied, top_up, interim)
    SELECT * FROM unnest(
        CAST(:ids AS text[]), CAST(:merchant_ids AS text[]), CAST(:subscription_ids AS text[]),
        CAST(:service_ids AS text[]), CAST(:user_ids AS text[]), CAST(:plan_ids AS text[]),
        CAST(:statuses AS text[]), CAST(:period_starts AS timestamptz[]),
        CAST(:period_ends AS timestamptz[]), CAST(:currencies AS text[]),
        CAST(:amounts AS numeric[]), CAST(:create_times AS timestamptz[]),
        CAST(:finalize_times AS timestamptz[]), CAST(:due_times AS timestamptz[]),
        CAST(:paid_times AS timestamptz[]), CAST(:hold_reasons AS text[]),
        CAST(:credits_applied AS numeric[]), CAST(:top_ups AS boolean[]),
        CAST(:interims AS boolean[]))
    ON CONFLICT (subscription_id, period_start) WHERE NOT interim DO NOTHING
    RETURNING id
""")
_INSERT_LINES = text("""
    INSERT INTO invoicing.invoice_lines (
        invoice_id, line_number, merchant_id, description, event_key, quantity, amount)
    SELECT * FROM unnest(
        CAST(:invoice_ids AS text[]), CAST(:line_numbers AS int[]),
        CAST(:merchant_ids AS text[]), CAST(:descriptions AS text[]),
        CAST(:event_keys AS text[]), CAST(:quantities AS numeric[]), CAST(:amounts AS numeric[]))
""")


def _attempt(row: PaymentAttemptRow) -> PaymentAttempt:
    return PaymentAttempt(
        number=row.number,
        attempt_time=row.attempt_time,
        reason=PaymentFailureReason(row.reason),
        detail=row.detail,
        next_attempt_time=row.next_attempt_time,
    )


def _invoice(
    row: InvoiceRow, lines: list[InvoiceLineRow], attempts: list[PaymentAttemptRow]
) -> Invoice:
    return Invoice(
        id=row.id,
        merchant_id=row.merchant_id,
        subscription_id=row.subscription_id,
        service_id=row.service_id,
        user_id=row.user_id,
        plan_id=row.plan_id,
        status=InvoiceStatus(row.status),
        period_start=row.period_start,
        period_end=row.period_end,
        amount=row.amount,
        create_time=row.create_time,
        lines=tuple(
            InvoiceLine(line.description, line.event_key, line.quantity, line.amount)
            for line in sorted(lines, key=lambda line: line.line_number)
        ),
        settlement_id=row.settlement_id or "",
        finalize_time=row.finalize_time,
        due_time=row.due_time,
        paid_time=row.paid_time,
        currency=row.currency,
        hold_reason=row.hold_reason,
        credits_applied=row.credits_applied,
        top_up=row.top_up,
        interim=row.interim,
        payment_attempts=tuple(_attempt(a) for a in sorted(attempts, key=lambda a: a.number)),
    )


class InvoiceStore:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, invoice: Invoice) -> bool:
        """Stores the invoice and its lines; False when the subscription already has an invoice
        for that period (the database enforces one per period)."""
        return bool(await self.add_many([invoice]))

    async def add_many(self, invoices: Sequence[Invoice]) -> set[str]:
        """Stores the invoices and their lines in two statements; returns the ids stored, which
        leave out every invoice of a period that already has one."""
        rows = await self._session.execute(
            _INSERT_INVOICES,
            {
                "ids": [i.id for i in invoices],
                "merchant_ids": [i.merchant_id for i in invoices],
                "subscription_ids": [i.subscription_id for i in invoices],
                "service_ids": [i.service_id for i in invoices],
                "user_ids": [i.user_id for i in invoices],
                "plan_ids": [i.plan_id for i in invoices],
                "statuses": [i.status.value for i in invoices],
                "period_starts": [i.period_start for i in invoices],
                "period_ends": [i.period_end for i in invoices],
                "currencies": [i.currency for i in invoices],
                "amounts": [i.amount for i in invoices],
                "create_times": [i.create_time for i in invoices],
                "finalize_times": [i.finalize_time for i in invoices],
                "due_times": [i.due_time for i in invoices],
                "paid_times": [i.paid_time for i in invoices],
                "hold_reasons": [i.hold_reason for i in invoices],
                "credits_applied": [i.credits_applied for i in invoices],
                "top_ups": [i.top_up for i in invoices],
                "interims": [i.interim for i in invoices],
            },
        )
        created = {row.id for row in rows}
        lines = [
            (invoice, number, line)
            for invoice in invoices
            if invoice.id in created
            for number, line in enumerate(invoice.lines, start=1)
        ]
        if lines:
            await self._session.execute(
                _INSERT_LINES,
                {
                    "invoice_ids": [invoice.id for invoice, _, _ in lines],
                    "line_numbers": [number for _, number, _ in lines],
                    "merchant_ids": [invoice.merchant_id for invoice, _, _ in lines],
                    "descriptions": [line.description for _, _, line in lines],
                    "event_keys": [line.event_key for _, _, line in lines],
                    "quantities": [line.quantity for _, _, line in lines],
                    "amounts": [line.amount for _, _, line in lines],
                },
            )
        return created

    async def update(self, invoice: Invoice) -> None:
        await self._session.execute(
            update(InvoiceRow)
            .where(InvoiceRow.id == invoice.id)
            .values(
                status=invoice.status.value,
                settlement_id=invoice.settlement_id or None,
                finalize_time=invoice.finalize_time,
                due_time=invoice.due_time,
                paid_time=invoice.paid_time,
            )
        )

    async def add_credits(self, invoices: Sequence[Invoice]) -> None:
        """Stores what credits paid of stored invoices (`credits.with_credits`): the amount
        left, the status and paid time it makes, and the last line, the "Credits applied" one;
        two statements whatever the number."""
        if not invoices:
            return
        table = cast(Table, InvoiceRow.__table__)
        await self._session.execute(
            update(table)
            .where(table.c.id == bindparam("invoice_id"))
            .values(
                amount=bindparam("left"),
                credits_applied=bindparam("applied"),
                status=bindparam("new_status"),
                paid_time=bindparam("paid"),
            ),
            [
                {
                    "invoice_id": i.id,
                    "left": i.amount,
                    "applied": i.credits_applied,
                    "new_status": i.status.value,
                    "paid": i.paid_time,
                }
                for i in invoices
            ],
        )
        await self._session.execute(
            insert(InvoiceLineRow),
            [
                {
                    "invoice_id": i.id,
                    "line_number": len(i.lines),
                    "merchant_id": i.merchant_id,
                    "description": i.lines[-1].description,
                    "event_key": i.lines[-1].event_key,
                    "quantity": i.lines[-1].quantity,
                    "amount": i.lines[-1].amount,
                }
                for i in invoices
            ],
        )

    async def get(self, merchant_id: str, invoice_id: str, *, lock: bool = False) -> Invoice | None:
        query = select(InvoiceRow).where(
            InvoiceRow.id == invoice_id, InvoiceRow.merchant_id == merchant_id
        )
        if lock:
            query = query.with_for_update()
        row = await self._session.scalar(query.execution_options(populate_existing=True))
        if row is None:
            return None
        lines = await self._session.scalars(
            select(InvoiceLineRow).where(InvoiceLineRow.invoice_id == invoice_id)
        )
        attempts = await self._session.scalars(
            select(PaymentAttemptRow).where(PaymentAttemptRow.invoice_id == invoice_id)
        )
        return _invoice(row, list(lines), list(attempts))

    async def page(
        self,
        merchant_id: str,
        subscription_id: str | None,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> list[Invoice]:
        query = select(InvoiceRow).where(InvoiceRow.merchant_id == merchant_id)
        if subscription_id:
            query = query.where(InvoiceRow.subscription_id == subscription_id)
        rows = await self._session.scalars(
            in_creation_order(query, InvoiceRow.create_time, InvoiceRow.id, after, limit)
        )
        return await self._with_lines(list(rows))

    async def invoices_by_id(self, merchant_id: str, ids: Collection[str]) -> list[Invoice]:
        """The merchant's invoices among `ids`, as they are now, in id order."""
        rows = await self._session.scalars(
            select(InvoiceRow)
            .where(
                id_in(InvoiceRow.id, ids),
                InvoiceRow.merchant_id == merchant_id,
            )
            .order_by(InvoiceRow.id)
            .execution_options(populate_existing=True)
        )
        return await self._with_lines(list(rows))

    async def _with_lines(self, rows: list[InvoiceRow]) -> list[Invoice]:
        ids = [row.id for row in rows]
        lines = await self._session.scalars(
            select(InvoiceLineRow).where(InvoiceLineRow.invoice_id.in_(ids))
        )
        by_invoice: dict[str, list[InvoiceLineRow]] = {}
        for line in lines:
            by_invoice.setdefault(line.invoice_id, []).append(line)
        attempts = await self._session.scalars(
            select(PaymentAttemptRow).where(PaymentAttemptRow.invoice_id.in_(ids))
        )
        attempts_of: dict[str, list[PaymentAttemptRow]] = {}
        for attempt in attempts:
            attempts_of.setdefault(attempt.invoice_id, []).append(attempt)
        return [
            _invoice(row, by_invoice.get(row.id, []), attempts_of.get(row.id, [])) for row in rows
        ]

    async def add_payment_attempt(self, invoice: Invoice, attempt: PaymentAttempt) -> None:
        """Stores a failed collection attempt of the invoice (once per number: the database
        refuses a second)."""
        await self._session.execute(
            insert(PaymentAttemptRow).values(
                id=new_id("pat"),
                merchant_id=invoice.merchant_id,
                invoice_id=invoice.id,
                number=attempt.number,
                attempt_time=attempt.attempt_time,
                reason=attempt.reason.value,
                detail=attempt.detail,
                next_attempt_time=attempt.next_attempt_time,
            )
        )

    async def subscriptions_newly_overdue(self, now: datetime) -> list[tuple[str, str]]:
        """(merchant, subscription) of ACTIVE subscriptions with an OPEN invoice past due."""
        rows = await self._session.execute(
            select(SubscriptionRow.merchant_id, SubscriptionRow.id)
            .join(InvoiceRow, InvoiceRow.subscription_id == SubscriptionRow.id)
            .where(
                InvoiceRow.status == InvoiceStatus.OPEN.value,
                InvoiceRow.due_time
                <= func.greatest(now, func.coalesce(SubscriptionRow.test_clock_time, now)),
                SubscriptionRow.status == SubscriptionStatus.ACTIVE.value,
            )
            .distinct()
        )
        return [(row.merchant_id, row.id) for row in rows]

    async def interim_billed(
        self, periods: Collection[tuple[str, datetime]]
    ) -> dict[tuple[str, datetime], Decimal]:
        """What the interim invoices (not voided) of each (subscription, period start) billed;
        absent when none did."""
        if not periods:
            return {}
        rows = await self._session.execute(
            select(InvoiceRow.subscription_id, InvoiceRow.period_start, func.sum(InvoiceRow.amount))
            .where(
                InvoiceRow.interim,
                InvoiceRow.status != InvoiceStatus.VOID.value,
                tuple_(InvoiceRow.subscription_id, InvoiceRow.period_start).in_(list(periods)),
            )
            .group_by(InvoiceRow.subscription_id, InvoiceRow.period_start)
        )
        return {(row[0], row[1]): row[2] for row in rows if row[1] is not None}

    async def has_unpaid_top_up(self, merchant_id: str, user_id: str) -> bool:
        """Whether a top-up of the subscriber is DRAFT, OPEN or UNCOLLECTIBLE."""
        found = await self._session.scalar(
            select(
                exists().where(
                    InvoiceRow.merchant_id == merchant_id,
                    InvoiceRow.user_id == user_id,
                    InvoiceRow.top_up,
                    InvoiceRow.status.in_(
                        [
                            s.value
                            for s in (
                                InvoiceStatus.DRAFT,
                                InvoiceStatus.OPEN,
                                InvoiceStatus.UNCOLLECTIBLE,
                            )
                        ]
                    ),
                )
            )
        )
        return bool(found)

    async def has_overdue(self, subscription_id: str, now: datetime) -> bool:
        """Whether an OPEN invoice of the subscription is past due, or failed a collection
        attempt (either keeps the subscription PAST_DUE)."""
        failed = exists().where(PaymentAttemptRow.invoice_id == InvoiceRow.id)
        found = await self._session.scalar(
            select(InvoiceRow.id)
            .where(
                InvoiceRow.subscription_id == subscription_id,
                InvoiceRow.status == InvoiceStatus.OPEN.value,
                or_(InvoiceRow.due_time <= now, failed),
            )
            .limit(1)
        )
        return found is not None
