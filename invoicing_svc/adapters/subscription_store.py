"""Checkout sessions and subscriptions."""

import json
from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import ColumnElement, and_, exists, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from invoicing_svc.adapters.tables import (
    CheckoutSessionRow,
    CreditBalanceRow,
    PlanRow,
    SubscriptionRow,
)
from invoicing_svc.domain.model import (
    CheckoutSession,
    CheckoutStatus,
    InvoiceLine,
    PaymentProof,
    PlanSegment,
    Subscription,
    SubscriptionStatus,
)
from service_kit.pagination import in_creation_order
from service_kit.sql_filters import id_in

_UPDATE_SUBSCRIPTIONS = text("""
    UPDATE invoicing.subscriptions s SET status = t.status, plan_id = t.plan_id,
        billing_anchor = t.billing_anchor, period_index = t.period_index,
        current_period_start = t.period_start, current_period_end = t.period_end,
        cancel_at_period_end = t.cancel_at_period_end, cancel_time = t.cancel_time,
        fee_prepaid_until = t.fee_prepaid_until, test_clock_time = t.test_clock_time,
        version = t.version, plan_segments = t.plan_segments, fee_plan_id = t.fee_plan_id,
        scheduled_plan_id = t.scheduled_plan_id, pending_lines = t.pending_lines,
        pause_time = t.pause_time, usage_from = t.usage_from
    FROM unnest(
        CAST(:ids AS text[]), CAST(:statuses AS text[]), CAST(:plan_ids AS text[]),
        CAST(:anchors AS timestamptz[]), CAST(:period_indexes AS int[]),
        CAST(:period_starts AS timestamptz[]), CAST(:period_ends AS timestamptz[]),
        CAST(:cancels_at_period_end AS boolean[]), CAST(:cancel_times AS timestamptz[]),
        CAST(:fees_prepaid_until AS timestamptz[]), CAST(:test_clock_times AS timestamptz[]),
        CAST(:versions AS bigint[]), CAST(:plan_segments AS jsonb[]),
        CAST(:fee_plan_ids AS text[]), CAST(:scheduled_plan_ids AS text[]),
        CAST(:pending_lines AS jsonb[]), CAST(:pause_times AS timestamptz[]),
        CAST(:usage_froms AS timestamptz[]))
        AS t(id, status, plan_id, billing_anchor, period_index, period_start, period_end,
            cancel_at_period_end, cancel_time, fee_prepaid_until, test_clock_time, version,
            plan_segments, fee_plan_id, scheduled_plan_id, pending_lines, pause_time, usage_from)
    WHERE s.id = t.id
""")


def _segments_to_json(segments: Sequence[PlanSegment]) -> list[dict[str, str]]:
    return [
        {"plan_id": s.plan_id, "fee_plan_id": s.fee_plan_id, "end": s.end.isoformat()}
        for s in segments
    ]


def _segments_from_json(rows: Sequence[dict[str, str]]) -> tuple[PlanSegment, ...]:
    return tuple(
        PlanSegment(r["plan_id"], r["fee_plan_id"], datetime.fromisoformat(r["end"])) for r in rows
    )


def _lines_to_json(lines: Sequence[InvoiceLine]) -> list[dict[str, str]]:
    return [
        {
            "description": line.description,
            "event_key": line.event_key,
            "quantity": f"{line.quantity:f}",
            "amount": f"{line.amount:f}",
        }
        for line in lines
    ]


def _lines_from_json(rows: Sequence[dict[str, str]]) -> tuple[InvoiceLine, ...]:
    return tuple(
        InvoiceLine(r["description"], r["event_key"], Decimal(r["quantity"]), Decimal(r["amount"]))
        for r in rows
    )


def _session(row: CheckoutSessionRow) -> CheckoutSession:
    payment = None
    if row.payment_transaction_hash and row.payer_wallet_address:
        payment = PaymentProof(row.payment_transaction_hash, row.payer_wallet_address)
    return CheckoutSession(
        id=row.id,
        merchant_id=row.merchant_id,
        plan_id=row.plan_id,
        user_id=row.user_id,
        success_url=row.success_url,
        cancel_url=row.cancel_url,
        status=CheckoutStatus(row.status),
        amount_due=row.amount_due,
        create_time=row.create_time,
        payment=payment,
        settlement_id=row.settlement_id or "",
        subscription_id=row.subscription_id or "",
        complete_time=row.complete_time,
    )


