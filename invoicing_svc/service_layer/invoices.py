"""Invoices: the Retempo way (merchant-computed), reading, and the status moves."""

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

from invoicing_svc.domain import invoices as rules
from invoicing_svc.domain.credits import credit_key
from invoicing_svc.domain.model import Invoice, InvoiceStatus, SubscriptionStatus
from invoicing_svc.service_layer.prepaid_credits import spend_credits
from invoicing_svc.service_layer.unit_of_work import Invoicing, InvoicingUnitOfWork
from service_kit import pagination
from service_kit.decimals import MAX_AMOUNT, parse_decimal
from service_kit.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from service_kit.idempotency import RequestKey
from service_kit.ids import new_id


async def _invoice(uow: InvoicingUnitOfWork, merchant_id: str, invoice_id: str) -> Invoice:
    found = await uow.invoices.get(merchant_id, invoice_id, lock=True)
    if found is None:
        raise NotFound(f"invoice {invoice_id} not found", field="id")
    return found


async def announce_finalized(uow: InvoicingUnitOfWork, invoice: Invoice, now: datetime) -> None:
    """The webhooks of a finalized invoice: paid too when credits paid all of it. The caller
    has stored it (and `invoice_created` or `invoice_posted`)."""
    await uow.emit(invoice.merchant_id, "invoice.finalized", invoice, now)
    if invoice.status is InvoiceStatus.PAID:
        await uow.emit(invoice.merchant_id, "invoice.paid", invoice, now)


async def announce_created(uow: InvoicingUnitOfWork, invoice: Invoice, now: datetime) -> None:
    """A stored merchant invoice reaches metering (and the ledger, once finalized), with the
    webhooks of its creation and, when finalized, of its finalization."""
    await uow.invoice_created(invoice, now)
    await uow.emit(invoice.merchant_id, "invoice.created", invoice, now)
    if invoice.finalize_time is not None:
        await announce_finalized(uow, invoice, now)


async def create_invoice(
    invoicing: Invoicing,
    merchant_id: str,
    *,
    subscription_id: str,
    payment_plan_id: str,
    amount_text: str,
    period: tuple[datetime, datetime] | None,
    draft: bool,
    request: RequestKey | None,
    top_up: bool = False,
) -> Invoice:
    """An invoice of a merchant-computed amount, or a `top_up` selling that much of prepaid
    credits. `payment_plan_id` must be the subscription's plan; a period, when given, can be
    invoiced once."""
    if not payment_plan_id:
        raise InvalidArgument("payment_plan_id is required", field="payment_plan_id")
    amount = parse_decimal(
        amount_text, field="amount", max_places=6, max_value=MAX_AMOUNT, allow_zero=False
    )
    if top_up and period is not None:
        raise InvalidArgument("a top-up has no period", field="period_start")
    if period is not None and period[1] <= period[0]:
        raise InvalidArgument("period_end must be after period_start", field="period_end")
    now = invoicing.clock.now()
    async with invoicing.unit_of_work() as uow:
        first_id = await uow.idempotency.first_answer(uow.session, merchant_id, request)
        if first_id is not None:
            return await _invoice(uow, merchant_id, first_id)
        subscription = await uow.subscriptions.subscription(merchant_id, subscription_id)
        if subscription is None:
            raise NotFound(f"subscription {subscription_id} not found", field="subscription_id")
        if payment_plan_id != subscription.plan_id:
            raise InvalidArgument(
                f"payment_plan_id must be the subscription's plan {subscription.plan_id}",
                field="payment_plan_id",
            )
        invoice = rules.merchant_invoice(
            subscription, amount, invoice_id=new_id("in"), now=now, period=period, top_up=top_up
        )
        if not draft:
            invoice = rules.finalize(invoice, now, now + invoicing.settings.payment_terms)
        if not await uow.invoices.add(invoice):
            raise AlreadyExists(
                "the subscription already has an invoice for this period", field="period_start"
            )
        if not draft:
            key = credit_key(invoice, request.request_id if request else "")
            (invoice,) = await spend_credits(invoicing, uow, [(invoice, key)])
        await announce_created(uow, invoice, now)
        await uow.idempotency.remember(uow.session, merchant_id, request, invoice.id)
        await uow.commit()
    return invoice


