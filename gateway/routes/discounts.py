"""Coupons (a merchant's offers) and discounts (a coupon applied to a subscription or to a
customer), taken off period invoices."""

from typing import Annotated, Any

from fastapi import Query

from billing.invoicing.v1 import invoicing_pb2 as pb
from gateway import responses as r
from gateway.backends import to_json
from gateway.routes import Limit, Merchant, StartingAfter, merchant_router, page
from gateway.schemas import CouponCreate, DiscountCreate, text
from service_kit.proto_time import to_timestamp

router = merchant_router("coupons and discounts")


@router.post("/coupons", **r.documented(r.Coupon))
async def create_coupon(merchant: Merchant, payload: CouponCreate) -> Any:
    """`percentOff` (above 0, at most 100, two decimals) or `amountOff` (USDC), exactly one;
    `duration` ONCE (the next period invoice), REPEATING (`durationPeriods` of them) or
    FOREVER; optional `maxRedemptions` and `redeemBy`."""

    async def create() -> dict[str, Any]:
        coupon = pb.Coupon(
            name=payload.name,
            percent_off=text(payload.percent_off),
            amount_off=text(payload.amount_off),
            duration=pb.CouponDuration.Value(f"COUPON_DURATION_{payload.duration}"),
            duration_periods=payload.duration_periods,
            max_redemptions=payload.max_redemptions,
        )
        if payload.redeem_by is not None:
            coupon.redeem_by.CopyFrom(to_timestamp(payload.redeem_by))
        request = pb.CreateCouponRequest(coupon=coupon, request_id=merchant.request_id())
        stub = merchant.gateway.backends.invoicing
        return to_json(await merchant.call(stub.CreateCoupon, request))

    return await merchant.created(create)


@router.get("/coupons", **r.documented(r.Page[r.Coupon]))
async def list_coupons(
    merchant: Merchant, limit: Limit = 10, starting_after: StartingAfter = ""
) -> Any:
    request = pb.ListCouponsRequest(page_size=limit, page_token=starting_after)
    found = await merchant.call(merchant.gateway.backends.invoicing.ListCoupons, request)
    return page([to_json(c) for c in found.coupons], found.next_page_token)


@router.get("/coupons/{coupon_id}", **r.documented(r.Coupon, 404))
async def get_coupon(merchant: Merchant, coupon_id: str) -> Any:
    stub = merchant.gateway.backends.invoicing
    return await merchant.answer(stub.GetCoupon, pb.GetCouponRequest(id=coupon_id))


@router.post("/discounts", **r.documented(r.Discount, 404, 409))
async def create_discount(merchant: Merchant, payload: DiscountCreate) -> Any:
    """Applies `couponId` to `subscriptionId` or to `customerId` (exactly one), from the next
    period invoice on. 409 for a coupon past `redeemBy` or redeemed `maxRedemptions` times, a
    canceled subscription, or one (or a customer) with a discount running."""

    async def create() -> dict[str, Any]:
        request = pb.CreateDiscountRequest(
            coupon_id=payload.coupon_id,
            subscription_id=payload.subscription_id,
            customer_id=payload.customer_id,
            request_id=merchant.request_id(),
        )
        stub = merchant.gateway.backends.invoicing
        return to_json(await merchant.call(stub.CreateDiscount, request))

    return await merchant.created(create)


@router.get("/discounts", **r.documented(r.Page[r.Discount]))
async def list_discounts(
    merchant: Merchant,
    subscription_id: Annotated[str, Query(alias="subscriptionId", max_length=128)] = "",
    customer_id: Annotated[str, Query(alias="customerId", max_length=128)] = "",
    limit: Limit = 10,
    starting_after: StartingAfter = "",
) -> Any:
    """Running and ended, oldest first; a filter narrows them."""
    request = pb.ListDiscountsRequest(
        subscription_id=subscription_id,
        customer_id=customer_id,
        page_size=limit,
        page_token=starting_after,
    )
    found = await merchant.call(merchant.gateway.backends.invoicing.ListDiscounts, request)
    return page([to_json(d) for d in found.discounts], found.next_page_token)


@router.delete("/discounts/{discount_id}", **r.documented(r.Discount, 404))
async def delete_discount(merchant: Merchant, discount_id: str) -> Any:
    """Ends it: later invoices no longer take it."""
    stub = merchant.gateway.backends.invoicing
    return await merchant.answer(stub.DeleteDiscount, pb.DeleteDiscountRequest(id=discount_id))
