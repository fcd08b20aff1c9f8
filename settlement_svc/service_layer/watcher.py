"""The chain watcher: finds payments bound to payment requests in the token's logs, whoever
submitted them (our relayer, the payer's own wallet, any x402 facilitator).

A pass first checks for a reorg: when the newest stored block hash is no longer the node's, the
cursor rolls back to the highest stored block that still is, and what the watcher saw above it,
none of it final, is forgotten (its pending settlements and credits); it is seen again if it is
mined again. Then it reads the next range of blocks, with one eth_getLogs of the token
(AuthorizationUsed and Transfer), and in ONE database transaction records what the range held,
the range's block hashes, and moves the cursor past it: a crash anywhere re-reads the range
whole, and the unique indexes make a repeated read create nothing twice. The node is read with
no database transaction open. A payment that settles becomes a PENDING settlement (origin
WATCHER) that the verifier confirms after the confirmations; a credit is posted to the ledger
once its block has them and is still the node's.
"""

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog

from service_kit.ids import new_id
from settlement_svc.adapters.chain import Block, Chain
from settlement_svc.domain import ledger
from settlement_svc.domain.chain_logs import (
    AUTHORIZATION_USED_TOPIC,
    TRANSFER_TOPIC,
    CreditReason,
    Known,
    Outcome,
    UsedAuthorization,
    judge,
    used_authorizations,
)
from settlement_svc.domain.credits import Credit, CreditStatus
from settlement_svc.domain.model import Settlement, SettlementOrigin, SettlementStatus
from settlement_svc.domain.payment_requests import PaymentRequest
from settlement_svc.domain.verification import from_base_units
from settlement_svc.service_layer import prepaid_credits
from settlement_svc.service_layer.unit_of_work import Settlements, SettlementUnitOfWork

log = structlog.get_logger()
# Block headers read from the node at once.
CHAIN_CONCURRENCY = 16


@dataclass(frozen=True)
class WatchPass:
    """What one pass did. True when it did something, so the next pass starts at once."""

    scanned_blocks: int = 0
    settlements: int = 0
    credits: int = 0
    credits_posted: int = 0
    # Settlements and credits a reorg took away.
    forgotten: int = 0

    def __bool__(self) -> bool:
        return bool(self.scanned_blocks or self.credits_posted or self.forgotten)


@dataclass(frozen=True)
class _Range:
    """A range of blocks as the node answered it, consistently: the payments in it, the requests
    they are bound to, the time of each block holding one, and the hashes to remember."""

    first: int
    last: int
    payments: list[UsedAuthorization]
    requests: dict[str, PaymentRequest]
    times: dict[int, datetime]
    hashes: dict[int, str]


async def watch_once(settlements: Settlements) -> WatchPass:
    """One pass: the reorg check, the next range, then the credits that became final. While the
    node cannot be read (or is not the configured chain) it does nothing."""
    token = settlements.usdc.token
    if not token or not await settlements.chain_check.check():
        return WatchPass()
    try:
        head = await settlements.chain.head()
        async with settlements.unit_of_work() as uow:
            cursor = await _cursor(settlements, uow, token, head)
            stored = await uow.watcher.recent_blocks()
            await uow.commit()
        followed = await _follow_reorg(settlements, token, cursor, stored)
        if followed is None:
            return WatchPass()
        cursor, anchor, forgotten = followed
        scanned, settled, credited = await _scan(settlements, token, cursor, head, anchor)
        posted = await _post_final_credits(settlements, head)
    except Exception as error:
        log.warning("watcher.pass_failed", error=str(error) or type(error).__name__)
        return WatchPass()
    return WatchPass(scanned, settled, credited, posted, forgotten)


async def _cursor(
    settlements: Settlements, uow: SettlementUnitOfWork, token: str, head: int
) -> int:
    """The next block to read; at the first pass SETTLEMENT_WATCHER_START_BLOCK, or the head."""
    start = settlements.settings.watcher_start_block
    return await uow.watcher.resume(token, head if start is None else start)


async def _follow_reorg(
    settlements: Settlements, token: str, cursor: int, stored: Sequence[tuple[int, str]]
) -> tuple[int, tuple[int, str] | None, int] | None:
    """The cursor, the stored block just below it (the range read next must descend from it) and
    what a reorg made the watcher forget; None when another pass moved the cursor meanwhile."""
    if not stored:
        return cursor, None, 0
    fork = await _fork(settlements.chain, stored)
    if fork is None:
        return cursor, stored[0], 0
    async with settlements.unit_of_work() as uow:
        if await uow.watcher.lock_cursor(token) != cursor:
            return None
        forgotten = await uow.watcher.forget_above(fork)
        cursor = min(cursor, fork + 1)
        await uow.watcher.move_cursor(token, cursor, 0, 0)
        await uow.commit()
    log.warning(
        "watcher.reorg",
        fork=fork,
        settlements_forgotten=forgotten.settlements,
        credits_forgotten=forgotten.credits,
    )
    anchor = next(((n, h) for n, h in stored if n == fork), None)
    return cursor, anchor, forgotten.settlements + forgotten.credits


