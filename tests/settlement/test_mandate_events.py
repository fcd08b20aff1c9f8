"""Following the mandate contract on anvil: a relayed mandate is ACTIVE once its creation is
final, a revocation or a replacement made by the payer directly on chain makes it REVOKED, each
change reaches the merchant as one mandate.created or mandate.revoked webhook however often it is
reported, and a mandate past its expiry is EXPIRED."""

import json
from typing import Any

import asyncpg
import grpc
import pytest

from billing.invoicing.v1 import invoicing_pb2 as ipb
from billing.settlement.v1 import settlement_pb2 as pb
from devstack.chain import Anvil
from devstack.mandates import Mandates
from settlement_svc.service_layer.mandate_events import MandatePass, refresh_mandates
from tests.conftest import field_violation
from tests.settlement.conftest import Shop
from tests.settlement.test_collections import (
    CAP,
    MONTH,
    PAYER,
    create_request,
    enrol,
    follow_mandates,
    mandate_of,
    relay_settlement_outbox,
    signed_mandate,
    subscriber,
)


async def mandate_webhooks(shop: Shop, db: asyncpg.Connection) -> list[tuple[str, dict[str, Any]]]:
    """(type, data) of the merchant's mandate.* webhook events, in order."""
    rows = await db.fetch(
        "SELECT payload FROM invoicing.outbox WHERE merchant_id = $1"
        " AND topic = 'webhook.event' AND payload->>'type' LIKE 'mandate.%' ORDER BY id",
        shop.merchant.merchant_id,
    )
    return [(p["type"], p["data"]) for p in (json.loads(row["payload"]) for row in rows)]


def webhook_data(mandate: pb.Mandate, transaction_hash: str) -> dict[str, Any]:
    return {
        "mandateId": mandate.id,
        "subscriptionId": mandate.subscription_id,
        "payerWalletAddress": mandate.payer_wallet_address,
        "merchantWalletAddress": mandate.merchant_wallet_address,
        "contractAddress": mandate.contract_address,
        "cap": mandate.cap,
        "periodSeconds": str(mandate.period_seconds),
        "expireTime": mandate.expire_time.ToJsonString(),
        "transactionHash": transaction_hash,
    }


async def test_a_relayed_mandate_is_active_once_its_creation_is_final_and_announced_once(
    shop: Shop, anvil: Anvil, mandates: Mandates, db: asyncpg.Connection
) -> None:
    _, subscription = await subscriber(shop)
    message, signature = await signed_mandate(shop, anvil, mandates)
    created = await shop.platform.stub.CreateMandate(
        create_request(subscription.id, message, signature), metadata=shop.metadata
    )
    settlements = shop.platform.settlements
    # Mined with one confirmation, then two: not final yet (3 are required).
    while await refresh_mandates(settlements):
        pass
    await shop.usdc.mine(1)
    while await refresh_mandates(settlements):
        pass
    assert (await mandate_of(shop, subscription.id)).status == pb.MANDATE_STATUS_PENDING
    assert await follow_mandates(shop) == 1
    active = await mandate_of(shop, subscription.id)
    assert (active.id, active.status) == (created.id, pb.MANDATE_STATUS_ACTIVE)

    await relay_settlement_outbox(shop)
    await relay_settlement_outbox(shop)
    assert await mandate_webhooks(shop, db) == [
        ("mandate.created", webhook_data(active, created.transaction_hash))
    ]
    # Settlement delivers at least once: a repeated report sends nothing more.
    again = ipb.ReportMandateChangeRequest(
        change=ipb.MANDATE_CHANGE_CREATED,
        mandate=ipb.MandateSummary(
            mandate_id=active.id,
            subscription_id=subscription.id,
            payer_wallet_address=active.payer_wallet_address,
            merchant_wallet_address=active.merchant_wallet_address,
            contract_address=active.contract_address,
            cap=active.cap,
            period_seconds=active.period_seconds,
            expire_time=active.expire_time,
            transaction_hash=created.transaction_hash,
        ),
    )
    await shop.merchant.stub.ReportMandateChange(again, metadata=shop.metadata)
    await shop.merchant.relay()
    assert len(await mandate_webhooks(shop, db)) == 1


async def test_a_revocation_made_on_chain_by_the_payer_is_followed_and_announced(
    shop: Shop, anvil: Anvil, mandates: Mandates, db: asyncpg.Connection
) -> None:
    _, subscription = await subscriber(shop)
    active = await enrol(shop, anvil, mandates, subscription.id, funds=0)
    revoked = await mandates.revoke(anvil.accounts[PAYER], shop.wallet)
    assert await follow_mandates(shop) == 1
    assert (await mandate_of(shop, subscription.id)).status == pb.MANDATE_STATUS_REVOKED
    await relay_settlement_outbox(shop)
    assert [kind for kind, _ in await mandate_webhooks(shop, db)] == [
        "mandate.created",
        "mandate.revoked",
    ]
    _, data = (await mandate_webhooks(shop, db))[1]
    assert data == webhook_data(active, "0x" + bytes(revoked["transactionHash"]).hex())
    # Nothing further happens on a second pass.
    assert await follow_mandates(shop) == 0


async def test_a_mandate_the_payer_replaces_on_chain_is_revoked(
    shop: Shop, anvil: Anvil, mandates: Mandates, db: asyncpg.Connection
) -> None:
    _, subscription = await subscriber(shop)
    active = await enrol(shop, anvil, mandates, subscription.id, funds=0)
    expiry = int(active.expire_time.seconds)
    # The contract holds one mandate per payer and merchant wallet: this one replaces it.
    await mandates.create(anvil.accounts[PAYER], shop.wallet, CAP * 2, MONTH, expiry)
    assert await follow_mandates(shop) == 1
    assert (await mandate_of(shop, subscription.id)).status == pb.MANDATE_STATUS_REVOKED
    await relay_settlement_outbox(shop)
    assert [kind for kind, _ in await mandate_webhooks(shop, db)] == [
        "mandate.created",
        "mandate.revoked",
    ]


async def test_a_mandate_past_its_expiry_is_expired(
    shop: Shop, anvil: Anvil, mandates: Mandates
) -> None:
    _, subscription = await subscriber(shop)
    message, signature = await signed_mandate(shop, anvil, mandates, lasting=120)
    await shop.platform.stub.CreateMandate(
        create_request(subscription.id, message, signature), metadata=shop.metadata
    )
    assert await follow_mandates(shop) == 1
    # The contract's clock: the chain's time passes the expiry.
    await shop.usdc.w3.provider.make_request("evm_setNextBlockTimestamp", [message["expiry"]])
    await shop.usdc.mine(1)
    assert await refresh_mandates(shop.platform.settlements) == MandatePass(
        scanned_blocks=1, expired=1
    )
    assert (await mandate_of(shop, subscription.id)).status == pb.MANDATE_STATUS_EXPIRED


async def test_a_mandate_change_for_another_merchants_subscription_is_refused(
    shop: Shop, other_shop: Shop
) -> None:
    _, subscription = await subscriber(other_shop)
    report = ipb.ReportMandateChangeRequest(
        change=ipb.MANDATE_CHANGE_REVOKED,
        mandate=ipb.MandateSummary(mandate_id="man_x", subscription_id=subscription.id),
    )
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await shop.merchant.stub.ReportMandateChange(report, metadata=shop.metadata)
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND
    assert field_violation(refused.value) == "mandate.subscription_id"