async def get_invoice(invoicing: Invoicing, merchant_id: str, invoice_id: str) -> Invoice:
    async with invoicing.unit_of_work() as uow:
        return await _invoice(uow, merchant_id, invoice_id)


async def list_invoices(
    invoicing: Invoicing, merchant_id: str, subscription_id: str, size: int, token: str
) -> tuple[list[Invoice], str]:
    limit = pagination.page_size(size)
    async with invoicing.unit_of_work() as uow:
        found = await uow.invoices.page(
            merchant_id, subscription_id or None, pagination.creation_position(token), limit + 1
        )
    return pagination.cut_page(found, limit, lambda i: (i.create_time, i.id))


async def _change(
    invoicing: Invoicing,
    merchant_id: str,
    invoice_id: str,
    change: Callable[[Invoice, datetime], Invoice],
    event_type: str,
) -> Invoice:
    now = invoicing.clock.now()
    async with invoicing.unit_of_work() as uow:
        before = await _invoice(uow, merchant_id, invoice_id)
        changed = change(before, now)
        await uow.invoices.update(changed)
        await uow.emit(merchant_id, event_type, changed, now)
        # The ledger holds finalized invoices: voiding a posted one reverses it.
        if changed.finalize_time is not None:
            await uow.invoice_posted(changed, now)
        await uow.commit()
    return changed


async def finalize_invoice(invoicing: Invoicing, merchant_id: str, invoice_id: str) -> Invoice:
    """DRAFT -> OPEN, once the subscriber's credits paid what they could (PAID when all)."""
    now = invoicing.clock.now()
    async with invoicing.unit_of_work() as uow:
        draft = await _invoice(uow, merchant_id, invoice_id)
        opened = rules.finalize(draft, now, now + invoicing.settings.payment_terms)
        await uow.invoices.update(opened)
        (finalized,) = await spend_credits(invoicing, uow, [(opened, credit_key(opened))])
        await announce_finalized(uow, finalized, now)
        await uow.invoice_posted(finalized, now)
        await uow.commit()
    return finalized


async def void_invoice(invoicing: Invoicing, merchant_id: str, invoice_id: str) -> Invoice:
    return await _change(
        invoicing,
        merchant_id,
        invoice_id,
        lambda invoice, _: rules.move(invoice, InvoiceStatus.VOID),
        "invoice.voided",
    )


async def mark_uncollectible(invoicing: Invoicing, merchant_id: str, invoice_id: str) -> Invoice:
    return await _change(
        invoicing,
        merchant_id,
        invoice_id,
        lambda invoice, _: rules.move(invoice, InvoiceStatus.UNCOLLECTIBLE),
        "invoice.marked_uncollectible",
    )


async def mark_invoice_paid(
    invoicing: Invoicing,
    merchant_id: str,
    invoice_id: str,
    settlement_id: str,
    settlement: dict[str, Any] | None = None,
) -> Invoice:
    """Settlement confirmed the payment. Repeating it with the same settlement changes nothing;
    a PAST_DUE subscription with nothing else overdue becomes ACTIVE again."""
    if not settlement_id:
        raise InvalidArgument("settlement_id is required", field="settlement_id")
    now = invoicing.clock.now()
    async with invoicing.unit_of_work() as uow:
        invoice = await _invoice(uow, merchant_id, invoice_id)
        if invoice.status is InvoiceStatus.PAID:
            if invoice.settlement_id == settlement_id:
                return invoice
            raise FailedPrecondition(
                f"invoice {invoice_id} was paid by another settlement", field="settlement_id"
            )
        paid = rules.pay(invoice, settlement_id, now)
        await uow.invoices.update(paid)
        await uow.emit(merchant_id, "invoice.paid", paid, now)
        if settlement is not None:
            await uow.emit(merchant_id, "settlement.confirmed", settlement, now)
        subscription = await uow.subscriptions.subscription(
            merchant_id, paid.subscription_id, lock=True
        )
        assert subscription is not None
        if (
            subscription.status is SubscriptionStatus.PAST_DUE
            and not await uow.invoices.has_overdue(subscription.id, subscription.now(now))
        ):
            active = replace(
                subscription, status=SubscriptionStatus.ACTIVE, version=subscription.version + 1
            )
            await uow.subscriptions.save_subscription(active)
            await uow.subscription_changed(active, now)
            await uow.emit(merchant_id, "subscription.updated", active, now)
        await uow.commit()
    return paid
