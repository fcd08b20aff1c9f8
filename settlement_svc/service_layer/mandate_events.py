"""Following the mandate contract: each subscriber's mandate as the chain holds it.

A pass reads the contract's MandateCreated and MandateRevoked logs from a persisted cursor, up
to the newest block with the required confirmations (final: no reorg check is needed), with no
database transaction open; then, in one transaction, it moves the records those logs concern and
the cursor past the range. A relayed mandate becomes ACTIVE when its creation is final; a
revocation, or a later mandate of the same payer for the same merchant wallet (the contract holds
one per pair), makes it REVOKED, also when the payer did it on chain without the platform.
Invoicing hears of each (the mandate.created and mandate.revoked webhooks) through the outbox.
A mandate becomes EXPIRED when the chain's time passes its expiry (the contract's own clock).
"""

from dataclasses import dataclass, replace
from datetime import UTC, datetime

import structlog

from settlement_svc.domain.mandate_logs import (
    MANDATE_CREATED_TOPIC,
    MANDATE_REVOKED_TOPIC,
    MandateChange,
    MandateEvent,
    mandate_events,
)
from settlement_svc.domain.mandates import MandateStatus, moves_on
from settlement_svc.service_layer.unit_of_work import (
    MANDATE_CHANGED,
    Settlements,
    SettlementUnitOfWork,
)

log = structlog.get_logger()
# What a move tells invoicing (a webhook each).
ANNOUNCED = {
    MandateStatus.ACTIVE: MandateChange.CREATED,
    MandateStatus.REVOKED: MandateChange.REVOKED,
}


@dataclass(frozen=True)
class MandatePass:
    scanned_blocks: int = 0
    changed: int = 0
    expired: int = 0

    def __bool__(self) -> bool:
        return bool(self.scanned_blocks or self.changed or self.expired)


async def refresh_mandates(settlements: Settlements) -> MandatePass:
    """One pass: the contract's next final range of logs, then the expiries."""
    contract = settlements.mandates.address
    if not contract or not await settlements.chain_check.check():
        return MandatePass()
    try:
        latest = await settlements.chain.block("latest")
        assert latest is not None
        final = latest.number - settlements.settings.required_confirmations + 1
        async with settlements.unit_of_work() as uow:
            start = settlements.settings.mandates_start_block
            cursor = await uow.watcher.resume(contract, final if start is None else start)
            await uow.commit()
        last = min(final, cursor + settlements.settings.watcher_max_blocks - 1)
        logs = []
        if last >= cursor:
            topics = [[MANDATE_CREATED_TOPIC, MANDATE_REVOKED_TOPIC]]
            logs = await settlements.chain.logs(contract, topics, cursor, last)
    except Exception as error:
        log.warning("mandates.pass_failed", error=str(error) or type(error).__name__)
        return MandatePass()
    async with settlements.unit_of_work() as uow:
        scanned = changed = 0
        if last >= cursor and await uow.watcher.lock_cursor(contract) == cursor:
            changed = await _apply(settlements, uow, contract, mandate_events(logs))
            await uow.watcher.move_cursor(contract, last + 1, 0, 0)
            scanned = last - cursor + 1
        expired = await uow.mandates.expire_due(datetime.fromtimestamp(latest.timestamp, UTC))
        await uow.commit()
    return MandatePass(scanned, changed, expired)


async def _apply(
    settlements: Settlements,
    uow: SettlementUnitOfWork,
    contract: str,
    events: list[MandateEvent],
) -> int:
    """Moves the records the events concern, in chain order; answers how many moves."""
    live = await uow.mandates.live_of_pairs(
        contract, sorted({(e.payer, e.merchant) for e in events})
    )
    now = settlements.clock.now()
    changed = 0
    for event in events:
        pair = event.payer, event.merchant
        for mandate, status in moves_on(live.get(pair, []), event):
            await uow.mandates.set_status(mandate.id, mandate.status, status, now)
            payload = {
                "mandate_id": mandate.id,
                "change": ANNOUNCED[status].value,
                "transaction_hash": event.transaction_hash,
            }
            await uow.outbox.add(uow.session, mandate.merchant_id, MANDATE_CHANGED, payload, now)
            log.info("mandate.changed", mandate=mandate.id, status=status.value)
            changed += 1
            # Later events of the range see the move.
            live[pair] = [
                replace(m, status=status) if m.id == mandate.id else m for m in live[pair]
            ]
    return changed
