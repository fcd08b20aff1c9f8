"""The ledger: posting invoices, reading balances and entries, reconciling with invoicing."""

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from service_kit import pagination
from service_kit.decimals import MAX_AMOUNT, parse_decimal
from service_kit.errors import InvalidArgument
from settlement_svc.domain import formats, ledger, reconciliation
from settlement_svc.domain.credit_grants import TopUp
from settlement_svc.domain.ledger import PostedEntry, PostingKind
from settlement_svc.domain.reconciliation import LedgerTotals, Reconciliation
from settlement_svc.service_layer import collections, prepaid_credits
from settlement_svc.service_layer.unit_of_work import Settlements

MAX_INVOICES_PER_CALL = 1000
_ACCOUNT_PREFIXES = ("receivable:", "credit:")


@dataclass(frozen=True)
class InvoiceRecord:
    """A finalized or voided invoice, as invoicing reports it."""

    invoice_id: str
    user_id: str
    amount: str
    voided: bool
    # A credit top-up: paying it grants the credits it sold.
    top_up: bool = False


async def _record_invoices(
    settlements: Settlements,
    merchant_id: str,
    invoices: Sequence[InvoiceRecord],
    prefixes: Sequence[str],
) -> list[str]:
    postings: list[ledger.Posting] = []
    owed: list[collections.Owed] = []
    top_ups: list[TopUp] = []
    # Per invoice, the posting whose transaction answers for it; None for a zero invoice.
    answers: list[ledger.Posting | None] = []
    seen: set[str] = set()
    for invoice, prefix in zip(invoices, prefixes, strict=True):
        formats.reference(invoice.invoice_id, f"{prefix}invoice_id")
        formats.reference(invoice.user_id, f"{prefix}user_id")
        amount = parse_decimal(
            invoice.amount, field=f"{prefix}amount", max_places=6, max_value=MAX_AMOUNT
        )
        if invoice.invoice_id in seen:
            raise InvalidArgument(
                f"invoice {invoice.invoice_id} appears twice", field=f"{prefix}invoice_id"
            )
        seen.add(invoice.invoice_id)
        if amount == 0:
            answers.append(None)
            continue
        user, reference, top_up = invoice.user_id, invoice.invoice_id, invoice.top_up
        postings.append(
            ledger.Posting(
                PostingKind.INVOICE, reference, ledger.invoice_posting(user, amount, top_up=top_up)
            )
        )
        if invoice.voided:
            postings.append(
                ledger.Posting(
                    PostingKind.INVOICE_VOID,
                    reference,
                    ledger.void_posting(user, amount, top_up=top_up),
                )
            )
        else:
            owed.append(collections.Owed(invoice.invoice_id, user, amount))
            if top_up:
                top_ups.append(TopUp(merchant_id, invoice.invoice_id, user, amount))
        answers.append(postings[-1])
    # A voided invoice gives back the credits its finalization spent (also one they covered).
    voided = [i.invoice_id for i in invoices if i.voided]
    if not postings and not voided:
        return ["" for _ in invoices]
    async with settlements.unit_of_work() as uow:
        # A top-up paid before the ledger heard of it (its payment confirmed first) is funded
        # here; one confirmed later is funded by its verification. The top-ups' locks order the
        # two, so exactly one of them grants it.
        await uow.credit_grants.lock_top_ups([(merchant_id, t.invoice_id) for t in top_ups])
        now = settlements.clock.now()
        posted = await uow.journal.post_many(merchant_id, postings, now) if postings else {}
        # A subscriber with a mandate is collected from: in this transaction, so a recorded
        # invoice is never left uncollected.
        await collections.schedule(uow, merchant_id, owed, now)
        await uow.credit_grants.add_top_ups(top_ups)
        paid = await uow.settlements.confirmed_invoices(
            merchant_id, [t.invoice_id for t in top_ups]
        )
        await prepaid_credits.fund_top_ups(uow, [(merchant_id, i) for i in sorted(paid)], now)
        await prepaid_credits.release_voided(uow, merchant_id, voided, now)
        await uow.commit()
    return [posted[(p.kind, p.reference)] if p else "" for p in answers]


async def record_invoice(settlements: Settlements, merchant_id: str, invoice: InvoiceRecord) -> str:
    """Posts a finalized invoice once (debit receivable, credit revenue, or top_ups for a
    top-up); a voided one that was posted is reversed once. A zero invoice moves nothing.
    Returns the journal transaction."""
    (posted,) = await _record_invoices(settlements, merchant_id, [invoice], [""])
    return posted


async def record_invoices(
    settlements: Settlements, merchant_id: str, invoices: Sequence[InvoiceRecord]
) -> list[str]:
    """Records each invoice as `record_invoice` would, in one transaction: all or none.
    Returns each one's journal transaction, in order."""
    if not 1 <= len(invoices) <= MAX_INVOICES_PER_CALL:
        raise InvalidArgument(
            f"between 1 and {MAX_INVOICES_PER_CALL:,} invoices are required", field="invoices"
        )
    return await _record_invoices(
        settlements, merchant_id, invoices, [f"invoices[{i}]." for i in range(len(invoices))]
    )


def _check_account(account: str) -> str:
    if account in (ledger.REVENUE, ledger.USDC_RECEIVED, ledger.PROMOTIONS, ledger.TOP_UPS):
        return account
    if account.startswith(_ACCOUNT_PREFIXES) and account.split(":", 1)[1]:
        return account
    raise InvalidArgument(
        "account is revenue, usdc_received, promotions, top_ups, receivable:<user id> or"
        " credit:<user id>",
        field="account",
    )


async def balance(settlements: Settlements, merchant_id: str, account: str) -> Decimal:
    async with settlements.unit_of_work() as uow:
        return await uow.journal.balance(merchant_id, _check_account(account))


async def list_entries(
    settlements: Settlements, merchant_id: str, account: str, size: int, token: str
) -> tuple[list[PostedEntry], str]:
    """Entries of up to `page_size` whole journal transactions, newest first."""
    limit = pagination.page_size(size)
    async with settlements.unit_of_work() as uow:
        entries, last = await uow.journal.entries(
            merchant_id,
            _check_account(account) if account else None,
            pagination.creation_position(token),
            limit,
        )
    token = pagination.encode_token([last[0].isoformat(), last[1]]) if last else ""
    return entries, token


async def reconcile(settlements: Settlements, merchant_id: str) -> Reconciliation:
    """The ledger against invoicing's invoices, the confirmed settlements and the posted credits
    (`domain.reconciliation`)."""
    invoices = await settlements.invoicing.invoices(merchant_id)
    async with settlements.unit_of_work() as uow:
        posted = await uow.journal.posted(merchant_id)
        receivables = await uow.journal.balances(merchant_id, "receivable:")
        confirmed = await uow.settlements.confirmed(merchant_id)
        unbalanced = await uow.journal.unbalanced(merchant_id)
        credits = await uow.credits.posted_amounts(merchant_id)
        credit_accounts = await uow.journal.balances(merchant_id, "credit:")
        grants_left = await uow.credit_grants.remaining_by_user(merchant_id)
    books = LedgerTotals(posted, receivables, unbalanced, credit_accounts, grants_left)
    return reconciliation.reconcile(invoices, confirmed, books, credits)
