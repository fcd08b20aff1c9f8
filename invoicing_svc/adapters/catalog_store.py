"""Services, plans and subscribers."""

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from invoicing_svc.adapters.tables import PlanRow, ServiceRow, SubscriberRow
from invoicing_svc.domain.model import BillingInterval, Plan, PricingType, Service
from invoicing_svc.domain.pricing import PricingModel, Tier, UsageCharge
from service_kit.pagination import in_creation_order


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def charges_to_json(charges: tuple[UsageCharge, ...]) -> list[dict[str, Any]]:
    return [
        {
            "event_key": c.event_key,
            "model": c.model.value,
            "unit_price": str(c.unit_price),
            "package_size": str(c.package_size),
            "included_quantity": str(c.included_quantity),
            "tiers": [
                {
                    "up_to": _text(t.up_to),
                    "unit_price": str(t.unit_price),
                    "flat_fee": str(t.flat_fee),
                }
                for t in c.tiers
            ],
        }
        for c in charges
    ]


def charges_from_json(stored: list[dict[str, Any]]) -> tuple[UsageCharge, ...]:
    return tuple(
        UsageCharge(
            event_key=c["event_key"],
            model=PricingModel(c["model"]),
            unit_price=Decimal(c["unit_price"]),
            package_size=Decimal(c["package_size"]),
            included_quantity=Decimal(c["included_quantity"]),
            tiers=tuple(
                Tier(
                    up_to=None if t["up_to"] is None else Decimal(t["up_to"]),
                    unit_price=Decimal(t["unit_price"]),
                    flat_fee=Decimal(t["flat_fee"]),
                )
                for t in c["tiers"]
            ),
        )
        for c in stored
    )


def _service(row: ServiceRow) -> Service:
    return Service(row.id, row.merchant_id, row.name, row.description, row.create_time)


def _plan(row: PlanRow) -> Plan:
    return Plan(
        id=row.id,
        merchant_id=row.merchant_id,
        service_id=row.service_id,
        name=row.name,
        pricing_type=PricingType(row.pricing_type),
        billing_interval=BillingInterval(row.billing_interval),
        interval_count=row.interval_count,
        amount=row.amount,
        charges=charges_from_json(row.charges),
        create_time=row.create_time,
        currency=row.currency,
        usage_ceiling=row.usage_ceiling,
    )


class CatalogStore:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add_service(self, service: Service) -> None:
        self._session.add(
            ServiceRow(
                id=service.id,
                merchant_id=service.merchant_id,
                name=service.name,
                description=service.description,
                create_time=service.create_time,
            )
        )
        await self._session.flush()

    async def service(self, merchant_id: str, service_id: str) -> Service | None:
        row = await self._session.get(ServiceRow, service_id)
        return _service(row) if row and row.merchant_id == merchant_id else None

    async def services(
        self, merchant_id: str, after: tuple[datetime, str] | None, limit: int
    ) -> list[Service]:
        query = select(ServiceRow).where(ServiceRow.merchant_id == merchant_id)
        rows = await self._session.scalars(
            in_creation_order(query, ServiceRow.create_time, ServiceRow.id, after, limit)
        )
        return [_service(row) for row in rows]

    async def add_plan(self, plan: Plan) -> None:
        self._session.add(
            PlanRow(
                id=plan.id,
                merchant_id=plan.merchant_id,
                service_id=plan.service_id,
                name=plan.name,
                pricing_type=plan.pricing_type.value,
                billing_interval=plan.billing_interval.value,
                interval_count=plan.interval_count,
                amount=plan.amount,
                currency=plan.currency,
                charges=charges_to_json(plan.charges),
                create_time=plan.create_time,
                usage_ceiling=plan.usage_ceiling,
            )
        )
        await self._session.flush()

    async def plan(self, merchant_id: str, plan_id: str) -> Plan | None:
        row = await self._session.get(PlanRow, plan_id)
        return _plan(row) if row and row.merchant_id == merchant_id else None

    async def set_usage_ceiling(
        self, merchant_id: str, plan_id: str, ceiling: Decimal
    ) -> Plan | None:
        """The plan with its new ceiling; None when it is not the merchant's."""
        row = await self._session.get(PlanRow, plan_id, with_for_update=True)
        if row is None or row.merchant_id != merchant_id:
            return None
        row.usage_ceiling = ceiling
        await self._session.flush()
        return _plan(row)

    async def plans(
        self,
        merchant_id: str,
        service_id: str | None,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> list[Plan]:
        query = select(PlanRow).where(PlanRow.merchant_id == merchant_id)
        if service_id:
            query = query.where(PlanRow.service_id == service_id)
        rows = await self._session.scalars(
            in_creation_order(query, PlanRow.create_time, PlanRow.id, after, limit)
        )
        return [_plan(row) for row in rows]

    async def ensure_subscriber(
        self, merchant_id: str, user_id: str, email: str, name: str, now: datetime
    ) -> None:
        await self._session.execute(
            insert(SubscriberRow)
            .values(merchant_id=merchant_id, id=user_id, email=email, name=name, create_time=now)
            .on_conflict_do_nothing()
        )
