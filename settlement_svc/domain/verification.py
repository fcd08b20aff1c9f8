"""Is a transaction a valid payment? A pure judgement over what the chain reports."""

from dataclasses import dataclass
from decimal import Decimal

from settlement_svc.domain.model import FailureReason, SettlementStatus, TransactionFacts

BASE_UNITS_PER_USDC = 1_000_000


def to_base_units(amount: Decimal) -> int:
    """USDC (6 decimals) to on-chain base units, exactly."""
    units = amount * BASE_UNITS_PER_USDC
    if units != units.to_integral_value():
        raise ValueError(f"{amount} has more than 6 decimals")
    return int(units)


def from_base_units(units: int) -> Decimal:
    return (Decimal(units) / BASE_UNITS_PER_USDC).quantize(Decimal("0.000001"))


@dataclass(frozen=True)
class PaymentTerms:
    """What a valid payment looks like: checksummed addresses, amount in base units."""

    token: str
    payer: str
    merchant: str
    amount_due: int


@dataclass(frozen=True)
class Verdict:
    status: SettlementStatus
    reason: FailureReason | None = None
    detail: str = ""
    amount_paid: int | None = None
    block_number: int | None = None
    confirmations: int = 0


def judge(
    terms: PaymentTerms,
    facts: TransactionFacts | None,
    *,
    required_confirmations: int,
    expired: bool,
    used_elsewhere: bool = False,
) -> Verdict:
    """Nothing is final before the transaction has `required_confirmations`: until then a reorg
    may drop or change it. A transaction that never shows up expires. One transaction settles
    one payment: `used_elsewhere` says another settlement is confirmed by it already."""
    if facts is None:
        if expired:
            return Verdict(
                SettlementStatus.FAILED, FailureReason.EXPIRED, "the transaction was not found"
            )
        return Verdict(SettlementStatus.PENDING)
    block, confirmations = facts.block_number, facts.confirmations
    if confirmations < required_confirmations:
        return Verdict(SettlementStatus.PENDING, block_number=block, confirmations=confirmations)
    failure = _failure(terms, facts)
    if failure is None and used_elsewhere:
        failure = FailureReason.TRANSACTION_USED, "the transaction already settles another payment"
    if failure is not None:
        reason, detail = failure
        return Verdict(
            SettlementStatus.FAILED, reason, detail, block_number=block, confirmations=confirmations
        )
    paid = sum(
        t.value
        for t in facts.transfers
        if (t.token, t.sender, t.receiver) == (terms.token, terms.payer, terms.merchant)
    )
    return Verdict(
        SettlementStatus.CONFIRMED,
        amount_paid=paid,
        block_number=block,
        confirmations=confirmations,
    )


def _failure(terms: PaymentTerms, facts: TransactionFacts) -> tuple[FailureReason, str] | None:
    if not facts.succeeded:
        return FailureReason.REVERTED, "the transaction reverted"
    if not facts.transfers:
        return FailureReason.NO_TRANSFER, "the transaction moved no token"
    usdc = [t for t in facts.transfers if t.token == terms.token]
    if not usdc:
        tokens = ", ".join(sorted({t.token for t in facts.transfers}))
        return FailureReason.WRONG_TOKEN, f"it moved {tokens}, not USDC at {terms.token}"
    from_payer = [t for t in usdc if t.sender == terms.payer]
    if not from_payer:
        return FailureReason.WRONG_PAYER, f"no USDC came from {terms.payer}"
    to_merchant = [t for t in from_payer if t.receiver == terms.merchant]
    if not to_merchant:
        receivers = ", ".join(sorted({t.receiver for t in from_payer}))
        return FailureReason.WRONG_RECIPIENT, f"the USDC went to {receivers}, not {terms.merchant}"
    paid = sum(t.value for t in to_merchant)
    if paid < terms.amount_due:
        return FailureReason.SHORT_AMOUNT, f"paid {paid} base units of {terms.amount_due} due"
    return None
