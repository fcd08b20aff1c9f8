"""The double-entry ledger: accounts, and the balanced postings each business event makes.

Accounts per merchant: `revenue`, `usdc_received` (USDC that arrived on chain),
`receivable:<user>` (what a subscriber owes) and `credit:<user>` (what a subscriber overpaid).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

REVENUE = "revenue"
USDC_RECEIVED = "usdc_received"
ZERO = Decimal("0.000000")


def receivable(user_id: str) -> str:
    return f"receivable:{user_id}"


def credit(user_id: str) -> str:
    return f"credit:{user_id}"


@dataclass(frozen=True)
class Entry:
    account: str
    debit: Decimal = ZERO
    credit: Decimal = ZERO


@dataclass(frozen=True)
class Posting:
    """The entries of one business event, posted once per (kind, reference)."""

    kind: str
    reference: str
    entries: Sequence[Entry]


def is_balanced(entries: Sequence[Entry]) -> bool:
    return sum(e.debit for e in entries) == sum(e.credit for e in entries)


def invoice_posting(user_id: str, amount: Decimal) -> list[Entry]:
    """An invoice finalized: the subscriber owes it, the merchant earned it."""
    return [Entry(receivable(user_id), debit=amount), Entry(REVENUE, credit=amount)]


def void_posting(user_id: str, amount: Decimal) -> list[Entry]:
    """A posted invoice voided: the invoice posting reversed."""
    return [Entry(REVENUE, debit=amount), Entry(receivable(user_id), credit=amount)]


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
