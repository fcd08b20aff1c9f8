"""The platform's transaction manager: every transaction it sends from its own accounts.

A transaction and its nonce are stored signed, in the transaction of the database that records
why it is sent, before anything reaches the node; it is sent after that commits. A crash
between the two leaves it SIGNED, and the resend pass sends the same bytes (the same hash): a
crash re-sends or finds it mined, it never signs a second transaction for one purpose. A
transaction that vanished (a reorg, a node restart that lost its mempool) is sent again the
same way. The nonce is the highest of the account's stored ones plus one, or the node's count
when that is higher (the account was used elsewhere).
"""

from dataclasses import dataclass, replace

import structlog

from service_kit.ids import new_id
from settlement_svc.adapters.account_key import AccountKey, gas_price_of
from settlement_svc.adapters.outgoing_transaction_store import OutgoingStatus, OutgoingTransaction
from settlement_svc.domain.gas import replacement_price
from settlement_svc.service_layer.unit_of_work import Settlements, SettlementUnitOfWork

log = structlog.get_logger()
RESEND_BATCH = 100
# Head room over the node's gas estimate: the state may change before the transaction is mined.
GAS_MARGIN_PERCENT = 25


@dataclass(frozen=True)
class GasQuote:
    """Read from the node before the database transaction, so no lock waits for it."""

    gas: int
    gas_price: int
    node_nonce: int


async def quote(settlements: Settlements, key: AccountKey, to: str, data: bytes) -> GasQuote:
    """Gas for the call from the relayer; raises the node's ChainError when it would revert."""
    chain = settlements.chain
    estimate = await chain.estimate_gas(key.address, to, data)
    return GasQuote(
        gas=estimate + estimate * GAS_MARGIN_PERCENT // 100,
        gas_price=await chain.gas_price(),
        node_nonce=await chain.transaction_count(key.address),
    )


async def sign_next(
    settlements: Settlements,
    uow: SettlementUnitOfWork,
    key: AccountKey,
    to: str,
    data: bytes,
    gas: GasQuote,
) -> OutgoingTransaction:
    """Signs the call with the account's next nonce and stores it SIGNED in `uow`; the caller
    commits, then calls `send`."""
    await uow.outgoing.lock_account(key.address)
    nonce = max(await uow.outgoing.next_nonce(key.address), gas.node_nonce)
    signed = key.sign(
        {
            "chainId": settlements.settings.chain_id,
            "nonce": nonce,
            "to": to,
            "data": data,
            "value": 0,
            "gas": gas.gas,
            "gasPrice": gas.gas_price,
        }
    )
    transaction = OutgoingTransaction(
        id=new_id("otx"),
        account=key.address,
        nonce=nonce,
        transaction_hash=signed.hash,
        raw=signed.raw,
        status=OutgoingStatus.SIGNED,
        send_attempts=0,
        create_time=settlements.clock.now(),
        send_time=None,
        sign_time=settlements.clock.now(),
    )
    await uow.outgoing.add(transaction)
    return transaction


async def send(settlements: Settlements, transaction: OutgoingTransaction) -> bool:
    """Broadcasts the stored bytes and records the attempt; False when the node refused them
    (the resend pass tries again)."""
    error = ""
    try:
        await settlements.chain.send_raw(transaction.raw)
    except Exception as failure:
        error = str(failure)[:500] or type(failure).__name__
        # The node has it already: sent before, by this or another attempt.
        if "already known" in error.lower():
            error = ""
    async with settlements.unit_of_work() as uow:
        await uow.outgoing.record_send(transaction.id, settlements.clock.now(), error)
        await uow.commit()
    if error:
        log.warning(
            "transaction.send_failed", transaction=transaction.transaction_hash, error=error
        )
    return not error


async def resend_unmined(settlements: Settlements) -> int:
    """One pass over the transactions not final yet. One whose hash (or a hash it replaced) has
    the required confirmations is MINED, and what it was sent for follows that hash. One in a
    block and not final is left alone: if a reorg drops it, its receipt goes and it is sent again.
    One in no block is sent again when SIGNED or last sent `relayer_resend_seconds` ago, and first
    signed again at a higher fee when stuck (domain.gas). Returns how many were sent."""
    async with settlements.unit_of_work() as uow:
        unmined = await uow.outgoing.unmined(RESEND_BATCH)
    if not unmined:
        return 0
    settings, chain = settlements.settings, settlements.chain
    now = settlements.clock.now()
    final: list[tuple[OutgoingTransaction, str]] = []
    due: list[OutgoingTransaction] = []
    try:
        head = await chain.head()
        node_price: int | None = None
        for transaction in unmined:
            landed = await _landed(settlements, transaction, head)
            if landed is not None:
                hash_, confirmations = landed
                if confirmations >= settings.required_confirmations:
                    final.append((transaction, hash_))
                continue
            if (now - transaction.sign_time).total_seconds() >= settings.relayer_replace_seconds:
                node_price = node_price or await chain.gas_price()
                own = gas_price_of(transaction.raw)
                price = replacement_price(own, node_price, settings.relayer_max_gas_price_wei)
                if price is not None:
                    transaction = await _replace(settlements, transaction, price)
            if (
                transaction.status is OutgoingStatus.SIGNED
                or transaction.send_time is None
                or (now - transaction.send_time).total_seconds() >= settings.relayer_resend_seconds
            ):
                due.append(transaction)
    except Exception as error:
        log.warning("chain.unreachable", error=str(error) or type(error).__name__)
        return 0
    if final:
        async with settlements.unit_of_work() as uow:
            for transaction, hash_ in final:
                await uow.outgoing.mark_mined(transaction.id, hash_)
                if transaction.replaced_hashes:
                    await uow.settlements.follow_transaction(transaction.hashes, hash_)
                    await uow.mandates.follow_transaction(transaction.hashes, hash_)
            await uow.commit()
    sent = 0
    for transaction in due:
        sent += await send(settlements, transaction)
    return sent


async def _landed(
    settlements: Settlements, transaction: OutgoingTransaction, head: int
) -> tuple[str, int] | None:
    """The hash of this nonce's transaction that is in a block, with its confirmations."""
    for hash_ in transaction.hashes:
        confirmations = await settlements.chain.confirmations(hash_, head)
        if confirmations:
            return hash_, confirmations
    return None


async def _replace(
    settlements: Settlements, transaction: OutgoingTransaction, price: int
) -> OutgoingTransaction:
    """Signs the transaction again at `price` and stores it in its place before it is sent;
    answers it as stored, or unchanged when another pass replaced it first."""
    key = settlements.key_of(transaction.account)
    if key is None:
        return transaction
    signed = key.reprice(transaction.raw, settlements.settings.chain_id, price)
    now = settlements.clock.now()
    async with settlements.unit_of_work() as uow:
        if not await uow.outgoing.replace(transaction, signed.hash, signed.raw, now):
            return transaction
        await uow.commit()
    log.info(
        "transaction.replaced",
        replaced=transaction.transaction_hash,
        transaction=signed.hash,
        nonce=transaction.nonce,
        gas_price=price,
    )
    return replace(
        transaction,
        transaction_hash=signed.hash,
        raw=signed.raw,
        status=OutgoingStatus.SIGNED,
        sign_time=now,
        replaced_hashes=transaction.hashes,
    )
