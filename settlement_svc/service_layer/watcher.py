"""The chain watcher: finds payments bound to payment requests in the token's logs, whoever
submitted them (our relayer, the payer's own wallet, any x402 facilitator).

A pass first checks for a reorg: when a stored block hash is no longer the node's, the cursor
rolls back to the highest block that still matches, and what the watcher saw above it, not yet
final, is forgotten (pending settlements and credits); it is seen again if it is mined again.
Then it reads the next range of blocks with one eth_getLogs of the token (AuthorizationUsed and
Transfer), and in ONE database transaction records what the range held and moves the cursor
past it: a crash anywhere re-reads the range whole, and the unique indexes make a repeated read
create nothing twice. A payment that settles becomes a PENDING settlement (origin WATCHER) that
the verifier confirms after the confirmations; a credit is posted once its block is final.
"""

from datetime import UTC, datetime

import structlog

from service_kit.ids import new_id
from settlement_svc.adapters.watcher_store import Credit
from settlement_svc.domain import ledger
from settlement_svc.domain.chain_logs import (
    AUTHORIZATION_USED_TOPIC,
    TRANSFER_TOPIC,
    CreditReason,
    Outcome,
    UsedAuthorization,
    judge,
    used_authorizations,
)
from settlement_svc.domain.model import Settlement, SettlementOrigin, SettlementStatus
from settlement_svc.domain.payment_requests import PaymentRequest
from settlement_svc.domain.verification import from_base_units
from settlement_svc.service_layer.unit_of_work import Settlements, SettlementUnitOfWork

log = structlog.get_logger()


async def watch_once(settlements: Settlements) -> int:
    """One pass; returns the payments recognised (settlements and credits made)."""
    if not settlements.usdc.token or not await settlements.chain_check.check():
        return 0
    chain = settlements.chain
    try:
        head = await chain.head()
        async with settlements.unit_of_work() as uow:
            cursor = await uow.watcher.cursor()
            if cursor is None:
                start = settlements.settings.watcher_start_block
                cursor = head if start is None else start
            cursor = await _after_reorg(settlements, uow, cursor)
            last = min(head, cursor + settlements.settings.watcher_max_blocks - 1)
            if last < cursor:
                await uow.watcher.move_cursor(cursor)
                await _post_final_credits(settlements, uow, head)
                await uow.commit()
                return 0
            logs = await chain.logs(
                settlements.usdc.token, [[AUTHORIZATION_USED_TOPIC, TRANSFER_TOPIC]], cursor, last
            )
            recognised = await _record(settlements, uow, used_authorizations(logs), last)
            await uow.watcher.move_cursor(last + 1)
            await _post_final_credits(settlements, uow, head)
            await uow.commit()
    except Exception as error:
        log.warning("watcher.pass_failed", error=str(error) or type(error).__name__)
        return 0
    return recognised


async def _after_reorg(settlements: Settlements, uow: SettlementUnitOfWork, cursor: int) -> int:
    """The cursor, rolled back to just above the highest stored block the node still has."""
    stored = await uow.watcher.recent_blocks()
    if not stored:
        return cursor
    for number, hash_ in stored:
        block = await settlements.chain.block(number)
        if block is not None and block.hash.lower() == hash_:
            if number == stored[0][0]:
                return cursor
            forgotten = await uow.watcher.forget_above(number)
            log.warning("watcher.reorg", fork=number, settlements_forgotten=forgotten)
            return number + 1
    fork = stored[-1][0] - 1
    forgotten = await uow.watcher.forget_above(fork)
    log.warning("watcher.deep_reorg", fork=fork, settlements_forgotten=forgotten)
    return max(fork + 1, 0)


async def _record(
    settlements: Settlements,
    uow: SettlementUnitOfWork,
    found: list[UsedAuthorization],
    last: int,
) -> int:
    blocks = {used.block_number: used.block_hash for used in found}
    end = await settlements.chain.block(last)
    assert end is not None
    blocks[end.number] = end.hash.lower()
    await uow.watcher.remember_blocks(blocks)
    requests = await uow.payment_requests.by_reference(sorted({u.nonce for u in found}))
    times: dict[int, datetime] = {}
    recognised = 0
    for used in found:
        request = requests.get(used.nonce)
        if request is None:
            continue
        if used.block_number not in times:
            block = await settlements.chain.block(used.block_number)
            assert block is not None
            times[used.block_number] = datetime.fromtimestamp(block.timestamp, UTC)
        paid = await uow.payment_requests.confirmed_settlement(
            request.invoice_id, request.checkout_session_id
        )
        outcome, reason = judge(
            used, request, times[used.block_number], already_paid=paid is not None
        )
        if outcome is Outcome.SETTLE:
            conflict = await uow.settlements.add(_settlement(settlements, request, used))
            if conflict == "transaction_hash":
                continue  # our relay's settlement of this very payment
            if conflict is None:
                recognised += 1
                continue
            reason = CreditReason.ALREADY_PAID  # the payable has another live settlement
        if outcome is Outcome.IGNORE:
            continue
        credit = Credit(
            transaction_hash=used.transaction_hash,
            log_index=used.log_index,
            merchant_id=request.merchant_id,
            user_id=request.user_id,
            reference_hash=request.reference_hash,
            amount=from_base_units(used.value),
            reason=str(reason),
            block_number=used.block_number,
            block_hash=used.block_hash,
        )
        await uow.watcher.add_credit(credit, settlements.clock.now())
        recognised += 1
    return recognised


def _settlement(
    settlements: Settlements, request: PaymentRequest, used: UsedAuthorization
) -> Settlement:
    return Settlement(
        id=new_id("stl"),
        merchant_id=request.merchant_id,
        invoice_id=request.invoice_id,
        checkout_session_id=request.checkout_session_id,
        user_id=request.user_id,
        reference_hash=request.reference_hash,
        transaction_hash=used.transaction_hash,
        payer_wallet_address=used.authorizer,
        merchant_wallet_address=request.payee,
        amount_due=request.amount,
        status=SettlementStatus.PENDING,
        create_time=settlements.clock.now(),
        block_number=used.block_number,
        origin=SettlementOrigin.WATCHER,
    )


async def _post_final_credits(
    settlements: Settlements, uow: SettlementUnitOfWork, head: int
) -> None:
    """Credits whose block has the confirmations (and survived the reorg check) are posted."""
    final = await uow.watcher.final_credits(head - settlements.settings.required_confirmations)
    if not final:
        return
    by_merchant: dict[str, list[ledger.Posting]] = {}
    for credit in final:
        entries = ledger.credit_posting(credit.user_id, credit.amount)
        reference = f"{credit.transaction_hash}:{credit.log_index}"
        posting = ledger.Posting(ledger.PostingKind.CREDIT, reference, entries)
        by_merchant.setdefault(credit.merchant_id, []).append(posting)
    now = settlements.clock.now()
    for merchant_id, postings in by_merchant.items():
        await uow.journal.post_many(merchant_id, postings, now)
    await uow.watcher.mark_posted(final)


async def watcher_lag(settlements: Settlements) -> int | None:
    """Blocks between the head and the watcher's cursor; None before its first pass."""
    async with settlements.unit_of_work() as uow:
        cursor = await uow.watcher.peek_cursor()
    if cursor is None:
        return None
    return max(0, await settlements.chain.head() + 1 - cursor)
