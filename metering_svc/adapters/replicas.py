"""Metering's local replicas of subscriptions and invoices, written by invoicing."""

import json
from collections.abc import Collection, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from metering_svc.adapters.tables import InvoiceReferenceRow, SubscriptionRow
from metering_svc.domain.model import (
    InvoiceReference,
    PrepaidAllowance,
    SubscriptionState,
    SubscriptionStatus,
    UsageLimit,
)
from pricing.records import charges_from_json, charges_to_json
from service_kit.sql_filters import id_in

# Both upserts write rows in id order, so that concurrent batches lock them in the same order.
_UPSERT_SUBSCRIPTIONS = text("""
    INSERT INTO metering.subscriptions AS s (
        id, merchant_id, service_id, user_id, status, current_period_start, current_period_end,
        version, test_clock_time, end_time, features, limits, prepaid, update_time)
    SELECT t.*, :now
    FROM unnest(
        CAST(:ids AS text[]), CAST(:merchant_ids AS text[]), CAST(:service_ids AS text[]),
        CAST(:user_ids AS text[]), CAST(:statuses AS text[]),
        CAST(:period_starts AS timestamptz[]), CAST(:period_ends AS timestamptz[]),
        CAST(:versions AS bigint[]), CAST(:test_clock_times AS timestamptz[]),
        CAST(:end_times AS timestamptz[]), CAST(:features AS jsonb[]),
        CAST(:limits AS jsonb[]), CAST(:prepaid AS jsonb[])) AS t
    ORDER BY 1
    ON CONFLICT (id) DO UPDATE SET
        service_id = excluded.service_id, user_id = excluded.user_id, status = excluded.status,
        current_period_start = excluded.current_period_start,
        current_period_end = excluded.current_period_end, version = excluded.version,
        test_clock_time = excluded.test_clock_time, end_time = excluded.end_time,
        features = excluded.features, limits = excluded.limits, prepaid = excluded.prepaid,
        update_time = excluded.update_time
    WHERE s.merchant_id = excluded.merchant_id AND s.version < excluded.version
""")

_UPSERT_INVOICES = text("""
    INSERT INTO metering.invoice_references AS r (id, merchant_id, service_id, user_id, update_time)
    SELECT t.*, :now
    FROM unnest(
        CAST(:ids AS text[]), CAST(:merchant_ids AS text[]), CAST(:service_ids AS text[]),
        CAST(:user_ids AS text[])) AS t
    ORDER BY 1
    ON CONFLICT (id) DO UPDATE SET
        service_id = excluded.service_id, user_id = excluded.user_id,
        update_time = excluded.update_time
    WHERE r.merchant_id = excluded.merchant_id
""")


# A lock per subscription, taken in key order (a hash collision only serializes two more).
_LOCK_USAGE_LIMITS = text("""
    SELECT pg_advisory_xact_lock(k) FROM (
        SELECT DISTINCT hashtextextended('metering.usage_limit:' || id, 0) AS k
        FROM unnest(CAST(:ids AS text[])) AS id
        ORDER BY k
    ) keys
""")


def _limits_json(limits: Sequence[UsageLimit]) -> str:
    return json.dumps(
        [
            {"event_key": limit.event_key, "quantity": str(limit.quantity), "hard": limit.hard}
            for limit in limits
        ]
    )


def _prepaid_json(allowance: PrepaidAllowance | None) -> str | None:
    if allowance is None:
        return None
    return json.dumps(
        {
            "credits": str(allowance.credits),
            "since": allowance.since.isoformat(),
            "charges": charges_to_json(allowance.charges),
        }
    )


def _prepaid(stored: dict[str, Any] | None) -> PrepaidAllowance | None:
    if stored is None:
        return None
    return PrepaidAllowance(
        credits=Decimal(stored["credits"]),
        since=datetime.fromisoformat(stored["since"]),
        charges=charges_from_json(stored["charges"]),
    )


def _state(row: SubscriptionRow) -> SubscriptionState:
    return SubscriptionState(
        subscription_id=row.id,
        merchant_id=row.merchant_id,
        service_id=row.service_id,
        user_id=row.user_id,
        status=SubscriptionStatus(row.status),
        current_period_start=row.current_period_start,
        current_period_end=row.current_period_end,
        version=row.version,
        test_clock_time=row.test_clock_time,
        end_time=row.end_time,
        features=tuple(row.features),
        limits=tuple(
            UsageLimit(limit["event_key"], Decimal(limit["quantity"]), limit["hard"])
            for limit in row.limits
        ),
        prepaid=_prepaid(row.prepaid),
    )