async def _fork(chain: Chain, stored: Sequence[tuple[int, str]]) -> int | None:
    """None while the newest stored block is still the node's (a block's hash seals all before
    it); else the highest stored block that still is, or below the oldest kept when none is."""
    for number, hash_ in stored:
        block = await chain.block(number)
        if block is not None and block.hash.lower() == hash_:
            return None if number == stored[0][0] else number
    log.error("watcher.deep_reorg", oldest_kept=stored[-1][0])
    return stored[-1][0] - 1


async def _blocks(chain: Chain, numbers: Sequence[int]) -> dict[int, Block]:
    slots = asyncio.Semaphore(CHAIN_CONCURRENCY)

    async def read(number: int) -> Block | None:
        async with slots:
            return await chain.block(number)

    found = await asyncio.gather(*map(read, numbers))
    return {block.number: block for block in found if block is not None}


async def _read_range(
    settlements: Settlements, token: str, first: int, last: int, anchor: tuple[int, str] | None
) -> _Range | None:
    """Blocks first..last, or None when the chain changed while they were read (the next pass
    finds the reorg). The last block's hash is read before and after everything else: unchanged,
    the logs and headers read between are of one chain, which descends from `anchor`, the
    stored block below `first`, when the node still has it there."""
    chain = settlements.chain
    tip = await chain.block(last)
    if tip is None:
        return None
    logs = await chain.logs(token, [[AUTHORIZATION_USED_TOPIC, TRANSFER_TOPIC]], first, last)
    payments = used_authorizations(logs)
    async with settlements.unit_of_work() as uow:
        requests = await uow.payment_requests.by_reference(sorted({p.nonce for p in payments}))
    bound = [p for p in payments if p.nonce in requests]
    wanted = {p.block_number for p in bound}
    if anchor is not None and anchor[0] == first - 1:
        wanted.add(anchor[0])
    blocks = await _blocks(chain, sorted(wanted))
    again = await chain.block(last)
    if again is None or again.hash != tip.hash:
        return None
    if any(
        p.block_number not in blocks or blocks[p.block_number].hash != p.block_hash for p in bound
    ):
        return None
    if anchor is not None and anchor[0] in wanted:
        found = blocks.get(anchor[0])
        if found is None or found.hash.lower() != anchor[1]:
            return None
    hashes = {p.block_number: p.block_hash for p in payments}
    hashes[last] = tip.hash.lower()
    times = {n: datetime.fromtimestamp(block.timestamp, UTC) for n, block in blocks.items()}
    return _Range(first, last, bound, requests, times, hashes)


async def _scan(
    settlements: Settlements,
    token: str,
    cursor: int,
    head: int,
    anchor: tuple[int, str] | None,
) -> tuple[int, int, int]:
    """Reads the next range and records it; answers (blocks read, settlements, credits)."""
    last = min(head, cursor + settlements.settings.watcher_max_blocks - 1)
    if last < cursor:
        return 0, 0, 0
    read = await _read_range(settlements, token, cursor, last, anchor)
    if read is None:
        log.info("watcher.chain_moved", first=cursor, last=last)
        return 0, 0, 0
    async with settlements.unit_of_work() as uow:
        if await uow.watcher.lock_cursor(token) != cursor:
            return 0, 0, 0  # another pass recorded this range meanwhile
        settled, credited = await _record(settlements, uow, read)
        await uow.watcher.remember_blocks(read.hashes)
        await uow.watcher.move_cursor(token, last + 1, settled, credited)
        await uow.commit()
    if settled or credited:
        log.info("watcher.recognised", first=cursor, last=last, settled=settled, credited=credited)
    return last - cursor + 1, settled, credited


async def _record(
    settlements: Settlements, uow: SettlementUnitOfWork, read: _Range
) -> tuple[int, int]:
    """Makes the range's settlements and credits; answers how many of each were stored."""
    now = settlements.clock.now()
    known = await _live_transactions(uow, {p.transaction_hash for p in read.payments})
    settled = await uow.watcher.settled_payables(
        sorted({read.requests[p.nonce].payable_id for p in read.payments})
    )
    voided = await uow.journal.voided_invoices(
        sorted({(r.merchant_id, r.invoice_id) for r in read.requests.values() if r.invoice_id})
    )
    made: list[tuple[UsedAuthorization, Settlement]] = []
    credits: list[Credit] = []
    for payment in read.payments:
        request = read.requests[payment.nonce]
        outcome, reason = judge(
            payment,
            request,
            read.times[payment.block_number],
            Known(
                known.get((request.merchant_id, payment.transaction_hash)),
                request.payable_id in settled,
                (request.merchant_id, request.invoice_id) in voided,
            ),
        )
        if outcome is Outcome.SETTLE:
            made.append((payment, _settlement(request, payment, now)))
            # Later payments of the range see this one.
            known[(request.merchant_id, payment.transaction_hash)] = payment.authorizer
            settled.add(request.payable_id)
        elif outcome is Outcome.CREDIT:
            assert reason is not None
            credits.append(_credit(request, payment, reason, now))
    stored = await uow.settlements.add_many([s for _, s in made])
    lost = [(p, s) for p, s in made if s.id not in stored]
    if lost:
        # A proof or a relay made a settlement since the lookup: of this very transaction (it
        # counts the payment), or of another for the same payable (then this one is a credit).
        now_known = await _live_transactions(uow, {p.transaction_hash for p, _ in lost})
        credits += [
            _credit(read.requests[p.nonce], p, CreditReason.ALREADY_PAID, now)
            for p, s in lost
            if (s.merchant_id, s.transaction_hash) not in now_known
        ]
    return len(stored), await uow.credits.add_many(credits)


