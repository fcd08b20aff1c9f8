"""Collecting finalized invoices under their subscribers' mandates, and dunning the failures.

An invoice the ledger records for a subscriber with a live mandate gets one collection, due at
once. A collection pass reads the chain first, outside any database transaction: the mandate the
contract holds, the payer's balance and allowance, the block time. A collection that would fail
records its attempt with the reason and the next attempt's time (settings'
`collection_retry_schedule`, from the first failure) and tells invoicing (dunning webhooks, the
subscription PAST_DUE); nothing is signed, no gas is spent. One that would pass is signed by the
collector and stored with the PENDING settlement it makes (origin MANDATE) in one transaction,
then sent: the transaction manager re-sends the same bytes after a crash, the contract refuses a
second collection of the reference, and the verifier confirms the settlement like any payment.
A collection stops once its invoice is no longer open (paid another way, voided).
"""

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

import structlog

from service_kit.errors import FailedPrecondition
from service_kit.ids import new_id
from settlement_svc.adapters.chain import ChainError
from settlement_svc.adapters.mandate_contract import collect_call
from settlement_svc.domain.collections import (
    Collection,
    CollectionAttempt,
    CollectionFailure,
    CollectionStatus,
    PayerFunds,
    next_attempt,
    precheck,
)
from settlement_svc.domain.mandates import Mandate
from settlement_svc.domain.model import Settlement, SettlementOrigin, SettlementStatus
from settlement_svc.domain.payment_requests import new_reference_hash
from settlement_svc.domain.verification import to_base_units
from settlement_svc.service_layer import transactions
from settlement_svc.service_layer.payables import open_payable
from settlement_svc.service_layer.unit_of_work import (
    COLLECTION_FAILED,
    Settlements,
    SettlementUnitOfWork,
)

log = structlog.get_logger()
COLLECTION_BATCH = 100


@dataclass(frozen=True)
class Owed:
    """A finalized invoice the ledger just recorded."""

    invoice_id: str
    user_id: str
    amount_due: Decimal


async def schedule(
    uow: SettlementUnitOfWork, merchant_id: str, invoices: Sequence[Owed], now: datetime
) -> int:
    """In the transaction that records the invoices: a collection, due now, for each one whose
    subscriber has a live mandate. Returns how many were scheduled."""
    scheduled = 0
    mandates = await uow.mandates.live_of_users(merchant_id, sorted({i.user_id for i in invoices}))
    for invoice in invoices:
        mandate = mandates.get(invoice.user_id)
        if mandate is None:
            continue
        scheduled += await uow.collections.add(
            Collection(
                id=new_id("col"),
                merchant_id=merchant_id,
                invoice_id=invoice.invoice_id,
                user_id=invoice.user_id,
                mandate_id=mandate.id,
                reference_hash=new_reference_hash(),
                amount=invoice.amount_due,
                status=CollectionStatus.DUE,
                failures=0,
                next_attempt_time=now,
                first_failure_time=None,
                settlement_id="",
                create_time=now,
            )
        )
    return scheduled


@dataclass(frozen=True)
class CollectPass:
    sent: int = 0
    failed: int = 0
    stopped: int = 0

    def __bool__(self) -> bool:
        return bool(self.sent or self.failed or self.stopped)


async def collect_due(settlements: Settlements) -> CollectPass:
    """One pass over the collections due now."""
    key, contract = settlements.collector, settlements.mandates
    if key is None or not contract.address:
        return CollectPass()
    now = settlements.clock.now()
    async with settlements.unit_of_work() as uow:
        due = await uow.collections.due(now, COLLECTION_BATCH)
        mandates = [await _mandate_now(uow, collection) for collection in due]
    sent = failed = stopped = 0
    for collection, mandate in zip(due, mandates, strict=True):
        try:
            await open_payable(settlements, collection.merchant_id, collection.invoice_id, "")
        except FailedPrecondition:
            stopped += await _stop(settlements, collection)
            continue
        try:
            outcome = await _attempt(settlements, collection, mandate)
        except Exception as error:  # the node cannot be reached: the attempt waits
            log.warning("collection.chain_unreachable", collection=collection.id, error=str(error))
            return CollectPass(sent, failed, stopped)
        if isinstance(outcome, _Collect):
            sent += await _send(settlements, collection, mandate, outcome)
        else:
            failed += await _fail(settlements, collection, *outcome)
    return CollectPass(sent, failed, stopped)


async def _mandate_now(uow: SettlementUnitOfWork, collection: Collection) -> Mandate:
    """The subscriber's newest live mandate (a new one made after a failure is the one tried
    next), else the one the collection was scheduled under (the chain says why it fails)."""
    live = await uow.mandates.live_of_users(collection.merchant_id, [collection.user_id])
    found = live.get(collection.user_id) or await uow.mandates.get(collection.mandate_id)
    assert found is not None
    return found


@dataclass(frozen=True)
class _Collect:
    """The collect call that passed the checks, and its gas."""

    data: bytes
    gas: transactions.GasQuote