def _subscription(row: SubscriptionRow) -> Subscription:
    return Subscription(
        id=row.id,
        merchant_id=row.merchant_id,
        service_id=row.service_id,
        plan_id=row.plan_id,
        user_id=row.user_id,
        status=SubscriptionStatus(row.status),
        billing_anchor=row.billing_anchor,
        period_index=row.period_index,
        current_period_start=row.current_period_start,
        current_period_end=row.current_period_end,
        cancel_at_period_end=row.cancel_at_period_end,
        fee_prepaid_until=row.fee_prepaid_until,
        version=row.version,
        create_time=row.create_time,
        cancel_time=row.cancel_time,
        test_clock_time=row.test_clock_time,
        plan_segments=_segments_from_json(row.plan_segments),
        fee_plan_id=row.fee_plan_id,
        scheduled_plan_id=row.scheduled_plan_id,
        pending_lines=_lines_from_json(row.pending_lines),
        pause_time=row.pause_time,
        usage_from=row.usage_from,
        trial_end=row.trial_end,
        trial_reminded=row.trial_reminded,
        mandate_id=row.mandate_id,
        mandate_expire_time=row.mandate_expire_time,
    )


def _prepaid_of(merchant_id: str, user_id: str) -> ColumnElement[bool]:
    """The subscriber's ACTIVE subscriptions of prepaid-only plans."""
    prepaid_plans = select(PlanRow.id).where(
        PlanRow.merchant_id == merchant_id, PlanRow.prepaid_only
    )
    return and_(
        SubscriptionRow.merchant_id == merchant_id,
        SubscriptionRow.user_id == user_id,
        SubscriptionRow.status == SubscriptionStatus.ACTIVE.value,
        SubscriptionRow.plan_id.in_(prepaid_plans),
    )


