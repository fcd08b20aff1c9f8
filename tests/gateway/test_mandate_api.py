"""GET /api/v1/subscriptions/{id}/mandate: a subscription's auto-pay mandate over REST."""

from devstack.chain import Anvil, MockUsdc
from devstack.mandates import Mandates
from tests.gateway.conftest import Api
from tests.invoicing.conftest import Merchant
from tests.settlement.conftest import Shop
from tests.settlement.test_collections import MONTH, PAYER, enrol, subscriber


async def test_a_subscriptions_mandate_is_shown_as_the_chain_holds_it(
    api: Api, anvil: Anvil, usdc: MockUsdc, mandates: Mandates
) -> None:
    platform = api.platform
    merchant = Merchant(
        platform.invoicing, platform.invoicing_stub, platform.metering_stub, api.merchant_id
    )
    shop = Shop(merchant, platform, usdc, anvil.accounts[0], anvil.accounts[1], api.wallet)
    _, subscription = await subscriber(shop)
    path = f"/api/v1/subscriptions/{subscription.id}/mandate"

    missing = await api.get(path)
    assert (missing.status_code, missing.json()["error"]["param"]) == (404, "subscriptionId")

    mandate = await enrol(shop, anvil, mandates, subscription.id, funds=0)
    found = await api.get(path)
    assert found.status_code == 200
    assert found.json() == {
        "id": mandate.id,
        "subscriptionId": subscription.id,
        "userId": subscription.user_id,
        "payerWalletAddress": anvil.accounts[PAYER],
        "merchantWalletAddress": api.wallet,
        "contractAddress": mandates.address,
        "cap": "2.000000",
        "capBaseUnits": "2000000",
        "periodSeconds": str(MONTH),
        "expireTime": mandate.expire_time.ToJsonString(),
        "status": "ACTIVE",
        "transactionHash": mandate.transaction_hash,
        "createTime": mandate.create_time.ToJsonString(),
    }
