"""Invoices and their lines."""

from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from invoicing_svc.adapters.tables import InvoiceLineRow, InvoiceRow, SubscriptionRow
from invoicing_svc.domain.model import Invoice, InvoiceLine, InvoiceStatus, SubscriptionStatus
from service_kit.pagination import in_creation_order


def _invoice(row: InvoiceRow, lines: list[InvoiceLineRow]) -> Invoice:
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
    )


class InvoiceStore:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, invoice: Invoice) -> bool:
        """Stores the invoice and its lines; False when the subscription already has an invoice
        for that period (the database enforces one per period)."""
        inserted = await self._session.execute(
            insert(InvoiceRow)
            .values(
                id=invoice.id,
                merchant_id=invoice.merchant_id,
                subscription_id=invoice.subscription_id,
                service_id=invoice.service_id,
                user_id=invoice.user_id,
                plan_id=invoice.plan_id,
                status=invoice.status.value,
                period_start=invoice.period_start,
                period_end=invoice.period_end,
                currency=invoice.currency,
                amount=invoice.amount,
                create_time=invoice.create_time,
                finalize_time=invoice.finalize_time,
                due_time=invoice.due_time,
            )
            .on_conflict_do_nothing(constraint="invoices_one_per_period")
            .returning(InvoiceRow.id)
        )
        if inserted.first() is None:
            return False
        for number, line in enumerate(invoice.lines, start=1):
            self._session.add(
                InvoiceLineRow(
                    invoice_id=invoice.id,
                    line_number=number,
                    merchant_id=invoice.merchant_id,
                    description=line.description,
                    event_key=line.event_key,
                    quantity=line.quantity,
                    amount=line.amount,
                )
            )
        await self._session.flush()
        return True

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
        return _invoice(row, list(lines))

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
        rows = list(
            await self._session.scalars(
                in_creation_order(query, InvoiceRow.create_time, InvoiceRow.id, after, limit)
            )
        )
        lines = await self._session.scalars(
            select(InvoiceLineRow).where(InvoiceLineRow.invoice_id.in_([row.id for row in rows]))
        )
        by_invoice: dict[str, list[InvoiceLineRow]] = {}
        for line in lines:
            by_invoice.setdefault(line.invoice_id, []).append(line)
        return [_invoice(row, by_invoice.get(row.id, [])) for row in rows]

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

    async def has_overdue(self, subscription_id: str, now: datetime) -> bool:
        found = await self._session.scalar(
            select(InvoiceRow.id)
            .where(
                InvoiceRow.subscription_id == subscription_id,
                InvoiceRow.status == InvoiceStatus.OPEN.value,
                InvoiceRow.due_time <= now,
            )
            .limit(1)
        )
        return found is not None
