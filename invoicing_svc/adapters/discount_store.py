"""Coupons and discounts."""

from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy import and_, or_, select, text, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from invoicing_svc.adapters.tables import CouponRow, DiscountRow
from invoicing_svc.domain.discounts import Coupon, CouponDuration, Discount
from service_kit.pagination import in_creation_order
from service_kit.sql_filters import id_in

_UPDATE_DISCOUNTS = text("""
    UPDATE invoicing.discounts d SET periods_left = t.periods_left, end_time = t.end_time
    FROM unnest(
        CAST(:ids AS text[]), CAST(:periods_left AS int[]), CAST(:end_times AS timestamptz[]))
        AS t(id, periods_left, end_time)
    WHERE d.id = t.id
""")


def _coupon(row: CouponRow) -> Coupon:
    return Coupon(
        id=row.id,
        merchant_id=row.merchant_id,
        name=row.name,
        percent_off=row.percent_off,
        amount_off=row.amount_off,
        duration=CouponDuration(row.duration),
        duration_periods=row.duration_periods,
        max_redemptions=row.max_redemptions,
        redeem_by=row.redeem_by,
        create_time=row.create_time,
        times_redeemed=row.times_redeemed,
    )


def _discount(row: DiscountRow, coupon: Coupon) -> Discount:
    return Discount(
        id=row.id,
        merchant_id=row.merchant_id,
        coupon=coupon,
        subscription_id=row.subscription_id,
        user_id=row.user_id,
        periods_left=row.periods_left,
        create_time=row.create_time,
        end_time=row.end_time,
    )


class DiscountStore:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add_coupon(self, coupon: Coupon) -> None:
        self._session.add(
            CouponRow(
                id=coupon.id,
                merchant_id=coupon.merchant_id,
                name=coupon.name,
                percent_off=coupon.percent_off,
                amount_off=coupon.amount_off,
                duration=coupon.duration.value,
                duration_periods=coupon.duration_periods,
                max_redemptions=coupon.max_redemptions,
                redeem_by=coupon.redeem_by,
                times_redeemed=0,
                create_time=coupon.create_time,
            )
        )
        await self._session.flush()

    async def coupon(self, merchant_id: str, coupon_id: str) -> Coupon | None:
        row = await self._session.scalar(
            select(CouponRow)
            .where(CouponRow.id == coupon_id, CouponRow.merchant_id == merchant_id)
            .execution_options(populate_existing=True)
        )
        return _coupon(row) if row else None

    async def coupons(
        self, merchant_id: str, *, after: tuple[datetime, str] | None, limit: int
    ) -> list[Coupon]:
        query = in_creation_order(
            select(CouponRow).where(CouponRow.merchant_id == merchant_id),
            CouponRow.create_time,
            CouponRow.id,
            after,
            limit,
        )
        return [_coupon(row) for row in await self._session.scalars(query)]

    async def redeem(self, coupon: Coupon) -> bool:
        """Counts one more redemption, in one statement; False when none is left."""
        redeemed = await self._session.scalar(
            update(CouponRow)
            .where(
                CouponRow.id == coupon.id,
                or_(
                    CouponRow.max_redemptions.is_(None),
                    CouponRow.times_redeemed < CouponRow.max_redemptions,
                ),
            )
            .values(times_redeemed=CouponRow.times_redeemed + 1)
            .returning(CouponRow.id)
        )
        return redeemed is not None

    async def add_discount(self, discount: Discount) -> bool:
        """Stores it; False when its subscription (or customer) has a running one already."""
        try:
            async with self._session.begin_nested():
                self._session.add(
                    DiscountRow(
                        id=discount.id,
                        merchant_id=discount.merchant_id,
                        coupon_id=discount.coupon.id,
                        subscription_id=discount.subscription_id,
                        user_id=discount.user_id,
                        periods_left=discount.periods_left,
                        create_time=discount.create_time,
                        end_time=None,
                    )
                )
        except IntegrityError:
            return False
        return True

    async def _with_coupons(self, rows: Sequence[DiscountRow]) -> list[Discount]:
        ids = {row.coupon_id for row in rows}
        coupons = (
            {
                row.id: _coupon(row)
                for row in await self._session.scalars(
                    select(CouponRow)
                    .where(CouponRow.id.in_(ids))
                    .execution_options(populate_existing=True)
                )
            }
            if ids
            else {}
        )
        return [_discount(row, coupons[row.coupon_id]) for row in rows]

    async def discount(
        self, merchant_id: str, discount_id: str, *, lock: bool = False
    ) -> Discount | None:
        query = select(DiscountRow).where(
            DiscountRow.id == discount_id, DiscountRow.merchant_id == merchant_id
        )
        if lock:
            query = query.with_for_update()
        row = await self._session.scalar(query.execution_options(populate_existing=True))
        return (await self._with_coupons([row]))[0] if row else None

    async def discounts(
        self,
        merchant_id: str,
        *,
        subscription_id: str | None,
        user_id: str | None,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> list[Discount]:
        query = select(DiscountRow).where(DiscountRow.merchant_id == merchant_id)
        if subscription_id is not None:
            query = query.where(DiscountRow.subscription_id == subscription_id)
        if user_id is not None:
            query = query.where(DiscountRow.user_id == user_id)
        rows = await self._session.scalars(
            in_creation_order(query, DiscountRow.create_time, DiscountRow.id, after, limit)
        )
        return await self._with_coupons(list(rows))

    async def running_for(self, subscriptions: Collection[tuple[str, str, str]]) -> list[Discount]:
        """The running discounts of the (merchant, subscription, user) given, their own or
        their customers', locked (a period close spends them), in id order."""
        if not subscriptions:
            return []
        own = [subscription_id for _, subscription_id, _ in subscriptions]
        customers = {(merchant_id, user_id) for merchant_id, _, user_id in subscriptions}
        rows = await self._session.scalars(
            select(DiscountRow)
            .where(
                DiscountRow.end_time.is_(None),
                or_(
                    id_in(DiscountRow.subscription_id, own),
                    and_(
                        DiscountRow.subscription_id == "",
                        tuple_(DiscountRow.merchant_id, DiscountRow.user_id).in_(customers),
                    ),
                ),
            )
            .order_by(DiscountRow.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return await self._with_coupons(list(rows))

    async def update_discounts(self, discounts: Sequence[Discount]) -> None:
        """Writes what a close or a deletion changed of stored discounts, in one statement."""
        if not discounts:
            return
        await self._session.execute(
            _UPDATE_DISCOUNTS,
            {
                "ids": [d.id for d in discounts],
                "periods_left": [d.periods_left for d in discounts],
                "end_times": [d.end_time for d in discounts],
            },
        )
