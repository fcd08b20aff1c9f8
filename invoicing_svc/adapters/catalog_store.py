"""Services, plans and subscribers."""

from collections.abc import Collection
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from invoicing_svc.adapters.tables import PlanRow, ServiceRow, SubscriberRow
from invoicing_svc.domain.entitlements import Enforcement, UsageLimit
from invoicing_svc.domain.model import BillingInterval, Plan, PricingType, Service, TrialEndAction
from pricing.records import charges_from_json, charges_to_json
from service_kit.pagination import in_creation_order
from service_kit.sql_filters import id_in


def limits_to_json(limits: tuple[UsageLimit, ...]) -> list[dict[str, str]]:
    """Quantities as decimal strings: JSON numbers would be read back as floats."""
    return [
        {"event_key": u.event_key, "quantity": str(u.quantity), "enforcement": u.enforcement.value}
        for u in limits
    ]


def limits_from_json(stored: list[dict[str, Any]]) -> tuple[UsageLimit, ...]:
    return tuple(
        UsageLimit(u["event_key"], Decimal(u["quantity"]), Enforcement(u["enforcement"]))
        for u in stored
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
        features=tuple(row.features),
        limits=limits_from_json(row.limits),
        prepaid_only=row.prepaid_only,
        trial_days=row.trial_days,
        trial_usage_billed=row.trial_usage_billed,
        trial_end_action=TrialEndAction(row.trial_end_action),
        version=row.version,
        version_of=row.version_of,
        superseded_by=row.superseded_by,
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
                features=list(plan.features),
                limits=limits_to_json(plan.limits),
                prepaid_only=plan.prepaid_only,
                trial_days=plan.trial_days,
                trial_usage_billed=plan.trial_usage_billed,
                trial_end_action=plan.trial_end_action.value,
                version=plan.version,
                version_of=plan.version_of,
                superseded_by=plan.superseded_by,
            )
        )
        await self._session.flush()

    async def plan(self, merchant_id: str, plan_id: str, *, lock: bool = False) -> Plan | None:
        """The merchant's plan; `lock` holds it FOR UPDATE, which also holds back a subscription
        being started on it (its foreign key share-locks the plan) until this transaction ends."""
        row = await self._session.get(PlanRow, plan_id, with_for_update=lock)
        return _plan(row) if row and row.merchant_id == merchant_id else None

    async def plans_by_id(self, keys: Collection[tuple[str, str]]) -> dict[str, Plan]:
        """The plans named by (merchant id, plan id), by plan id, in one statement, as they are
        now (not as this session saw them before: a push must not carry older entitlements than
        the subscription versions read before it)."""
        rows = await self._session.scalars(
            select(PlanRow)
            .where(id_in(PlanRow.id, {plan_id for _, plan_id in keys}))
            .execution_options(populate_existing=True)
        )
        wanted = set(keys)
        return {row.id: _plan(row) for row in rows if (row.merchant_id, row.id) in wanted}

    async def update_plan(self, plan: Plan) -> None:
        """Writes the fields of a stored plan that may change: its usage ceiling, features and
        limits."""
        row = await self._session.get(PlanRow, plan.id)
        assert row is not None and row.merchant_id == plan.merchant_id
        row.usage_ceiling = plan.usage_ceiling
        row.features = list(plan.features)
        row.limits = limits_to_json(plan.limits)
        await self._session.flush()

    async def supersede(self, plan: Plan, by: Plan) -> None:
        """Marks `plan` superseded by its next version `by`."""
        row = await self._session.get(PlanRow, plan.id)
        assert row is not None and row.merchant_id == plan.merchant_id
        row.superseded_by = by.id
        await self._session.flush()

    async def latest_version(self, plan: Plan) -> Plan:
        """The latest version of the plan (itself when none is newer)."""
        if not plan.superseded_by:
            return plan
        row = await self._session.scalar(
            select(PlanRow)
            .where(
                PlanRow.merchant_id == plan.merchant_id,
                PlanRow.version_of == plan.family_id,
                PlanRow.superseded_by == "",
            )
            .execution_options(populate_existing=True)
        )
        assert row is not None
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
