"""Meters: the aggregation rule of each event key of a service."""

from datetime import datetime

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from metering_svc.adapters.tables import MeterRow
from metering_svc.domain.model import Aggregation, Meter
from service_kit.pagination import in_creation_order

# A UNIQUE_COUNT meter created after events arrived counts those events too.
_BACKFILL_UNIQUE_VALUES = text("""
    INSERT INTO metering.usage_unique_values AS u (
        subscription_id, event_key, property, bucket_start, value, merchant_id, event_count)
    SELECT e.subscription_id, e.event_key, :property, date_trunc('hour', e.occurred_at, 'UTC'),
        e.properties ->> :property, :merchant_id, count(*)
    FROM metering.usage_events e
    WHERE e.merchant_id = :merchant_id AND e.service_id = :service_id AND e.event_key = :event_key
        AND e.properties ? :property
        AND NOT EXISTS (
            SELECT 1 FROM metering.usage_event_cancellations c
            WHERE c.subscription_id = e.subscription_id AND c.event_id = e.id)
    GROUP BY 1, 2, 3, 4, 5
    ON CONFLICT (subscription_id, event_key, property, bucket_start, value)
        DO UPDATE SET event_count = excluded.event_count
""")


def _meter(row: MeterRow) -> Meter:
    return Meter(
        id=row.id,
        merchant_id=row.merchant_id,
        service_id=row.service_id,
        event_key=row.event_key,
        aggregation=Aggregation(row.aggregation),
        unique_property=row.unique_property,
        display_name=row.display_name,
        create_time=row.create_time,
    )


class MeterRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, meter: Meter) -> bool:
        """Stores the meter; False when the service already has a meter for the event key."""
        inserted = await self._session.execute(
            insert(MeterRow)
            .values(
                id=meter.id,
                merchant_id=meter.merchant_id,
                service_id=meter.service_id,
                event_key=meter.event_key,
                aggregation=meter.aggregation.value,
                unique_property=meter.unique_property,
                display_name=meter.display_name,
                create_time=meter.create_time,
            )
            .on_conflict_do_nothing()
            .returning(MeterRow.id)
        )
        if inserted.first() is None:
            return False
        if meter.aggregation is Aggregation.UNIQUE_COUNT:
            await self._session.execute(
                _BACKFILL_UNIQUE_VALUES,
                {
                    "merchant_id": meter.merchant_id,
                    "service_id": meter.service_id,
                    "event_key": meter.event_key,
                    "property": meter.unique_property,
                },
            )
        return True

    async def get(self, merchant_id: str, meter_id: str) -> Meter | None:
        row = await self._session.get(MeterRow, meter_id)
        return _meter(row) if row and row.merchant_id == merchant_id else None

    async def for_service(self, merchant_id: str, service_id: str) -> list[Meter]:
        rows = await self._session.scalars(
            select(MeterRow)
            .where(MeterRow.merchant_id == merchant_id, MeterRow.service_id == service_id)
            .order_by(MeterRow.event_key)
        )
        return [_meter(row) for row in rows]

    async def list(
        self,
        merchant_id: str,
        service_id: str | None,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> list[Meter]:
        query = select(MeterRow).where(MeterRow.merchant_id == merchant_id)
        if service_id:
            query = query.where(MeterRow.service_id == service_id)
        rows = await self._session.scalars(
            in_creation_order(query, MeterRow.create_time, MeterRow.id, after, limit)
        )
        return [_meter(row) for row in rows]
