"""The gas of the accounts the platform sends from (the relayer, the collector): what each
holds, whether that is below the warning level, and the relays by outcome."""

from collections.abc import Iterable
from dataclasses import dataclass

import structlog

from settlement_svc.adapters.account_key import AccountKey
from settlement_svc.domain.model import SettlementOrigin, SettlementStatus
from settlement_svc.service_layer.unit_of_work import Settlements

log = structlog.get_logger()


@dataclass(frozen=True)
class AccountGas:
    # "relayer" or "collector": what the account sends.
    role: str
    address: str
    balance_wei: int
    low: bool


def _accounts(settlements: Settlements) -> dict[str, AccountKey | None]:
    return {"relayer": settlements.relayer, "collector": settlements.collector}


async def account_gas(settlements: Settlements) -> list[AccountGas]:
    """Each configured account's ether, read from the node (raises when it cannot be reached).
    Below SETTLEMENT_RELAYER_LOW_GAS_WEI, the level of both, an account is low: what it sends
    will stop reaching the chain (signed and stored, sent again until it is) once it runs out."""
    level = settlements.settings.relayer_low_gas_wei
    found = []
    for role, key in _accounts(settlements).items():
        if key is not None:
            balance = await settlements.chain.balance(key.address)
            found.append(AccountGas(role, key.address, balance, balance < level))
    return found


class LowGasWatch:
    """Which accounts were low at the last reading; each change is logged once (a warning when
    one becomes low), not at every reading."""

    def __init__(self) -> None:
        self._low: dict[str, bool] = {}

    def changed(self, readings: Iterable[AccountGas]) -> list[AccountGas]:
        """The readings whose account became low or recovered (all of them the first time)."""
        changes = []
        for gas in readings:
            if self._low.get(gas.role) == gas.low:
                continue
            self._low[gas.role] = gas.low
            changes.append(gas)
            if gas.low:
                log.warning(f"{gas.role}.low_gas", account=gas.address, balance_wei=gas.balance_wei)
            else:
                log.info(f"{gas.role}.gas_ok", account=gas.address, balance_wei=gas.balance_wei)
        return changes


async def relays_by_outcome(settlements: Settlements) -> dict[str, int]:
    """Relayed payments by the status of their settlement (every status, 0 included)."""
    async with settlements.unit_of_work() as uow:
        counts = await uow.settlements.count_by_status(SettlementOrigin.RELAY)
    return {status.value: counts.get(status, 0) for status in SettlementStatus}
