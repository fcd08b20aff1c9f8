"""The platform's transaction manager: every transaction it sends from its own accounts.

A transaction and its nonce are stored signed, in the transaction of the database that records
why it is sent, before anything reaches the node; it is sent after that commits. A crash
between the two leaves it SIGNED, and the resend pass sends the same bytes (the same hash): a
crash re-sends or finds it mined, it never signs a second transaction for one purpose. A
transaction that vanished (a reorg, a node restart that lost its mempool) is sent again the
same way. The nonce is the highest of the account's stored ones plus one, or the node's count
when that is higher (the account was used elsewhere).
"""

from dataclasses import dataclass

import structlog

from service_kit.ids import new_id
from settlement_svc.adapters.account_key import AccountKey
from settlement_svc.adapters.outgoing_transaction_store import OutgoingStatus, OutgoingTransaction
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
    """One pass: marks mined what the chain has, sends again what is SIGNED or was last sent
    `relayer_resend_seconds` ago. Returns how many were sent."""
    async with settlements.unit_of_work() as uow:
        unmined = await uow.outgoing.unmined(RESEND_BATCH)
    if not unmined:
        return 0
    now = settlements.clock.now()
    wait = settlements.settings.relayer_resend_seconds
    mined, due = [], []
    for transaction in unmined:
        try:
            if await settlements.chain.mined(transaction.transaction_hash):
                mined.append(transaction.id)
                continue
        except Exception as error:
            log.warning("chain.unreachable", transaction=transaction.id, error=str(error))
            return 0
        if (
            transaction.status is OutgoingStatus.SIGNED
            or transaction.send_time is None
            or (now - transaction.send_time).total_seconds() >= wait
        ):
            due.append(transaction)
    async with settlements.unit_of_work() as uow:
        await uow.outgoing.mark_mined(mined)
        await uow.commit()
    sent = 0
    for transaction in due:
        sent += await send(settlements, transaction)
    return sent
