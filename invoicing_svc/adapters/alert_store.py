"""Usage alerts, the alerts each subscription is watched by, and the crossings recorded."""

from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy import select, text, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from invoicing_svc.adapters.tables import UsageAlertCrossingRow, UsageAlertRow
from invoicing_svc.domain.alerts import AlertAction, AlertCrossing, AlertKind, UsageAlert
from service_kit.pagination import in_creation_order
from service_kit.sql_filters import id_in

# The ACTIVE subscriptions (after `after`, in id order) watched by an alert that has more to say
# in their current period: the alert's last event (credits.exhausted for BALANCE alerts,
# usage.threshold_crossed for the others) is not recorded for the period yet.
_WATCHED = text("""
    SELECT s.id
    FROM invoicing.subscriptions s
    WHERE s.status = 'ACTIVE' AND s.id > :after AND EXISTS (
        SELECT 1 FROM invoicing.usage_alerts a
        WHERE a.delete_time IS NULL AND a.merchant_id = s.merchant_id
            AND (a.plan_id = s.plan_id OR a.subscription_id = s.id)
            AND NOT EXISTS (
                SELECT 1 FROM invoicing.usage_alert_crossings c
                WHERE c.alert_id = a.id AND c.subscription_id = s.id
                    AND c.period_start = s.current_period_start
                    AND c.event_type = CASE a.kind WHEN 'BALANCE' THEN 'credits.exhausted'
                        ELSE 'usage.threshold_crossed' END))
    ORDER BY s.id
    LIMIT :limit
""")


# Crossings as one array per column: a pass records hundreds in one statement, compiled once.
_RECORD = text("""
    INSERT INTO invoicing.usage_alert_crossings (
        alert_id, subscription_id, period_start, event_type, merchant_id, user_id, threshold,
        value, period_end, invoice_id, cross_time)
    SELECT * FROM unnest(
        CAST(:alert_ids AS text[]), CAST(:subscription_ids AS text[]),
        CAST(:period_starts AS timestamptz[]), CAST(:event_types AS text[]),
        CAST(:merchant_ids AS text[]), CAST(:user_ids AS text[]),
        CAST(:thresholds AS numeric[]), CAST(:values AS numeric[]),
        CAST(:period_ends AS timestamptz[]), CAST(:invoice_ids AS text[]),
        CAST(:cross_times AS timestamptz[]))
    ON CONFLICT DO NOTHING
    RETURNING alert_id, subscription_id, event_type
""")


def _alert(row: UsageAlertRow) -> UsageAlert:
    return UsageAlert(
        id=row.id,
        merchant_id=row.merchant_id,
        plan_id=row.plan_id or "",
        subscription_id=row.subscription_id or "",
        kind=AlertKind(row.kind),
        event_key=row.event_key,
        threshold=row.threshold.normalize(),
        action=AlertAction(row.action),
        create_time=row.create_time,
    )