def _reference(row: InvoiceReferenceRow) -> InvoiceReference:
    return InvoiceReference(
        invoice_id=row.id,
        merchant_id=row.merchant_id,
        service_id=row.service_id,
        user_id=row.user_id,
    )


class ReplicaRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def subscriptions_for_ingestion(
        self, merchant_id: str, ids: Collection[str]
    ) -> dict[str, SubscriptionState]:
        """Reads and share-locks the subscriptions, so a state change (a period close) waits for
        the events being ingested against the old state to commit."""
        rows = await self._session.scalars(
            select(SubscriptionRow)
            .where(SubscriptionRow.id.in_(sorted(ids)), SubscriptionRow.merchant_id == merchant_id)
            .order_by(SubscriptionRow.id)
            .with_for_update(read=True)
        )
        return {row.id: _state(row) for row in rows}

    async def lock_usage_limits(self, ids: Collection[str]) -> None:
        """Takes the subscriptions' usage-limit locks until the transaction ends, in the order
        of their keys so two transactions never wait on each other's."""
        await self._session.execute(_LOCK_USAGE_LIMITS, {"ids": list(ids)})

    async def subscription(
        self, merchant_id: str, subscription_id: str
    ) -> SubscriptionState | None:
        row = await self._session.get(SubscriptionRow, subscription_id)
        return _state(row) if row and row.merchant_id == merchant_id else None

    async def subscriptions(
        self, merchant_id: str, ids: Collection[str]
    ) -> dict[str, SubscriptionState]:
        """The merchant's subscriptions among `ids`; another merchant's are absent."""
        rows = await self._session.scalars(
            select(SubscriptionRow).where(
                id_in(SubscriptionRow.id, ids),
                SubscriptionRow.merchant_id == merchant_id,
            )
        )
        return {row.id: _state(row) for row in rows}

    async def upsert_subscriptions(
        self, states: Sequence[SubscriptionState], now: datetime
    ) -> dict[str, SubscriptionState]:
        """Writes each state unless its stored one is as new or newer, or another merchant's;
        returns what is stored for each id (the caller sees a refused write)."""
        ordered = sorted(states, key=lambda state: state.subscription_id)
        await self._session.execute(
            _UPSERT_SUBSCRIPTIONS,
            {
                "ids": [s.subscription_id for s in ordered],
                "merchant_ids": [s.merchant_id for s in ordered],
                "service_ids": [s.service_id for s in ordered],
                "user_ids": [s.user_id for s in ordered],
                "statuses": [s.status.value for s in ordered],
                "period_starts": [s.current_period_start for s in ordered],
                "period_ends": [s.current_period_end for s in ordered],
                "versions": [s.version for s in ordered],
                "test_clock_times": [s.test_clock_time for s in ordered],
                "end_times": [s.end_time for s in ordered],
                "features": [json.dumps(list(s.features)) for s in ordered],
                "limits": [_limits_json(s.limits) for s in ordered],
                "prepaid": [_prepaid_json(s.prepaid) for s in ordered],
                "now": now,
            },
        )
        rows = await self._session.scalars(
            select(SubscriptionRow)
            .where(id_in(SubscriptionRow.id, [s.subscription_id for s in ordered]))
            .execution_options(populate_existing=True)
        )
        return {row.id: _state(row) for row in rows}

    async def invoices(self, merchant_id: str, ids: Collection[str]) -> dict[str, InvoiceReference]:
        if not ids:
            return {}
        rows = await self._session.scalars(
            select(InvoiceReferenceRow).where(
                InvoiceReferenceRow.id.in_(sorted(ids)),
                InvoiceReferenceRow.merchant_id == merchant_id,
            )
        )
        return {row.id: _reference(row) for row in rows}

    async def upsert_invoices(
        self, references: Sequence[InvoiceReference], now: datetime
    ) -> dict[str, InvoiceReference]:
        """Inserts or updates each by id, never across merchants; returns what is stored for
        each id (the caller sees a refused write)."""
        ordered = sorted(references, key=lambda reference: reference.invoice_id)
        await self._session.execute(
            _UPSERT_INVOICES,
            {
                "ids": [r.invoice_id for r in ordered],
                "merchant_ids": [r.merchant_id for r in ordered],
                "service_ids": [r.service_id for r in ordered],
                "user_ids": [r.user_id for r in ordered],
                "now": now,
            },
        )
        rows = await self._session.scalars(
            select(InvoiceReferenceRow)
            .where(id_in(InvoiceReferenceRow.id, [r.invoice_id for r in ordered]))
            .execution_options(populate_existing=True)
        )
        return {row.id: _reference(row) for row in rows}
