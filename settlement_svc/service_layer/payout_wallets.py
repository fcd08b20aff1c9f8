"""The wallet each merchant is paid in: the payee of every settlement of the merchant."""

from service_kit.errors import AlreadyExists, FailedPrecondition, NotFound
from settlement_svc.domain import formats
from settlement_svc.domain.model import PayoutWallet
from settlement_svc.service_layer.unit_of_work import Settlements, SettlementUnitOfWork


async def set_payout_wallet(
    settlements: Settlements, merchant_id: str, wallet_address: str
) -> PayoutWallet:
    """Registers or replaces the merchant's wallet. A wallet pays one merchant only, so no
    merchant can claim another's payments by naming its wallet."""
    address = formats.payout_wallet(wallet_address, "wallet_address")
    wallet = PayoutWallet(merchant_id, address, settlements.clock.now())
    async with settlements.unit_of_work() as uow:
        if not await uow.payout_wallets.put(wallet):
            raise AlreadyExists(
                "this wallet is registered to another merchant", field="wallet_address"
            )
        await uow.commit()
    return wallet


async def get_payout_wallet(settlements: Settlements, merchant_id: str) -> PayoutWallet:
    async with settlements.unit_of_work() as uow:
        found = await uow.payout_wallets.get(merchant_id)
    if found is None:
        raise NotFound("no payout wallet is registered", field="wallet_address")
    return found


async def payee(uow: SettlementUnitOfWork, merchant_id: str) -> str:
    """The wallet a payment to this merchant must reach."""
    found = await uow.payout_wallets.get(merchant_id)
    if found is None:
        raise FailedPrecondition(
            "no payout wallet is registered for this merchant; the operator sets one with "
            "`python -m gateway set-wallet`",
            field="merchant_wallet_address",
        )
    return found.wallet_address
