"""Webhook endpoints, deliveries (one per event and endpoint) and their attempts."""

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import Text, cast, func, or_, select, text, tuple_, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from invoicing_svc.adapters.secret_box import SecretBox
from invoicing_svc.adapters.tables import WebhookAttemptRow, WebhookDeliveryRow, WebhookEndpointRow
from invoicing_svc.domain.webhooks import (
    DeliveryStatus,
    DueDelivery,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from service_kit.ids import new_id
from service_kit.pagination import in_creation_order
from service_kit.sql_filters import id_in

# Pending deliveries, one array per column; an event already delivered to an endpoint adds none.
_INSERT_DELIVERIES = text("""
    INSERT INTO invoicing.webhook_deliveries (
        id, merchant_id, endpoint_id, event_id, event_type, body, status, next_attempt_time,
        create_time)
    SELECT t.id, :merchant_id, t.endpoint_id, t.event_id, t.event_type, t.body, 'PENDING',
        :now, :now
    FROM unnest(
        CAST(:ids AS text[]), CAST(:endpoint_ids AS text[]), CAST(:event_ids AS text[]),
        CAST(:event_types AS text[]), CAST(:bodies AS text[]))
        AS t(id, endpoint_id, event_id, event_type, body)
    ON CONFLICT ON CONSTRAINT webhook_deliveries_once DO NOTHING
    RETURNING id
""")

# Due deliveries in fair turns: every enabled endpoint's oldest first (at most :per_endpoint of
# its earliest, counting those another worker is sending), then each merchant in turn, so no
# endpoint's or merchant's backlog stands before another's. One index probe per endpoint.
_FAIR_DUE = text("""
    WITH due AS (
        SELECT d.id, d.merchant_id, d.next_attempt_time, d.turn
        FROM invoicing.webhook_endpoints e
        CROSS JOIN LATERAL (
            SELECT id, merchant_id, next_attempt_time, lease_until,
                row_number() OVER (ORDER BY next_attempt_time, id) AS turn
            FROM invoicing.webhook_deliveries
            WHERE endpoint_id = e.id AND status = 'PENDING' AND next_attempt_time <= :now
            ORDER BY next_attempt_time, id
            LIMIT :per_endpoint
        ) d
        WHERE e.disable_time IS NULL AND (d.lease_until IS NULL OR d.lease_until <= :now)
    )
    SELECT id FROM due
    ORDER BY row_number() OVER (PARTITION BY merchant_id ORDER BY turn, next_attempt_time, id),
        next_attempt_time, id
    LIMIT :limit
""")


class WebhookStore:
    """Signing secrets are sealed on the way in and opened on the way out."""

    def __init__(self, session: AsyncSession, secrets: SecretBox) -> None:
        self._session = session
        self._secrets = secrets

    def _endpoint(self, row: WebhookEndpointRow) -> WebhookEndpoint:
        return WebhookEndpoint(
            row.id,
            row.merchant_id,
            row.url,
            tuple(row.event_types),
            self._secrets.open(row.sealed_secret),
            row.create_time,
            row.failing_since,
            row.disable_time,
            row.description,
            self._secrets.open(row.previous_sealed_secret) if row.previous_sealed_secret else "",
            row.previous_secret_expire_time,
        )

    async def _update_endpoint(
        self, endpoint_id: str, values: dict[str, object]
    ) -> WebhookEndpointRow:
        changed = await self._session.scalar(
            update(WebhookEndpointRow)
            .where(WebhookEndpointRow.id == endpoint_id)
            .values(**values)
            .returning(WebhookEndpointRow)
            .execution_options(populate_existing=True)
        )
        assert changed is not None
        return changed

    async def _fail_pending(self, endpoint_id: str, *conditions: ColumnElement[bool]) -> None:
        """A disabled endpoint's pending deliveries fail: none of them will be sent."""
        await self._session.execute(
            update(WebhookDeliveryRow)
            .where(
                WebhookDeliveryRow.endpoint_id == endpoint_id,
                WebhookDeliveryRow.status == DeliveryStatus.PENDING.value,
                *conditions,
            )
            .values(
                status=DeliveryStatus.FAILED.value,
                last_error="webhook endpoint disabled",
                lease_until=None,
            )
        )

    async def add_endpoint(self, endpoint: WebhookEndpoint) -> None:
        self._session.add(
            WebhookEndpointRow(
                id=endpoint.id,
                merchant_id=endpoint.merchant_id,
                url=endpoint.url,
                event_types=list(endpoint.event_types),
                sealed_secret=self._secrets.seal(endpoint.secret),
                create_time=endpoint.create_time,
                description=endpoint.description,
            )
        )
        await self._session.flush()

    async def endpoint(
        self, merchant_id: str, endpoint_id: str, *, lock: bool = False
    ) -> WebhookEndpoint | None:
        """The merchant's endpoint, unless deleted; `lock` takes its row lock first (the order
        every change of an endpoint and its deliveries follows, see lock_endpoint)."""
        row = await self._session.get(WebhookEndpointRow, endpoint_id, with_for_update=lock)
        if row is None or row.merchant_id != merchant_id or row.delete_time is not None:
            return None
        return self._endpoint(row)

    async def change_endpoint(
        self,
        endpoint_id: str,
        *,
        url: str | None = None,
        event_types: tuple[str, ...] | None = None,
        description: str | None = None,
        secret: str | None = None,
        previous_secret: str | None = None,
        previous_secret_expire_time: datetime | None = None,
    ) -> WebhookEndpoint:
        """Sets the values given (None leaves a field as it is) of an endpoint found and locked
        by `endpoint`."""
        values: dict[str, object] = {}
        if url is not None:
            values["url"] = url
        if event_types is not None:
            values["event_types"] = list(event_types)
        if description is not None:
            values["description"] = description
        if secret is not None:
            values["sealed_secret"] = self._secrets.seal(secret)
        if previous_secret is not None:
            values["previous_sealed_secret"] = self._secrets.seal(previous_secret)
            values["previous_secret_expire_time"] = previous_secret_expire_time
        changed = await self._update_endpoint(endpoint_id, values)
        return self._endpoint(changed)

    async def disable_endpoint(
        self, endpoint_id: str, now: datetime, *, delete: bool = False
    ) -> WebhookEndpoint:
        """Disables (or deletes) a locked endpoint; its pending deliveries fail."""
        values: dict[str, object] = {
            "disable_time": func.coalesce(WebhookEndpointRow.disable_time, now)
        }
        if delete:
            values["delete_time"] = now
        changed = await self._update_endpoint(endpoint_id, values)
        await self._fail_pending(endpoint_id)
        return self._endpoint(changed)

    async def enable_endpoint(self, endpoint_id: str) -> WebhookEndpoint:
        """Enables a locked endpoint; its failure clock starts again."""
        return self._endpoint(
            await self._update_endpoint(endpoint_id, {"disable_time": None, "failing_since": None})
        )

    async def add_delivery(
        self, merchant_id: str, endpoint_id: str, event: WebhookEvent, now: datetime
    ) -> str:
        """One pending delivery of an event to one endpoint, due now; returns its id."""
        delivery_id = new_id("whd")
        await self._session.execute(
            _INSERT_DELIVERIES,
            {
                "ids": [delivery_id],
                "merchant_id": merchant_id,
                "endpoint_ids": [endpoint_id],
                "event_ids": [event.id],
                "event_types": [event.type],
                "bodies": [event.body],
                "now": now,
            },
        )
        return delivery_id

    async def make_due(self, endpoint_id: str, delivery_id: str, now: datetime) -> bool:
        """Makes a delivery of a locked endpoint PENDING and due now; False while a worker holds
        its lease (its attempt is in flight)."""
        changed = await self._session.scalar(
            update(WebhookDeliveryRow)
            .where(
                WebhookDeliveryRow.id == delivery_id,
                WebhookDeliveryRow.endpoint_id == endpoint_id,
                or_(
                    WebhookDeliveryRow.lease_until.is_(None), WebhookDeliveryRow.lease_until <= now
                ),
            )
            .values(status=DeliveryStatus.PENDING.value, next_attempt_time=now, lease_until=None)
            .returning(WebhookDeliveryRow.id)
        )
        return changed is not None

    async def delivery(self, merchant_id: str, delivery_id: str) -> WebhookDelivery | None:
        rows = list(
            await self._session.scalars(
                select(WebhookDeliveryRow).where(
                    WebhookDeliveryRow.merchant_id == merchant_id,
                    WebhookDeliveryRow.id == delivery_id,
                )
            )
        )
        found = await self._with_attempts(rows)
        return found[0] if found else None

    async def endpoints(
        self, merchant_id: str, after: tuple[datetime, str] | None, limit: int
    ) -> list[WebhookEndpoint]:
        query = select(WebhookEndpointRow).where(
            WebhookEndpointRow.merchant_id == merchant_id, WebhookEndpointRow.delete_time.is_(None)
        )
        rows = await self._session.scalars(
            in_creation_order(
                query, WebhookEndpointRow.create_time, WebhookEndpointRow.id, after, limit
            )
        )
        return [self._endpoint(row) for row in rows]

    async def fan_out(self, merchant_id: str, events: Sequence[WebhookEvent], now: datetime) -> int:
        """One pending delivery per event and enabled endpoint subscribed to its type, in one
        statement; a repeat of an event adds none (unique per endpoint and event). Returns how
        many were added."""
        types = sorted({event.type for event in events})
        endpoints = await self._session.scalars(
            select(WebhookEndpointRow).where(
                WebhookEndpointRow.merchant_id == merchant_id,
                WebhookEndpointRow.disable_time.is_(None),
                WebhookEndpointRow.event_types.overlap(cast([*types, "*"], ARRAY(Text))),
            )
        )
        subscribed = [(endpoint.id, set(endpoint.event_types)) for endpoint in endpoints]
        rows = [
            (event, endpoint_id)
            for event in events
            for endpoint_id, event_types in subscribed
            if event.type in event_types or "*" in event_types
        ]
        if not rows:
            return 0
        inserted = await self._session.execute(
            _INSERT_DELIVERIES,
            {
                "ids": [new_id("whd") for _ in rows],
                "merchant_id": merchant_id,
                "endpoint_ids": [endpoint_id for _, endpoint_id in rows],
                "event_ids": [event.id for event, _ in rows],
                "event_types": [event.type for event, _ in rows],
                "bodies": [event.body for event, _ in rows],
                "now": now,
            },
        )
        return len(inserted.all())

    async def claim_due(
        self, now: datetime, lease: timedelta, limit: int, per_endpoint: int
    ) -> list[DueDelivery]:
        """Leases up to `limit` due deliveries to this worker in fair turns (_FAIR_DUE), so no
        other replica sends them meanwhile."""
        fair = await self._session.scalars(
            _FAIR_DUE, {"now": now, "per_endpoint": per_endpoint, "limit": limit}
        )
        # Chosen without locks (window functions refuse them); locked and checked again here.
        rows = await self._session.execute(
            select(
                WebhookDeliveryRow,
                WebhookEndpointRow.url,
                WebhookEndpointRow.sealed_secret,
                WebhookEndpointRow.previous_sealed_secret,
                WebhookEndpointRow.previous_secret_expire_time,
            )
            .join(WebhookEndpointRow, WebhookEndpointRow.id == WebhookDeliveryRow.endpoint_id)
            .where(
                id_in(WebhookDeliveryRow.id, list(fair)),
                WebhookDeliveryRow.status == DeliveryStatus.PENDING.value,
                or_(
                    WebhookDeliveryRow.lease_until.is_(None), WebhookDeliveryRow.lease_until <= now
                ),
            )
            .with_for_update(of=WebhookDeliveryRow, skip_locked=True)
        )
        claimed = [
            DueDelivery(
                id=row.WebhookDeliveryRow.id,
                merchant_id=row.WebhookDeliveryRow.merchant_id,
                endpoint_id=row.WebhookDeliveryRow.endpoint_id,
                event_id=row.WebhookDeliveryRow.event_id,
                body=row.WebhookDeliveryRow.body,
                attempt_count=row.WebhookDeliveryRow.attempt_count,
                create_time=row.WebhookDeliveryRow.create_time,
                url=row.url,
                secret=self._secrets.open(row.sealed_secret),
                previous_secret=self._secrets.open(row.previous_sealed_secret)
                if row.previous_sealed_secret and row.previous_secret_expire_time > now
                else "",
            )
            for row in rows
        ]
        if claimed:
            await self._session.execute(
                update(WebhookDeliveryRow)
                .where(id_in(WebhookDeliveryRow.id, [d.id for d in claimed]))
                .values(lease_until=now + lease)
            )
        return claimed

    async def record_attempt(
        self,
        delivery: DueDelivery,
        *,
        attempt_time: datetime,
        status_code: int,
        error: str,
        duration_ms: int,
        status: DeliveryStatus,
        next_attempt_time: datetime,
    ) -> None:
        number = delivery.attempt_count + 1
        self._session.add(
            WebhookAttemptRow(
                delivery_id=delivery.id,
                attempt_number=number,
                merchant_id=delivery.merchant_id,
                attempt_time=attempt_time,
                status_code=status_code,
                error=error,
                duration_ms=duration_ms,
            )
        )
        await self._session.execute(
            update(WebhookDeliveryRow)
            .where(WebhookDeliveryRow.id == delivery.id)
            .values(
                status=status.value,
                attempt_count=number,
                last_status_code=status_code,
                last_error=error,
                next_attempt_time=next_attempt_time,
                lease_until=None,
            )
        )

    async def lock_endpoint(self, endpoint_id: str) -> None:
        """Takes the endpoint's row lock before any of its deliveries': disabling an endpoint
        fails all its pending deliveries, so every transaction that records an attempt locks in
        the same order (endpoint, then delivery) and none deadlocks with another."""
        await self._session.execute(
            select(WebhookEndpointRow.id)
            .where(WebhookEndpointRow.id == endpoint_id)
            .with_for_update()
        )

    async def endpoint_succeeded(self, endpoint_id: str) -> None:
        """A success stops the endpoint's failure clock."""
        await self._session.execute(
            update(WebhookEndpointRow)
            .where(
                WebhookEndpointRow.id == endpoint_id, WebhookEndpointRow.failing_since.is_not(None)
            )
            .values(failing_since=None)
        )

    async def endpoint_failed(
        self, endpoint_id: str, now: datetime, disable_after: timedelta
    ) -> WebhookEndpoint | None:
        """Starts the endpoint's failure clock, or disables it once it has run for
        `disable_after` and returns it (once). A disabled endpoint's pending deliveries fail,
        those that were in flight when it was disabled too."""
        await self._session.execute(
            update(WebhookEndpointRow)
            .where(WebhookEndpointRow.id == endpoint_id, WebhookEndpointRow.failing_since.is_(None))
            .values(failing_since=now)
        )
        disabled = await self._session.scalar(
            update(WebhookEndpointRow)
            .where(
                WebhookEndpointRow.id == endpoint_id,
                WebhookEndpointRow.disable_time.is_(None),
                WebhookEndpointRow.failing_since <= now - disable_after,
            )
            .values(disable_time=now)
            .returning(WebhookEndpointRow)
        )
        is_disabled = (
            select(WebhookEndpointRow.id)
            .where(
                WebhookEndpointRow.id == endpoint_id, WebhookEndpointRow.disable_time.is_not(None)
            )
            .exists()
        )
        await self._fail_pending(endpoint_id, is_disabled)
        return None if disabled is None else self._endpoint(disabled)

    async def deliveries(
        self, merchant_id: str, endpoint_id: str, after: tuple[datetime, str] | None, limit: int
    ) -> list[WebhookDelivery]:
        query = select(WebhookDeliveryRow).where(
            WebhookDeliveryRow.merchant_id == merchant_id,
            WebhookDeliveryRow.endpoint_id == endpoint_id,
        )
        if after:
            query = query.where(
                tuple_(WebhookDeliveryRow.create_time, WebhookDeliveryRow.id) < tuple_(*after)
            )
        rows = list(
            await self._session.scalars(
                query.order_by(
                    WebhookDeliveryRow.create_time.desc(), WebhookDeliveryRow.id.desc()
                ).limit(limit)
            )
        )
        return await self._with_attempts(rows)

    async def _with_attempts(self, rows: list[WebhookDeliveryRow]) -> list[WebhookDelivery]:
        attempts: dict[str, list[WebhookAttempt]] = {}
        for attempt in await self._session.scalars(
            select(WebhookAttemptRow)
            .where(WebhookAttemptRow.delivery_id.in_([row.id for row in rows]))
            .order_by(WebhookAttemptRow.attempt_number)
        ):
            attempts.setdefault(attempt.delivery_id, []).append(
                WebhookAttempt(
                    attempt.attempt_number,
                    attempt.attempt_time,
                    attempt.status_code,
                    attempt.error,
                    attempt.duration_ms,
                )
            )
        return [
            WebhookDelivery(
                id=row.id,
                endpoint_id=row.endpoint_id,
                event_id=row.event_id,
                event_type=row.event_type,
                status=DeliveryStatus(row.status),
                attempt_count=row.attempt_count,
                last_status_code=row.last_status_code,
                last_error=row.last_error,
                next_attempt_time=row.next_attempt_time,
                create_time=row.create_time,
                attempts=tuple(attempts.get(row.id, ())),
            )
            for row in rows
        ]
