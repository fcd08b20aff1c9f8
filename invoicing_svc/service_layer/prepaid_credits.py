"""Prepaid credits: spending them on invoices as they are finalized.

Settlement owns the credits (grants, their order, the ledger). Invoicing keeps a replica of each
subscriber's balance, reported through settlement's outbox (`credit_balances`), so that
closing thousands of periods asks settlement only about the subscribers who hold credits
(usually none: no call at all).
The call happens inside the finalizing transaction: when it fails, nothing is stored and the
retry sends the same keys, for which settlement answers what it spent before.
"""

from collections.abc import Sequence

from invoicing_svc.domain.credits import takes_credits, with_credits
from invoicing_svc.domain.model import Invoice
from invoicing_svc.service_layer.unit_of_work import Invoicing, InvoicingUnitOfWork
from service_kit.errors import Unavailable


class CreditsUnavailable(Unavailable):
    """Settlement could not spend a subscriber's credits: its invoice cannot be finalized yet."""


async def spend_credits(
    invoicing: Invoicing, uow: InvoicingUnitOfWork, keyed: Sequence[tuple[Invoice, str]]
) -> list[Invoice]:
    """Each stored invoice (with its credit key) once its subscriber's credits paid what they
    could, stored so, in order; an invoice not owed, or whose subscriber holds none, is
    unchanged. The invoices are stored first so that a period invoiced already never reaches
    settlement with its key; the balances settlement answers are stored as its reports are."""
    owed = [(invoice, key) for invoice, key in keyed if takes_credits(invoice)]
    holders = await uow.credit_balances.holders({(i.merchant_id, i.user_id) for i, _ in owed})
    spending = [(i, key) for i, key in owed if (i.merchant_id, i.user_id) in holders]
    if not spending:
        return [invoice for invoice, _ in keyed]
    try:
        spent, reports = await invoicing.settlement.apply_credits(spending)
    except Unavailable as error:
        raise CreditsUnavailable(str(error)) from error
    # The balances after spending, known before their reports arrive: what a prepaid-only
    # subscription pushed from this transaction on may consume.
    now = invoicing.clock.now()
    for report in reports:
        await uow.credit_balances.report(
            report.merchant_id, report.user_id, report.balance, report.version, now
        )
    credited = {
        invoice.id: with_credits(invoice, applied)
        for (invoice, _), applied in zip(spending, spent, strict=True)
        if applied
    }
    await uow.invoices.add_credits(list(credited.values()))
    return [credited.get(invoice.id, invoice) for invoice, _ in keyed]
