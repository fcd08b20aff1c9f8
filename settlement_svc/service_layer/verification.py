"""Checking pending settlements against the chain until they are confirmed, failed or expired.

A pass reads its settlements from the database, then the chain, with no transaction open while
it waits for the node; then it writes every verdict in one short transaction. A confirmation
posts the payment to the ledger and tells invoicing (through the outbox) in the transaction that
records it; a failure tells invoicing too, and puts a collection whose transaction failed back
on its retry schedule. Passes of several replicas (or a submission's own
check) may read the same settlement at once: the one that writes second finds it decided and
leaves it, so a verdict is written, posted and announced once.
"""

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

import structlog
from eth_utils.address import to_checksum_address

from settlement_svc.domain import ledger
from settlement_svc.domain.model import Settlement, SettlementStatus, TransactionFacts
from settlement_svc.domain.verification import PaymentTerms, from_base_units, judge, to_base_units
from settlement_svc.service_layer import collections, prepaid_credits
from settlement_svc.service_layer.unit_of_work import FAILED, SETTLED, Settlements
from settlement_svc.settings import SettlementSettings

log = structlog.get_logger()
BATCH = 200
# Receipts read from the node at once by one pass.
CHAIN_CONCURRENCY = 16
# What invoicing hears of a verdict; nothing while PENDING.
OUTCOME_TOPICS = {SettlementStatus.CONFIRMED: SETTLED, SettlementStatus.FAILED: FAILED}


async def verify_pending(settlements: Settlements) -> int:
    """One pass over the oldest pending settlements. Returns how many reached a verdict.
    While the chain cannot be reached, or is not the configured one, they stay PENDING."""
    if not await settlements.chain_check.check():
        return 0
    async with settlements.unit_of_work() as uow:
        pending = await uow.settlements.pending(BATCH)
    recorded = await verify(settlements, pending)
    return sum(1 for s in recorded.values() if s.status is not SettlementStatus.PENDING)


async def verify(settlements: Settlements, batch: Sequence[Settlement]) -> dict[str, Settlement]:
    """Checks these pending settlements on chain and records what it shows; answers them as
    recorded, by id. Left out (and left as they are): those whose chain read failed, and those
    another pass decided meanwhile. The caller checked `chain_check`."""
    if not batch:
        return {}
    try:
        found = await settlements.chain.facts(
            [s.transaction_hash for s in batch], CHAIN_CONCURRENCY
        )
    except Exception as error:
        log.warning("chain.unreachable", settlements=len(batch), error=str(error))
        return {}
    read: list[tuple[Settlement, TransactionFacts | None]] = []
    for settlement, facts in zip(batch, found, strict=True):
        if isinstance(facts, Exception):
            log.warning("chain.unreachable", settlement=settlement.id, error=str(facts))
        else:
            read.append((settlement, facts))
    return await _record(settlements, read) if read else {}


