"""Coupons, and the discounts they make on subscriptions and customers."""

from dataclasses import replace

from invoicing_svc.domain import discounts as rules
from invoicing_svc.domain.discounts import Coupon, Discount
from invoicing_svc.domain.model import SubscriptionStatus
from invoicing_svc.service_layer.unit_of_work import Invoicing, InvoicingUnitOfWork
from service_kit import pagination
from service_kit.errors import FailedPrecondition, InvalidArgument, NotFound
from service_kit.idempotency import RequestKey
from service_kit.identifiers import require_identifier
from service_kit.ids import new_id


async def _coupon(uow: InvoicingUnitOfWork, merchant_id: str, coupon_id: str, field: str) -> Coupon:
    found = await uow.discounts.coupon(merchant_id, coupon_id)
    if found is None:
        raise NotFound(f"coupon {coupon_id} not found", field=field)
    return found


async def create_coupon(invoicing: Invoicing, coupon: Coupon, request: RequestKey | None) -> Coupon:
    rules.validate_coupon(coupon)
    async with invoicing.unit_of_work() as uow:
        first_id = await uow.idempotency.first_answer(uow.session, coupon.merchant_id, request)
        if first_id is not None:
            return await _coupon(uow, coupon.merchant_id, first_id, "id")
        await uow.discounts.add_coupon(coupon)
        await uow.idempotency.remember(uow.session, coupon.merchant_id, request, coupon.id)
        await uow.commit()
    return coupon


async def get_coupon(invoicing: Invoicing, merchant_id: str, coupon_id: str) -> Coupon:
    async with invoicing.unit_of_work() as uow:
        return await _coupon(uow, merchant_id, coupon_id, "id")


async def list_coupons(
    invoicing: Invoicing, merchant_id: str, size: int, token: str
) -> tuple[list[Coupon], str]:
    limit = pagination.page_size(size)
    async with invoicing.unit_of_work() as uow:
        found = await uow.discounts.coupons(
            merchant_id, after=pagination.creation_position(token), limit=limit + 1
        )
    return pagination.cut_page(found, limit, lambda c: (c.create_time, c.id))


async def _target(
    uow: InvoicingUnitOfWork, merchant_id: str, subscription_id: str, customer_id: str
) -> tuple[str, str]:
    """(subscription id or "", user id) of a discount on exactly one of them."""
    if bool(subscription_id) == bool(customer_id):
        raise InvalidArgument(
            "a discount is on a subscription_id or a customer_id", field="subscription_id"
        )
    if subscription_id:
        subscription = await uow.subscriptions.subscription(merchant_id, subscription_id)
        if subscription is None:
            raise NotFound(f"subscription {subscription_id} not found", field="subscription_id")
        if subscription.status is SubscriptionStatus.CANCELED:
            raise FailedPrecondition(
                f"subscription {subscription_id} is canceled", field="subscription_id"
            )
        return subscription.id, subscription.user_id
    require_identifier(customer_id, "customer_id")
    if await uow.customers.customer(merchant_id, customer_id) is None:
        raise NotFound(f"customer {customer_id} not found", field="customer_id")
    return "", customer_id


async def create_discount(
    invoicing: Invoicing,
    merchant_id: str,
    coupon_id: str,
    *,
    subscription_id: str,
    customer_id: str,
    request: RequestKey | None,
) -> Discount:
    """Applies the coupon to a subscription or to a customer (every subscription of theirs
    without a discount of its own), from its next period invoice on. The coupon must be
    redeemable (its date not passed, a redemption left: counted in the same statement that
    checks it, so concurrent redemptions never pass the limit), and the subscription or customer
    must have no running discount (FAILED_PRECONDITION)."""
    now = invoicing.clock.now()
    async with invoicing.unit_of_work() as uow:
        first_id = await uow.idempotency.first_answer(uow.session, merchant_id, request)
        if first_id is not None:
            found = await uow.discounts.discount(merchant_id, first_id)
            assert found is not None
            return found
        coupon = await _coupon(uow, merchant_id, coupon_id, "coupon_id")
        target, user_id = await _target(uow, merchant_id, subscription_id, customer_id)
        rules.redeemable(coupon, now)
        if not await uow.discounts.redeem(coupon):
            raise FailedPrecondition(
                f"coupon {coupon.id} was redeemed its {coupon.max_redemptions} times",
                field="coupon_id",
            )
        discount = Discount(
            id=new_id("di"),
            merchant_id=merchant_id,
            coupon=replace(coupon, times_redeemed=coupon.times_redeemed + 1),
            subscription_id=target,
            user_id=user_id,
            periods_left=rules.first_periods(coupon),
            create_time=now,
        )
        if not await uow.discounts.add_discount(discount):
            field = "subscription_id" if target else "customer_id"
            raise FailedPrecondition(
                f"{field.removesuffix('_id')} {target or user_id} has a discount running: "
                "delete it first",
                field=field,
            )
        await uow.emit(merchant_id, "discount.created", discount, now)
        await uow.idempotency.remember(uow.session, merchant_id, request, discount.id)
        await uow.commit()
    return discount


async def delete_discount(invoicing: Invoicing, merchant_id: str, discount_id: str) -> Discount:
    """Ends a running discount: later invoices no longer take it (deleting it again changes
    nothing)."""
    now = invoicing.clock.now()
    async with invoicing.unit_of_work() as uow:
        discount = await uow.discounts.discount(merchant_id, discount_id, lock=True)
        if discount is None:
            raise NotFound(f"discount {discount_id} not found", field="id")
        if discount.end_time is not None:
            return discount
        ended = replace(discount, end_time=now)
        await uow.discounts.update_discounts([ended])
        await uow.emit(merchant_id, "discount.deleted", ended, now)
        await uow.commit()
    return ended


async def list_discounts(
    invoicing: Invoicing,
    merchant_id: str,
    *,
    subscription_id: str,
    customer_id: str,
    size: int,
    token: str,
) -> tuple[list[Discount], str]:
    """The merchant's discounts, running and ended, oldest first; a filter narrows them."""
    limit = pagination.page_size(size)
    async with invoicing.unit_of_work() as uow:
        found = await uow.discounts.discounts(
            merchant_id,
            subscription_id=subscription_id or None,
            user_id=customer_id or None,
            after=pagination.creation_position(token),
            limit=limit + 1,
        )
    return pagination.cut_page(found, limit, lambda d: (d.create_time, d.id))