class AlertStore:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, alert: UsageAlert) -> None:
        self._session.add(
            UsageAlertRow(
                id=alert.id,
                merchant_id=alert.merchant_id,
                plan_id=alert.plan_id or None,
                subscription_id=alert.subscription_id or None,
                kind=alert.kind.value,
                event_key=alert.event_key,
                threshold=alert.threshold,
                action=alert.action.value,
                create_time=alert.create_time,
            )
        )
        await self._session.flush()

    async def get(self, merchant_id: str, alert_id: str) -> UsageAlert | None:
        row = await self._session.get(UsageAlertRow, alert_id)
        if row is None or row.merchant_id != merchant_id or row.delete_time is not None:
            return None
        return _alert(row)

    async def page(
        self,
        merchant_id: str,
        plan_id: str,
        subscription_id: str,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> list[UsageAlert]:
        query = select(UsageAlertRow).where(
            UsageAlertRow.merchant_id == merchant_id, UsageAlertRow.delete_time.is_(None)
        )
        if plan_id:
            query = query.where(UsageAlertRow.plan_id == plan_id)
        if subscription_id:
            query = query.where(UsageAlertRow.subscription_id == subscription_id)
        rows = await self._session.scalars(
            in_creation_order(query, UsageAlertRow.create_time, UsageAlertRow.id, after, limit)
        )
        return [_alert(row) for row in rows]

    async def delete(self, merchant_id: str, alert_id: str, now: datetime) -> bool:
        deleted = await self._session.execute(
            update(UsageAlertRow)
            .where(
                UsageAlertRow.id == alert_id,
                UsageAlertRow.merchant_id == merchant_id,
                UsageAlertRow.delete_time.is_(None),
            )
            .values(delete_time=now)
        )
        return bool(deleted.rowcount)  # type: ignore[attr-defined]

    async def watched(self, after: str, limit: int) -> list[str]:
        """Ids of ACTIVE subscriptions an alert has more to say about in their current period,
        after `after` in id order."""
        rows = await self._session.execute(_WATCHED, {"after": after, "limit": limit})
        return [row.id for row in rows]

    async def watching(
        self, merchant_plans: Collection[tuple[str, str, str]]
    ) -> dict[str, list[UsageAlert]]:
        """The live alerts of each (merchant, plan, subscription), by subscription id, oldest
        first."""
        by_plan: dict[str, list[str]] = {}
        for _, plan_id, subscription_id in merchant_plans:
            by_plan.setdefault(plan_id, []).append(subscription_id)
        merchants = {merchant_id for merchant_id, _, _ in merchant_plans}
        rows = await self._session.scalars(
            select(UsageAlertRow)
            .where(
                UsageAlertRow.delete_time.is_(None),
                id_in(UsageAlertRow.merchant_id, merchants),
                id_in(UsageAlertRow.plan_id, by_plan)
                | id_in(UsageAlertRow.subscription_id, {s for _, _, s in merchant_plans}),
            )
            .order_by(UsageAlertRow.create_time, UsageAlertRow.id)
        )
        found: dict[str, list[UsageAlert]] = {s: [] for _, _, s in merchant_plans}
        owners = {s: m for m, _, s in merchant_plans}
        for alert in map(_alert, rows):
            targets = by_plan.get(alert.plan_id, []) if alert.plan_id else [alert.subscription_id]
            for subscription_id in targets:
                if owners.get(subscription_id) == alert.merchant_id:
                    found[subscription_id].append(alert)
        return found

    async def record(self, crossings: Sequence[AlertCrossing]) -> list[AlertCrossing]:
        """Records each crossing not recorded yet; returns those this call recorded (a crossing
        another transaction is recording is waited for, and then not this call's)."""
        if not crossings:
            return []
        rows = await self._session.execute(
            _RECORD,
            {
                "alert_ids": [c.alert.id for c in crossings],
                "subscription_ids": [c.subscription_id for c in crossings],
                "period_starts": [c.period_start for c in crossings],
                "event_types": [c.event_type for c in crossings],
                "merchant_ids": [c.alert.merchant_id for c in crossings],
                "user_ids": [c.user_id for c in crossings],
                "thresholds": [c.threshold for c in crossings],
                "values": [c.value for c in crossings],
                "period_ends": [c.period_end for c in crossings],
                "invoice_ids": [c.invoice_id or None for c in crossings],
                "cross_times": [c.cross_time for c in crossings],
            },
        )
        recorded = {(row.alert_id, row.subscription_id, row.event_type) for row in rows}
        return [c for c in crossings if (c.alert.id, c.subscription_id, c.event_type) in recorded]

    async def set_invoice(self, crossing: AlertCrossing, invoice_id: str) -> None:
        await self._session.execute(
            update(UsageAlertCrossingRow)
            .where(
                UsageAlertCrossingRow.alert_id == crossing.alert.id,
                UsageAlertCrossingRow.subscription_id == crossing.subscription_id,
                UsageAlertCrossingRow.period_start == crossing.period_start,
                UsageAlertCrossingRow.event_type == crossing.event_type,
            )
            .values(invoice_id=invoice_id)
        )

    async def crossings(
        self, subscription_id: str, after: tuple[datetime, str] | None, limit: int
    ) -> list[AlertCrossing]:
        """The subscription's crossings, oldest first, with their alerts (deleted ones too), after
        `after` (an AlertCrossing.position)."""
        key = UsageAlertCrossingRow.alert_id + " " + UsageAlertCrossingRow.event_type
        query = (
            select(UsageAlertCrossingRow, UsageAlertRow)
            .join(UsageAlertRow, UsageAlertRow.id == UsageAlertCrossingRow.alert_id)
            .where(UsageAlertCrossingRow.subscription_id == subscription_id)
        )
        if after is not None:
            query = query.where(tuple_(UsageAlertCrossingRow.cross_time, key) > tuple_(*after))
        rows = await self._session.execute(
            query.order_by(UsageAlertCrossingRow.cross_time, key).limit(limit)
        )
        return [
            AlertCrossing(
                alert=_alert(alert),
                subscription_id=crossing.subscription_id,
                user_id=crossing.user_id,
                event_type=crossing.event_type,
                threshold=crossing.threshold.normalize(),
                value=crossing.value,
                period_start=crossing.period_start,
                period_end=crossing.period_end,
                cross_time=crossing.cross_time,
                invoice_id=crossing.invoice_id or "",
            )
            for crossing, alert in rows
        ]
