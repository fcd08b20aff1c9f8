"""Issuing and reading payment requests.

A request is issued the first time its payable is asked for one, and again once the last one
expired unpaid; every way a reference hash reaches a payer (the REST invoice, the hosted pages,
this RPC) goes through here, so the watcher knows every nonce a payer can have signed.
"""

from dataclasses import dataclass

from service_kit.errors import FailedPrecondition, NotFound
from settlement_svc.domain import formats
from settlement_svc.domain.payment_requests import (
    PaymentRequest,
    PaymentRequestStatus,
    new_reference_hash,
)
from settlement_svc.service_layer.payables import one_payable, open_payable
from settlement_svc.service_layer.payout_wallets import payee
from settlement_svc.service_layer.unit_of_work import Settlements


@dataclass(frozen=True)
class RequestView:
    """A request as its payer sees it now."""

    request: PaymentRequest
    status: PaymentRequestStatus
    settlement_id: str


async def payment_request(
    settlements: Settlements, merchant_id: str, invoice_id: str, checkout_session_id: str
) -> RequestView:
    """The payable's live request, issued if it has none. A paid (or no longer payable) one keeps
    answering its last request."""
    one_payable(invoice_id, checkout_session_id)
    found = await _current(settlements, merchant_id, invoice_id, checkout_session_id)
    if found is not None and found.status is not PaymentRequestStatus.EXPIRED:
        return found
    try:
        payable = await open_payable(settlements, merchant_id, invoice_id, checkout_session_id)
    except FailedPrecondition:
        if found is not None:
            return found
        raise
    if payable.amount_due <= 0:
        raise FailedPrecondition(
            "nothing to pay: the amount due is zero",
            field="invoice_id" if invoice_id else "checkout_session_id",
        )
    config = settlements.settings
    async with settlements.unit_of_work() as uow:
        await uow.payment_requests.lock_payable(invoice_id or checkout_session_id)
        now = settlements.clock.now()
        latest = await uow.payment_requests.latest(merchant_id, invoice_id, checkout_session_id)
        if latest is not None and not latest.expired(now):
            # Issued by another caller while this one asked invoicing.
            return RequestView(latest, PaymentRequestStatus.OPEN, "")
        issued = PaymentRequest(
            reference_hash=new_reference_hash(),
            merchant_id=merchant_id,
            invoice_id=invoice_id,
            checkout_session_id=checkout_session_id,
            user_id=payable.user_id,
            amount=payable.amount_due,
            payee=await payee(uow, merchant_id),
            token=settlements.usdc.token,
            chain_id=config.chain_id,
            create_time=now,
            expire_time=now + config.payment_request_ttl,
        )
        await uow.payment_requests.add(issued)
        await uow.commit()
    return RequestView(issued, PaymentRequestStatus.OPEN, "")


async def _current(
    settlements: Settlements, merchant_id: str, invoice_id: str, checkout_session_id: str
) -> RequestView | None:
    async with settlements.unit_of_work() as uow:
        latest = await uow.payment_requests.latest(merchant_id, invoice_id, checkout_session_id)
        if latest is None:
            return None
        paid = await uow.payment_requests.confirmed_settlement(invoice_id, checkout_session_id)
    status = latest.status(settlements.clock.now(), paid)
    return RequestView(latest, status, paid or "")


async def locate_invoice(settlements: Settlements, invoice_id: str) -> str:
    """The merchant of an invoice with a payment request or recorded by the ledger (a request
    may be shown before invoicing's outbox has posted the invoice); NOT_FOUND otherwise."""
    formats.reference(invoice_id, "invoice_id")
    async with settlements.unit_of_work() as uow:
        owner = await uow.payment_requests.invoice_owner(
            invoice_id
        ) or await uow.journal.invoice_owner(invoice_id)
    if owner is None:
        raise NotFound(f"invoice {invoice_id} not found", field="invoice_id")
    return owner
