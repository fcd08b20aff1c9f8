"""The ledger: posting invoices, reading balances and entries, reconciling with invoicing."""

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from service_kit import pagination
from service_kit.decimals import MAX_AMOUNT, parse_decimal
from service_kit.errors import InvalidArgument
from settlement_svc.adapters.journal_store import PostedEntry
from settlement_svc.domain import formats, ledger
from settlement_svc.domain.model import SettlementStatus
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


async def _record_invoices(
    settlements: Settlements,
    merchant_id: str,
    invoices: Sequence[InvoiceRecord],
    prefixes: Sequence[str],
) -> list[str]:
    postings: list[ledger.Posting] = []
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
        user, reference = invoice.user_id, invoice.invoice_id
        postings.append(ledger.Posting("invoice", reference, ledger.invoice_posting(user, amount)))
        if invoice.voided:
            postings.append(
                ledger.Posting("invoice_void", reference, ledger.void_posting(user, amount))
            )
        answers.append(postings[-1])
    if not postings:
        return ["" for _ in invoices]
    async with settlements.unit_of_work() as uow:
        posted = await uow.journal.post_many(merchant_id, postings, settlements.clock.now())
        await uow.commit()
    return [posted[(p.kind, p.reference)] if p else "" for p in answers]


async def record_invoice(settlements: Settlements, merchant_id: str, invoice: InvoiceRecord) -> str:
    """Posts a finalized invoice once (debit receivable, credit revenue); a voided one that was
    posted is reversed once. A zero invoice moves nothing. Returns the journal transaction."""
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
    if account in (ledger.REVENUE, ledger.USDC_RECEIVED):
        return account
    if account.startswith(_ACCOUNT_PREFIXES) and account.split(":", 1)[1]:
        return account
    raise InvalidArgument(
        "account is revenue, usdc_received, receivable:<user id> or credit:<user id>",
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


@dataclass(frozen=True)
class Difference:
    kind: str
    reference: str
    expected: str
    actual: str


@dataclass(frozen=True)
class Reconciliation:
    differences: list[Difference]
    invoices_checked: int
    settlements_checked: int


def _text(amount: Decimal | None) -> str:
    return "none" if amount is None else f"{amount.quantize(Decimal('0.000001')):f}"


async def reconcile(settlements: Settlements, merchant_id: str) -> Reconciliation:
    """The ledger against invoicing's invoices and the confirmed settlements: every finalized
    invoice posted with its amount, every paid invoice paid by a confirmed and posted settlement,
    every confirmed settlement's invoice paid, each subscriber's receivable equal to what is open,
    and every journal transaction balanced."""
    invoices = await settlements.invoicing.invoices(merchant_id)
    async with settlements.unit_of_work() as uow:
        posted = await uow.journal.posted(merchant_id)
        receivables = await uow.journal.balances(merchant_id, "receivable:")
        confirmed = {s.id: s for s in await uow.settlements.confirmed(merchant_id)}
        unbalanced = await uow.journal.unbalanced(merchant_id)
    differences: list[Difference] = []
    open_by_user: dict[str, Decimal] = {}
    paid_by: dict[str, str] = {}
    for invoice in invoices:
        if not invoice.finalized or invoice.amount == 0:
            continue
        recorded = posted.get(("invoice", invoice.id))
        if recorded != invoice.amount:
            kind = "invoice_not_posted" if recorded is None else "amount_mismatch"
            differences.append(Difference(kind, invoice.id, _text(invoice.amount), _text(recorded)))
        if invoice.status == "VOID" and ("invoice_void", invoice.id) not in posted:
            differences.append(
                Difference("void_not_posted", invoice.id, _text(invoice.amount), "none")
            )
        if invoice.status in ("OPEN", "UNCOLLECTIBLE"):
            open_by_user[invoice.user_id] = (
                open_by_user.get(invoice.user_id, Decimal(0)) + invoice.amount
            )
        if invoice.status == "PAID":
            paid_by[invoice.id] = invoice.settlement_id
            settlement = confirmed.get(invoice.settlement_id)
            if settlement is None or settlement.invoice_id != invoice.id:
                differences.append(
                    Difference(
                        "paid_without_settlement",
                        invoice.id,
                        "confirmed settlement",
                        invoice.settlement_id or "none",
                    )
                )
    for settlement in confirmed.values():
        if settlement.status is not SettlementStatus.CONFIRMED:
            continue
        kind = "payment" if settlement.invoice_id else "checkout_payment"
        if (kind, settlement.id) not in posted:
            differences.append(
                Difference(
                    "payment_not_posted", settlement.id, _text(settlement.amount_paid), "none"
                )
            )
        if settlement.invoice_id and paid_by.get(settlement.invoice_id) != settlement.id:
            differences.append(
                Difference(
                    "invoice_not_paid",
                    settlement.invoice_id,
                    settlement.id,
                    paid_by.get(settlement.invoice_id, "none"),
                )
            )
    for account in sorted(set(receivables) | {ledger.receivable(u) for u in open_by_user}):
        user_id = account.split(":", 1)[1]
        expected = open_by_user.get(user_id, Decimal(0))
        actual = receivables.get(account, Decimal(0))
        if expected != actual:
            differences.append(
                Difference("receivable_mismatch", account, _text(expected), _text(actual))
            )
    for transaction_id, difference in unbalanced:
        differences.append(Difference("unbalanced", transaction_id, "0.000000", _text(difference)))
    return Reconciliation(differences, len(invoices), len(confirmed))
