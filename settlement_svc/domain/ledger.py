"""The double-entry ledger: accounts, and the balanced postings each business event makes.

Accounts per merchant: `revenue`, `usdc_received` (USDC that arrived on chain),
`receivable:<user>` (what a subscriber owes), `credit:<user>` (a subscriber's prepaid credits:
what it overpaid, bought and was granted), `promotions` (what the merchant's grants cost it)
and `top_ups` (credits sold by top-up invoices not paid yet).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

REVENUE = "revenue"
USDC_RECEIVED = "usdc_received"
PROMOTIONS = "promotions"
TOP_UPS = "top_ups"
ZERO = Decimal("0.000000")


def receivable(user_id: str) -> str:
    return f"receivable:{user_id}"


def credit(user_id: str) -> str:
    return f"credit:{user_id}"


class PostingKind(StrEnum):
    """The business event a journal transaction records; its reference names the invoice or the
    settlement."""

    INVOICE = "invoice"
    INVOICE_VOID = "invoice_void"
    PAYMENT = "payment"
    CHECKOUT_PAYMENT = "checkout_payment"
    # A payment bound to a request it could not settle: the subscriber's credit (reference: the
    # credit's id).
    CREDIT = "credit"
    # Prepaid credits (domain/credit_grants.py): a merchant's grant (reference: the grant), what
    # an invoice's finalization spent (the application's key), what it gave back (the key and
    # the amount spent after it), and a grant's expiry (the grant and what it wrote off in all).
    CREDIT_GRANT = "credit_grant"
    CREDIT_APPLIED = "credit_applied"
    CREDIT_RELEASED = "credit_released"
    CREDIT_EXPIRED = "credit_expired"
    # A top-up invoice paid: the credits it sold granted (reference: the invoice).
    CREDIT_TOP_UP = "credit_top_up"


@dataclass(frozen=True)
class Entry:
    account: str
    debit: Decimal = ZERO
    credit: Decimal = ZERO


@dataclass(frozen=True)
class Posting:
    """The entries of one business event, posted once per (kind, reference)."""

    kind: PostingKind
    reference: str
    entries: Sequence[Entry]


@dataclass(frozen=True)
class PostedEntry:
    """An entry as the journal holds it, with its transaction."""

    transaction_id: str
    kind: PostingKind
    reference: str
    account: str
    debit: Decimal
    credit: Decimal
    currency: str
    create_time: datetime
    line_number: int


def is_balanced(entries: Sequence[Entry]) -> bool:
    return sum(e.debit for e in entries) == sum(e.credit for e in entries)


def invoice_posting(user_id: str, amount: Decimal, *, top_up: bool = False) -> list[Entry]:
    """An invoice finalized: the subscriber owes it, the merchant earned it; a top-up is not
    earned but owes credits once paid."""
    sold = TOP_UPS if top_up else REVENUE
    return [Entry(receivable(user_id), debit=amount), Entry(sold, credit=amount)]


def void_posting(user_id: str, amount: Decimal, *, top_up: bool = False) -> list[Entry]:
    """A posted invoice voided: the invoice posting reversed."""
    sold = TOP_UPS if top_up else REVENUE
    return [Entry(sold, debit=amount), Entry(receivable(user_id), credit=amount)]


def top_up_posting(user_id: str, amount: Decimal) -> list[Entry]:
    """A top-up invoice paid (its payment posted as any invoice's): the credits it sold."""
    return [Entry(TOP_UPS, debit=amount), Entry(credit(user_id), credit=amount)]


def payment_posting(user_id: str, due: Decimal, paid: Decimal) -> list[Entry]:
    """USDC arrived for an invoice; what exceeds the amount due is the subscriber's credit."""
    entries = [Entry(USDC_RECEIVED, debit=paid), Entry(receivable(user_id), credit=due)]
    if paid > due:
        entries.append(Entry(credit(user_id), credit=paid - due))
    return entries


def checkout_payment_posting(user_id: str, due: Decimal, paid: Decimal) -> list[Entry]:
    """USDC arrived for a checkout's up-front fee: earned at once, no receivable in between."""
    entries = [Entry(USDC_RECEIVED, debit=paid), Entry(REVENUE, credit=due)]
    if paid > due:
        entries.append(Entry(credit(user_id), credit=paid - due))
    return entries


def credit_posting(user_id: str, amount: Decimal) -> list[Entry]:
    """USDC arrived that pays nothing owed (an expired or paid request, a short payment, a
    transaction that settles another payment): the subscriber's credit."""
    return [Entry(USDC_RECEIVED, debit=amount), Entry(credit(user_id), credit=amount)]


def grant_posting(user_id: str, amount: Decimal) -> list[Entry]:
    """The merchant grants credits: a promotion it pays for with future revenue."""
    return [Entry(PROMOTIONS, debit=amount), Entry(credit(user_id), credit=amount)]


def applied_posting(user_id: str, amount: Decimal) -> list[Entry]:
    """Credits spent on an invoice as it is finalized: earned from the credits (the invoice
    itself posts only what is left to pay)."""
    return [Entry(credit(user_id), debit=amount), Entry(REVENUE, credit=amount)]


def released_posting(user_id: str, amount: Decimal) -> list[Entry]:
    """Credits an application gives back: `applied_posting` reversed."""
    return [Entry(REVENUE, debit=amount), Entry(credit(user_id), credit=amount)]


def expired_posting(user_id: str, amount: Decimal) -> list[Entry]:
    """What an expired grant had left, written off: `grant_posting` reversed."""
    return [Entry(credit(user_id), debit=amount), Entry(PROMOTIONS, credit=amount)]