async def _live_transactions(
    uow: SettlementUnitOfWork, hashes: set[str]
) -> dict[tuple[str, str], str]:
    """(merchant, transaction) -> payer of the live settlements of these transactions. A
    transaction our relayer replaced at a higher fee counts as the one its settlement names:
    whichever of one nonce's transactions is mined, the settlement follows it."""
    siblings = await uow.outgoing.siblings(sorted(hashes))
    asked_by = {h: seen for seen in hashes for h in siblings.get(seen, (seen,))}
    live = await uow.watcher.live_transactions(sorted(asked_by))
    return {(merchant, asked_by[hash_]): payer for (merchant, hash_), payer in live.items()}


def _settlement(request: PaymentRequest, payment: UsedAuthorization, now: datetime) -> Settlement:
    return Settlement(
        id=new_id("stl"),
        merchant_id=request.merchant_id,
        invoice_id=request.invoice_id,
        checkout_session_id=request.checkout_session_id,
        user_id=request.user_id,
        reference_hash=request.reference_hash,
        transaction_hash=payment.transaction_hash,
        payer_wallet_address=payment.authorizer,
        merchant_wallet_address=request.payee,
        amount_due=request.amount,
        status=SettlementStatus.PENDING,
        create_time=now,
        block_number=payment.block_number,
        origin=SettlementOrigin.WATCHER,
    )


def _credit(
    request: PaymentRequest, payment: UsedAuthorization, reason: CreditReason, now: datetime
) -> Credit:
    return Credit(
        id=new_id("cre"),
        merchant_id=request.merchant_id,
        user_id=request.user_id,
        reference_hash=request.reference_hash,
        invoice_id=request.invoice_id,
        checkout_session_id=request.checkout_session_id,
        transaction_hash=payment.transaction_hash,
        log_index=payment.log_index,
        payer_wallet_address=payment.authorizer,
        amount=from_base_units(payment.transfer.value),
        reason=reason,
        block_number=payment.block_number,
        block_hash=payment.block_hash,
        status=CreditStatus.PENDING,
        create_time=now,
    )


async def _post_final_credits(settlements: Settlements, head: int) -> int:
    """Posts the pending credits whose block has the confirmations and is still the node's;
    answers how many."""
    async with settlements.unit_of_work() as uow:
        pending = await uow.credits.pending_up_to(
            head - settlements.settings.required_confirmations
        )
    if not pending:
        return 0
    blocks = await _blocks(settlements.chain, sorted({c.block_number for c in pending}))
    final = [
        c.id
        for c in pending
        if c.block_number in blocks and blocks[c.block_number].hash.lower() == c.block_hash
    ]
    if not final:
        return 0
    async with settlements.unit_of_work() as uow:
        locked = await uow.credits.lock_pending(final)
        now = settlements.clock.now()
        postings: defaultdict[str, list[ledger.Posting]] = defaultdict(list)
        for credit in locked:
            entries = ledger.credit_posting(credit.user_id, credit.amount)
            postings[credit.merchant_id].append(
                ledger.Posting(ledger.PostingKind.CREDIT, credit.id, entries)
            )
        for merchant_id, merchant_postings in postings.items():
            await uow.journal.post_many(merchant_id, merchant_postings, now)
        await prepaid_credits.fund(
            uow,
            [
                prepaid_credits.Funding(
                    c.merchant_id,
                    c.user_id,
                    c.amount,
                    c.id,
                    f"a payment that settled nothing ({c.reason.value.lower()})",
                )
                for c in locked
            ],
            now,
        )
        await uow.credits.mark_posted([c.id for c in locked], now)
        await uow.commit()
    return len(locked)


async def watcher_lag(settlements: Settlements) -> int | None:
    """Blocks mined that the watcher has not read yet; None before its first pass or while the
    node cannot be read."""
    async with settlements.unit_of_work() as uow:
        cursor = await uow.watcher.cursor(settlements.usdc.token)
    if cursor is None:
        return None
    try:
        head = await settlements.chain.head()
    except Exception:
        return None
    return max(0, head + 1 - cursor)
