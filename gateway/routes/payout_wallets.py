"""The payout wallet: where a merchant is paid."""

from typing import Any

from billing.settlement.v1 import settlement_pb2 as pb
from gateway import responses as r
from gateway.backends import to_json
from gateway.routes import Merchant, merchant_router

router = merchant_router("payout wallet")


@router.get("/payout-wallet", **r.documented(r.PayoutWallet, 404))
async def get_payout_wallet(merchant: Merchant) -> Any:
    """The wallet this merchant is paid in: every settlement must pay it. The operator sets it
    (`python -m gateway set-wallet`); no API key can change it."""
    stub = merchant.gateway.backends.settlement
    return to_json(await merchant.call(stub.GetPayoutWallet, pb.GetPayoutWalletRequest()))