async def _record(
    settlements: Settlements, read: Sequence[tuple[Settlement, TransactionFacts | None]]
) -> dict[str, Settlement]:
    async with settlements.unit_of_work() as uow:
        locked = await uow.settlements.lock_for_verdicts([s for s, _ in read])
        now = settlements.clock.now()
        # A transaction the platform still sends (or a replacement of it) has not expired.
        held = await uow.outgoing.siblings([s.transaction_hash for s, _ in read], unmined_only=True)
        judged = _judge_all(
            settlements.settings,
            [(s, facts) for s, facts in read if s.id in locked.pending],
            set(locked.confirmed_transactions),
            set(held),
            now,
        )
        await uow.settlements.record_verdicts(judged)
        payments: defaultdict[str, list[ledger.Posting]] = defaultdict(list)
        for settlement in judged:
            if settlement.status is SettlementStatus.CONFIRMED:
                payments[settlement.merchant_id].append(_payment(settlement))
        for merchant_id, postings in payments.items():
            await uow.journal.post_many(merchant_id, postings, now)
        paid = [
            (s.merchant_id, s.invoice_id)
            for s in judged
            if s.status is SettlementStatus.CONFIRMED and s.invoice_id
        ]
        # Before the credit accounts: the recording of a top-up invoice takes these first too.
        await uow.credit_grants.lock_top_ups(paid)
        # What a payment left beyond what it owed is the subscriber's credit to spend.
        fundings = [f for s in judged if (f := _excess(s)) is not None]
        await prepaid_credits.fund(uow, fundings, now)
        await prepaid_credits.fund_top_ups(
            uow,
            paid,
            now,
        )
        await collections.reopen_failed(
            settlements, uow, [s for s in judged if s.status is SettlementStatus.FAILED]
        )
        for settlement in judged:
            if topic := OUTCOME_TOPICS.get(settlement.status):
                payload = {"settlement_id": settlement.id}
                await uow.outbox.add(uow.session, settlement.merchant_id, topic, payload, now)
        await uow.commit()
    return {s.id: s for s in judged}


def _judge_all(
    settings: SettlementSettings,
    read: Sequence[tuple[Settlement, TransactionFacts | None]],
    confirmed: set[str],
    held: set[str],
    now: datetime,
) -> list[Settlement]:
    """Each settlement with its verdict. `confirmed`: the transactions that settle a payment
    already; one transaction settles one payment, also within the batch (the first one wins).
    `held`: the platform's own transactions still being sent, which do not expire."""
    token = str(to_checksum_address(settings.usdc_contract_address))
    judged = []
    for settlement, facts in read:
        verdict = judge(
            PaymentTerms(
                token=token,
                payer=settlement.payer_wallet_address,
                merchant=settlement.merchant_wallet_address,
                amount_due=to_base_units(settlement.amount_due),
            ),
            facts,
            required_confirmations=settings.required_confirmations,
            expired=now - settlement.create_time >= settings.settlement_expiry
            and settlement.transaction_hash not in held,
            used_elsewhere=settlement.transaction_hash in confirmed,
        )
        if verdict.status is SettlementStatus.CONFIRMED:
            confirmed.add(settlement.transaction_hash)
        judged.append(
            replace(
                settlement,
                status=verdict.status,
                failure_reason=verdict.reason,
                failure_detail=verdict.detail,
                amount_paid=None
                if verdict.amount_paid is None
                else from_base_units(verdict.amount_paid),
                # Kept while the receipt is missing: the block it was last seen in is what the
                # chain watcher's reorg check forgets its pending settlements by.
                block_number=settlement.block_number if facts is None else verdict.block_number,
                confirmations=verdict.confirmations,
                confirm_time=now if verdict.status is SettlementStatus.CONFIRMED else None,
            )
        )
    return judged


def _excess(settlement: Settlement) -> prepaid_credits.Funding | None:
    paid = settlement.amount_paid
    if settlement.status is not SettlementStatus.CONFIRMED or paid is None:
        return None
    if paid <= settlement.amount_due:
        return None
    payable = settlement.invoice_id or settlement.checkout_session_id
    return prepaid_credits.Funding(
        settlement.merchant_id,
        settlement.user_id,
        paid - settlement.amount_due,
        settlement.id,
        f"paid beyond what {payable} owed",
    )


def _payment(settlement: Settlement) -> ledger.Posting:
    assert settlement.amount_paid is not None
    if settlement.invoice_id:
        entries = ledger.payment_posting(
            settlement.user_id, settlement.amount_due, settlement.amount_paid
        )
        return ledger.Posting(ledger.PostingKind.PAYMENT, settlement.id, entries)
    entries = ledger.checkout_payment_posting(
        settlement.user_id, settlement.amount_due, settlement.amount_paid
    )
    return ledger.Posting(ledger.PostingKind.CHECKOUT_PAYMENT, settlement.id, entries)
