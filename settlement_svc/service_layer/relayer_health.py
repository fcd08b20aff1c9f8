"""The relayer account's gas: what it holds, and whether that is below the warning level."""

from dataclasses import dataclass

import structlog

from settlement_svc.domain.model import SettlementOrigin, SettlementStatus
from settlement_svc.service_layer.unit_of_work import Settlements

log = structlog.get_logger()


@dataclass(frozen=True)
class RelayerGas:
    balance_wei: int
    low: bool


async def relayer_gas(settlements: Settlements) -> RelayerGas | None:
    """None when no relayer is configured. A low balance is logged as a warning each time it is
    read: relays will start failing to be mined once it runs out."""
    key = settlements.relayer
    if key is None:
        return None
    balance = await settlements.chain.balance(key.address)
    low = balance < settlements.settings.relayer_low_gas_wei
    if low:
        log.warning("relayer.low_gas", account=key.address, balance_wei=balance)
    return RelayerGas(balance, low)


async def relays_by_outcome(settlements: Settlements) -> dict[str, int]:
    """Relayed payments by the status of their settlement (every status, 0 included)."""
    async with settlements.unit_of_work() as uow:
        counts = await uow.settlements.count_by_status(SettlementOrigin.RELAY)
    return {status.value: counts.get(status, 0) for status in SettlementStatus}