async def _attempt(
    settlements: Settlements, collection: Collection, mandate: Mandate
) -> _Collect | tuple[CollectionFailure, str]:
    """The collect call, or why it would fail."""
    contract, key = settlements.mandates, settlements.collector
    assert key is not None
    payer, merchant = mandate.payer_wallet_address, mandate.merchant_wallet_address
    amount = to_base_units(collection.amount)
    latest = await settlements.chain.block("latest")
    assert latest is not None
    refused = precheck(
        await contract.mandate(payer, merchant),
        PayerFunds(
            balance=await settlements.usdc.balance_of(payer),
            allowance=await settlements.usdc.allowance(payer, contract.address),
        ),
        amount,
        latest.timestamp,
    )
    if refused is not None:
        return refused
    data = collect_call(payer, merchant, amount, collection.reference_hash)
    try:
        return _Collect(data, await transactions.quote(settlements, key, contract.address, data))
    except ChainError as error:
        return CollectionFailure.REVERTED, str(error)[:500]


async def _locked(uow: SettlementUnitOfWork, collection: Collection) -> Collection | None:
    """The collection again, locked, if it is still as this pass read it: another pass (another
    replica) may have made this attempt meanwhile."""
    found = await uow.collections.lock(collection.id)
    unchanged = (
        found is not None
        and found.status is CollectionStatus.DUE
        and found.failures == collection.failures
    )
    return found if unchanged else None


async def _fail(
    settlements: Settlements, collection: Collection, failure: CollectionFailure, detail: str
) -> int:
    async with settlements.unit_of_work() as uow:
        current = await _locked(uow, collection)
        if current is None:
            return 0
        await _record_failure(settlements, uow, current, failure, detail)
        await uow.commit()
    return 1


async def reopen_failed(
    settlements: Settlements, uow: SettlementUnitOfWork, failed: Sequence[Settlement]
) -> None:
    """In the transaction that records these settlements FAILED: the collection whose
    transaction one of them followed (it reverted on chain, or never showed up) counts the
    attempt as failed and is DUE again on the schedule. The contract refuses a second payment
    of the reference, so trying again can never collect twice."""
    for settlement in failed:
        if settlement.origin is not SettlementOrigin.MANDATE:
            continue
        current = await uow.collections.lock_sent_by(settlement.id)
        if current is not None:
            await _record_failure(
                settlements, uow, current, CollectionFailure.REVERTED, settlement.failure_detail
            )


async def _record_failure(
    settlements: Settlements,
    uow: SettlementUnitOfWork,
    current: Collection,
    failure: CollectionFailure,
    detail: str,
) -> None:
    """The attempt failed: recorded with its reason and the next attempt's time (none after
    the last), and invoicing told (dunning)."""
    now = settlements.clock.now()
    failures = current.failures + 1
    first = current.first_failure_time or now
    following = next_attempt(settlements.settings.collection_retry_schedule, first, failures)
    await uow.collections.add_attempt(
        CollectionAttempt(current.id, failures, now, failure, detail, following)
    )
    await uow.collections.save(
        replace(
            current,
            failures=failures,
            first_failure_time=first,
            next_attempt_time=following,
            status=CollectionStatus.DUE if following else CollectionStatus.DONE,
        )
    )
    payload = {
        "invoice_id": current.invoice_id,
        "number": failures,
        "reason": failure.value,
        "detail": detail,
        "next_attempt_time": following.isoformat() if following else None,
    }
    await uow.outbox.add(uow.session, current.merchant_id, COLLECTION_FAILED, payload, now)
    log.info(
        "collection.failed",
        collection=current.id,
        invoice=current.invoice_id,
        reason=failure.value,
        next_attempt=following.isoformat() if following else None,
    )


async def _stop(settlements: Settlements, collection: Collection) -> int:
    async with settlements.unit_of_work() as uow:
        current = await _locked(uow, collection)
        if current is None:
            return 0
        await uow.collections.save(
            replace(current, status=CollectionStatus.DONE, next_attempt_time=None)
        )
        await uow.commit()
    return 1


async def _send(
    settlements: Settlements,
    collection: Collection,
    mandate: Mandate,
    call: _Collect,
) -> int:
    key = settlements.collector
    assert key is not None
    async with settlements.unit_of_work() as uow:
        current = await _locked(uow, collection)
        if current is None:
            return 0
        outgoing = await transactions.sign_next(
            settlements, uow, key, settlements.mandates.address, call.data, call.gas
        )
        now = settlements.clock.now()
        settlement = Settlement(
            id=new_id("stl"),
            merchant_id=current.merchant_id,
            invoice_id=current.invoice_id,
            checkout_session_id="",
            user_id=current.user_id,
            reference_hash=current.reference_hash,
            transaction_hash=outgoing.transaction_hash,
            payer_wallet_address=mandate.payer_wallet_address,
            merchant_wallet_address=mandate.merchant_wallet_address,
            amount_due=current.amount,
            status=SettlementStatus.PENDING,
            create_time=now,
            origin=SettlementOrigin.MANDATE,
        )
        if await uow.settlements.add(settlement) is not None:
            paid_meanwhile = True  # by another payment since the check: nothing to collect
        else:
            paid_meanwhile = False
            await _record_sent(uow, current, settlement)
            await uow.commit()
    if paid_meanwhile:  # the transaction above rolled back: nothing was signed for good
        return await _stop(settlements, collection)
    await transactions.send(settlements, outgoing)
    return 1


async def _record_sent(
    uow: SettlementUnitOfWork, current: Collection, settlement: Settlement
) -> None:
    await uow.collections.add_attempt(
        CollectionAttempt(current.id, current.failures + 1, settlement.create_time, None, "", None)
    )
    await uow.collections.save(
        replace(
            current,
            status=CollectionStatus.SENT,
            next_attempt_time=None,
            settlement_id=settlement.id,
        )
    )
