"""Customers: the subscribers table, with the wallet of each one's latest checkout payment."""

from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from invoicing_svc.adapters.tables import CheckoutSessionRow, SubscriberRow
from invoicing_svc.domain.customers import Customer
from service_kit.pagination import in_creation_order

_LATEST_WALLET = (
    select(CheckoutSessionRow.payer_wallet_address)
    .where(
        CheckoutSessionRow.merchant_id == SubscriberRow.merchant_id,
        CheckoutSessionRow.user_id == SubscriberRow.id,
        CheckoutSessionRow.payer_wallet_address.is_not(None),
    )
    .order_by(CheckoutSessionRow.create_time.desc())
    .limit(1)
    .correlate(SubscriberRow)
    .scalar_subquery()
)


def _customers(merchant_id: str) -> Select[Any]:
    return select(SubscriberRow, _LATEST_WALLET.label("wallet_address")).where(
        SubscriberRow.merchant_id == merchant_id
    )


def _customer(row: Any) -> Customer:
    subscriber: SubscriberRow = row[0]
    return Customer(
        id=subscriber.id,
        email=subscriber.email,
        name=subscriber.name,
        wallet_address=row.wallet_address or "",
        create_time=subscriber.create_time,
    )


class CustomerStore:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def customer(self, merchant_id: str, customer_id: str) -> Customer | None:
        row = (
            await self._session.execute(
                _customers(merchant_id).where(SubscriberRow.id == customer_id)
            )
        ).first()
        return _customer(row) if row else None

    async def customers(
        self, merchant_id: str, email: str | None, after: tuple[datetime, str] | None, limit: int
    ) -> list[Customer]:
        query = _customers(merchant_id)
        if email:
            query = query.where(func.lower(SubscriberRow.email) == email.lower())
        rows = await self._session.execute(
            in_creation_order(query, SubscriberRow.create_time, SubscriberRow.id, after, limit)
        )
        return [_customer(row) for row in rows]