class SubscriptionStore:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def save_checkout(self, checkout: CheckoutSession) -> None:
        await self._session.merge(
            CheckoutSessionRow(
                id=checkout.id,
                merchant_id=checkout.merchant_id,
                plan_id=checkout.plan_id,
                user_id=checkout.user_id,
                success_url=checkout.success_url,
                cancel_url=checkout.cancel_url,
                status=checkout.status.value,
                amount_due=checkout.amount_due,
                payment_transaction_hash=checkout.payment.transaction_hash
                if checkout.payment
                else None,
                payer_wallet_address=checkout.payment.payer_wallet_address
                if checkout.payment
                else None,
                settlement_id=checkout.settlement_id or None,
                subscription_id=checkout.subscription_id or None,
                create_time=checkout.create_time,
                complete_time=checkout.complete_time,
            )
        )
        await self._session.flush()

    async def checkout(
        self, merchant_id: str, checkout_id: str, *, lock: bool = False
    ) -> CheckoutSession | None:
        query = select(CheckoutSessionRow).where(
            CheckoutSessionRow.id == checkout_id, CheckoutSessionRow.merchant_id == merchant_id
        )
        if lock:
            query = query.with_for_update()
        row = await self._session.scalar(query.execution_options(populate_existing=True))
        return _session(row) if row else None

    async def save_subscription(self, subscription: Subscription) -> None:
        await self._session.merge(
            SubscriptionRow(
                id=subscription.id,
                merchant_id=subscription.merchant_id,
                service_id=subscription.service_id,
                plan_id=subscription.plan_id,
                user_id=subscription.user_id,
                status=subscription.status.value,
                billing_anchor=subscription.billing_anchor,
                period_index=subscription.period_index,
                current_period_start=subscription.current_period_start,
                current_period_end=subscription.current_period_end,
                cancel_at_period_end=subscription.cancel_at_period_end,
                cancel_time=subscription.cancel_time,
                fee_prepaid_until=subscription.fee_prepaid_until,
                test_clock_time=subscription.test_clock_time,
                version=subscription.version,
                create_time=subscription.create_time,
                plan_segments=_segments_to_json(subscription.plan_segments),
                fee_plan_id=subscription.fee_plan_id,
                scheduled_plan_id=subscription.scheduled_plan_id,
                pending_lines=_lines_to_json(subscription.pending_lines),
                pause_time=subscription.pause_time,
                usage_from=subscription.usage_from,
                trial_end=subscription.trial_end,
                trial_reminded=subscription.trial_reminded,
                mandate_id=subscription.mandate_id,
                mandate_expire_time=subscription.mandate_expire_time,
            )
        )
        await self._session.flush()

    async def update_subscriptions(self, subscriptions: Sequence[Subscription]) -> None:
        """Writes the changed state of stored subscriptions in one statement."""
        await self._session.execute(
            _UPDATE_SUBSCRIPTIONS,
            {
                "ids": [s.id for s in subscriptions],
                "statuses": [s.status.value for s in subscriptions],
                "plan_ids": [s.plan_id for s in subscriptions],
                "anchors": [s.billing_anchor for s in subscriptions],
                "period_indexes": [s.period_index for s in subscriptions],
                "period_starts": [s.current_period_start for s in subscriptions],
                "period_ends": [s.current_period_end for s in subscriptions],
                "cancels_at_period_end": [s.cancel_at_period_end for s in subscriptions],
                "cancel_times": [s.cancel_time for s in subscriptions],
                "fees_prepaid_until": [s.fee_prepaid_until for s in subscriptions],
                "test_clock_times": [s.test_clock_time for s in subscriptions],
                "versions": [s.version for s in subscriptions],
                "plan_segments": [
                    json.dumps(_segments_to_json(s.plan_segments)) for s in subscriptions
                ],
                "fee_plan_ids": [s.fee_plan_id for s in subscriptions],
                "scheduled_plan_ids": [s.scheduled_plan_id for s in subscriptions],
                "pause_times": [s.pause_time for s in subscriptions],
                "usage_froms": [s.usage_from for s in subscriptions],
                "pending_lines": [
                    json.dumps(_lines_to_json(s.pending_lines)) for s in subscriptions
                ],
            },
        )

    async def bump_versions_of_plan(self, merchant_id: str, plan_id: str) -> list[Subscription]:
        """Raises by one the version of every subscription of the plan not canceled, in one
        statement (waiting for those another transaction holds), so metering's replica takes
        their next push as newer. Returns them as they are now, in id order."""
        rows = await self._session.scalars(
            update(SubscriptionRow)
            .where(
                SubscriptionRow.merchant_id == merchant_id,
                SubscriptionRow.plan_id == plan_id,
                SubscriptionRow.status != SubscriptionStatus.CANCELED.value,
            )
            .values(version=SubscriptionRow.version + 1)
            .returning(SubscriptionRow)
            .execution_options(synchronize_session=False, populate_existing=True)
        )
        return sorted((_subscription(row) for row in rows), key=lambda s: s.id)

    async def prepaid_subscriptions(self, merchant_id: str, user_id: str) -> list[Subscription]:
        """The subscriber's ACTIVE subscriptions of prepaid-only plans (one at most)."""
        rows = await self._session.scalars(
            select(SubscriptionRow).where(_prepaid_of(merchant_id, user_id))
        )
        return [_subscription(row) for row in rows]

    async def bump_prepaid_versions(self, merchant_id: str, user_id: str) -> list[Subscription]:
        """Raises by one the version of the subscriber's ACTIVE prepaid-only subscriptions (waiting
        for one another transaction holds), so metering takes their next push, which carries
        the subscriber's credits, as newer. Returns them as they are now."""
        rows = await self._session.scalars(
            update(SubscriptionRow)
            .where(_prepaid_of(merchant_id, user_id))
            .values(version=SubscriptionRow.version + 1)
            .returning(SubscriptionRow)
            .execution_options(synchronize_session=False, populate_existing=True)
        )
        return [_subscription(row) for row in rows]

    async def subscription(
        self, merchant_id: str, subscription_id: str, *, lock: bool = False
    ) -> Subscription | None:
        query = select(SubscriptionRow).where(
            SubscriptionRow.id == subscription_id, SubscriptionRow.merchant_id == merchant_id
        )
        if lock:
            query = query.with_for_update()
        row = await self._session.scalar(query.execution_options(populate_existing=True))
        return _subscription(row) if row else None

    async def lock_active(self, ids: Collection[str]) -> list[Subscription]:
        """The ACTIVE subscriptions among `ids` (of any merchant), locked, in id order; those
        another transaction holds (a period close) are skipped."""
        rows = await self._session.scalars(
            select(SubscriptionRow)
            .where(
                id_in(SubscriptionRow.id, ids),
                SubscriptionRow.status == SubscriptionStatus.ACTIVE.value,
            )
            .order_by(SubscriptionRow.id)
            .with_for_update(skip_locked=True)
            .execution_options(populate_existing=True)
        )
        return [_subscription(row) for row in rows]

    async def subscriptions_by_id(
        self, merchant_id: str, ids: Collection[str]
    ) -> list[Subscription]:
        """The merchant's subscriptions among `ids`, as they are now, in id order."""
        rows = await self._session.scalars(
            select(SubscriptionRow)
            .where(
                id_in(SubscriptionRow.id, ids),
                SubscriptionRow.merchant_id == merchant_id,
            )
            .order_by(SubscriptionRow.id)
            .execution_options(populate_existing=True)
        )
        return [_subscription(row) for row in rows]

    async def subscriptions(
        self,
        merchant_id: str,
        *,
        service_id: str | None,
        user_id: str | None,
        after: tuple[datetime, str] | None,
        limit: int,
        plan_id: str | None = None,
        status: SubscriptionStatus | None = None,
        lock: bool = False,
    ) -> list[Subscription]:
        """A page of the merchant's subscriptions, oldest first; `lock` holds them FOR UPDATE."""
        query = select(SubscriptionRow).where(SubscriptionRow.merchant_id == merchant_id)
        if service_id:
            query = query.where(SubscriptionRow.service_id == service_id)
        if user_id:
            query = query.where(SubscriptionRow.user_id == user_id)
        if plan_id:
            query = query.where(SubscriptionRow.plan_id == plan_id)
        if status is not None:
            query = query.where(SubscriptionRow.status == status.value)
        query = in_creation_order(
            query, SubscriptionRow.create_time, SubscriptionRow.id, after, limit
        )
        if lock:
            query = query.with_for_update().execution_options(populate_existing=True)
        rows = await self._session.scalars(query)
        return [_subscription(row) for row in rows]

    async def trials_to_remind(
        self, now: datetime, lead: timedelta, limit: int, subscription_id: str | None = None
    ) -> list[Subscription]:
        """Locks ACTIVE subscriptions in their trial, not reminded yet, whose trial ends within
        `lead` of now in their own time; rows another replica holds are skipped."""
        due = or_(
            SubscriptionRow.trial_end <= now + lead,
            SubscriptionRow.trial_end <= SubscriptionRow.test_clock_time + lead,
        )
        query = select(SubscriptionRow).where(
            SubscriptionRow.trial_end.is_not(None),
            ~SubscriptionRow.trial_reminded,
            SubscriptionRow.status == SubscriptionStatus.ACTIVE.value,
            SubscriptionRow.current_period_end <= SubscriptionRow.trial_end,
            due,
        )
        if subscription_id:
            query = query.where(SubscriptionRow.id == subscription_id)
        rows = await self._session.scalars(
            query.order_by(SubscriptionRow.trial_end)
            .limit(limit)
            .with_for_update(skip_locked=True)
            .execution_options(populate_existing=True)
        )
        return [_subscription(row) for row in rows]

    async def claim_due(
        self,
        now: datetime,
        grace: timedelta,
        limit: int,
        subscription_id: str | None = None,
        *,
        holding_credits: bool = True,
    ) -> list[Subscription]:
        """Locks subscriptions whose period ended at least the grace window ago, in their own
        time (a test clock may be ahead); rows another replica holds are skipped, and, unless
        `holding_credits`, those of subscribers whose reported credit balance is above 0."""
        due = or_(
            SubscriptionRow.current_period_end <= now - grace,
            SubscriptionRow.current_period_end <= SubscriptionRow.test_clock_time - grace,
        )
        # A paused subscription has no period running (the index covers status <> CANCELED).
        query = select(SubscriptionRow).where(
            SubscriptionRow.status != SubscriptionStatus.CANCELED.value,
            SubscriptionRow.status != SubscriptionStatus.PAUSED.value,
            due,
        )
        if subscription_id:
            query = query.where(SubscriptionRow.id == subscription_id)
        if not holding_credits:
            query = query.where(
                ~exists().where(
                    CreditBalanceRow.merchant_id == SubscriptionRow.merchant_id,
                    CreditBalanceRow.user_id == SubscriptionRow.user_id,
                    CreditBalanceRow.balance > 0,
                )
            )
        rows = await self._session.scalars(
            query.order_by(SubscriptionRow.current_period_end)
            .limit(limit)
            .with_for_update(skip_locked=True)
            .execution_options(populate_existing=True)
        )
        return [_subscription(row) for row in rows]
