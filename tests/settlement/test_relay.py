"""The relay: a subscriber's signed EIP-3009 authorization, checked off chain and submitted from
the platform's relayer, settles the invoice it is bound to, once."""

from dataclasses import replace
from typing import Any

import grpc
import pytest
from eth_account import Account

from billing.invoicing.v1 import invoicing_pb2 as ipb
from billing.settlement.v1 import settlement_pb2 as pb
from devstack.chain import Anvil
from service_kit.errors import FailedPrecondition
from settlement_svc.api import translate
from settlement_svc.service_layer import relays, transactions
from settlement_svc.service_layer.transactions import resend_unmined
from tests.conftest import RELAYER_ACCOUNT, field_violation
from tests.settlement.authorizations import sign
from tests.settlement.conftest import Shop
from tests.settlement.test_payment_requests import request_of

PAYER = 1
STRANGER = 2


async def relay(shop: Shop, invoice_id: str, authorization: pb.Authorization) -> pb.Settlement:
    return await shop.platform.stub.RelayAuthorization(
        pb.RelayAuthorizationRequest(invoice_id=invoice_id, authorization=authorization),
        metadata=shop.metadata,
    )


async def sent_by_relayer(shop: Shop, anvil: Anvil) -> int:
    relayer = shop.usdc.w3.to_checksum_address(anvil.accounts[RELAYER_ACCOUNT])
    return int(await shop.usdc.w3.eth.get_transaction_count(relayer))


async def funded_request(shop: Shop, amount: str = "0.5") -> tuple[ipb.Invoice, pb.PaymentRequest]:
    invoice = await shop.open_invoice(amount)
    request = await request_of(shop, invoice.id)
    await shop.usdc.mint(shop.payer, int(request.amount_base_units), shop.minter)
    return invoice, request


async def test_a_relayed_authorization_pays_the_invoice_it_is_bound_to(
    shop: Shop, anvil: Anvil
) -> None:
    invoice, request = await funded_request(shop)
    payer_before = await shop.usdc.balance(shop.payer)
    sent_before = await sent_by_relayer(shop, anvil)
    settlement = await relay(shop, invoice.id, sign(anvil.private_keys[PAYER], request))
    assert settlement.status == pb.SETTLEMENT_STATUS_PENDING
    assert settlement.origin == pb.SETTLEMENT_ORIGIN_RELAY
    assert (settlement.invoice_id, settlement.reference_hash) == (
        invoice.id,
        request.reference_hash,
    )
    assert (settlement.payer_wallet_address, settlement.merchant_wallet_address) == (
        shop.payer,
        shop.wallet,
    )
    assert await sent_by_relayer(shop, anvil) == sent_before + 1
    assert await shop.usdc.balance(shop.payer) == payer_before - 500_000
    assert await shop.usdc.balance(shop.wallet) == 500_000
    assert await shop.usdc.authorization_state(shop.payer, request.reference_hash) is True
    await shop.settle()
    confirmed = await shop.get(settlement.id)
    assert (confirmed.status, confirmed.amount_paid) == (pb.SETTLEMENT_STATUS_CONFIRMED, "0.500000")
    paid = await shop.merchant.stub.GetInvoice(
        ipb.GetInvoiceRequest(id=invoice.id), metadata=shop.metadata
    )
    assert (paid.status, paid.settlement_id) == (ipb.INVOICE_STATUS_PAID, settlement.id)
    after = await request_of(shop, invoice.id)
    assert (after.status, after.settlement_id) == (pb.PAYMENT_REQUEST_STATUS_PAID, settlement.id)
    assert after.reference_hash == request.reference_hash
    assert await shop.balance(f"receivable:{invoice.user_id}") == "0.000000"


async def test_the_same_authorization_relayed_twice_sends_one_transaction(
    shop: Shop, anvil: Anvil
) -> None:
    invoice, request = await funded_request(shop)
    authorization = sign(anvil.private_keys[PAYER], request)
    sent_before = await sent_by_relayer(shop, anvil)
    first = await relay(shop, invoice.id, authorization)
    second = await relay(shop, invoice.id, authorization)
    assert second.id == first.id
    assert second.transaction_hash == first.transaction_hash
    assert await sent_by_relayer(shop, anvil) == sent_before + 1
    assert await shop.usdc.balance(shop.wallet) == 500_000


def _refusals(anvil: Anvil, request: pb.PaymentRequest, now: int) -> list[tuple[Any, ...]]:
    payer = anvil.private_keys[PAYER]
    expiry = request.expire_time.seconds
    forged = sign(anvil.private_keys[STRANGER], request, **{"from": anvil.accounts[PAYER]})
    return [
        (sign(payer, request, nonce="0x" + "11" * 32), "authorization.nonce"),
        (sign(payer, request, to=anvil.accounts[STRANGER]), "authorization.to_address"),
        (sign(payer, request, value=499_999), "authorization.value"),
        (sign(payer, request, validAfter=now + 3600), "authorization.valid_after"),
        (sign(payer, request, validBefore=now + 30), "authorization.valid_before"),
        (sign(payer, request, validBefore=expiry + 1), "authorization.valid_before"),
        (forged, "authorization.signature"),
    ]


async def test_a_bad_authorization_is_refused_precisely_before_anything_is_sent(
    shop: Shop, anvil: Anvil
) -> None:
    invoice, request = await funded_request(shop)
    latest = await shop.usdc.w3.eth.get_block("latest")
    sent_before = await sent_by_relayer(shop, anvil)
    payer_before = await shop.usdc.balance(shop.payer)
    for authorization, field in _refusals(anvil, request, int(latest["timestamp"])):
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await relay(shop, invoice.id, authorization)
        assert error.value.code() is grpc.StatusCode.INVALID_ARGUMENT, field
        assert field_violation(error.value) == field
    malformed = sign(anvil.private_keys[PAYER], request)
    malformed.signature = malformed.signature[:-2]
    with pytest.raises(grpc.aio.AioRpcError) as short:
        await relay(shop, invoice.id, malformed)
    assert field_violation(short.value) == "authorization.signature"
    assert await sent_by_relayer(shop, anvil) == sent_before
    assert await shop.usdc.balance(shop.payer) == payer_before
    assert await shop.usdc.authorization_state(shop.payer, request.reference_hash) is False
    listed = await shop.platform.stub.ListSettlements(
        pb.ListSettlementsRequest(invoice_id=invoice.id), metadata=shop.metadata
    )
    assert list(listed.settlements) == []


async def test_a_payer_without_the_money_is_refused(shop: Shop, anvil: Anvil) -> None:
    invoice = await shop.open_invoice("0.5")
    request = await request_of(shop, invoice.id)
    broke = Account.create()
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await relay(shop, invoice.id, sign(broke.key.hex(), request))
    assert error.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert field_violation(error.value) == "authorization.value"
    assert error.value.details() == "the payer holds 0 base units; the authorization moves 500000"


async def test_an_authorization_for_another_merchants_invoice_is_refused(
    shop: Shop, other_shop: Shop, anvil: Anvil
) -> None:
    invoice, request = await funded_request(shop)
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await relay(other_shop, invoice.id, sign(anvil.private_keys[PAYER], request))
    assert error.value.code() is grpc.StatusCode.NOT_FOUND
    assert await shop.usdc.authorization_state(shop.payer, request.reference_hash) is False


async def test_a_relay_of_a_paid_invoice_is_refused(shop: Shop, anvil: Anvil) -> None:
    invoice, request = await funded_request(shop)
    await relay(shop, invoice.id, sign(anvil.private_keys[PAYER], request))
    await shop.settle()
    await shop.usdc.mint(anvil.accounts[STRANGER], 500_000, shop.minter)
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await relay(shop, invoice.id, sign(anvil.private_keys[STRANGER], request))
    assert error.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert error.value.details() == "the payment request is PAID: nothing to pay"


async def test_without_a_relayer_key_the_relay_says_so(shop: Shop, anvil: Anvil) -> None:
    invoice, request = await funded_request(shop)
    unconfigured = replace(shop.platform.settlements, relayer=None)
    authorization = translate.authorization_from_proto(sign(anvil.private_keys[PAYER], request))
    with pytest.raises(FailedPrecondition) as error:
        await relays.relay_authorization(
            unconfigured, shop.merchant.merchant_id, invoice.id, "", authorization
        )
    assert "SETTLEMENT_RELAYER_PRIVATE_KEY" in str(error.value)


FIELDS = (
    "from_address",
    "to_address",
    "value",
    "valid_after",
    "valid_before",
    "nonce",
    "signature",
)


async def test_a_relay_that_crashed_before_sending_is_sent_once_on_retry(
    shop: Shop, anvil: Anvil, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The process dies after the signed transaction is stored and before it reaches the node:
    the relay retried answers the same settlement and signs nothing new; the resend pass sends
    the stored bytes, once."""
    invoice, request = await funded_request(shop)
    authorization = sign(anvil.private_keys[PAYER], request)
    sent_before = await sent_by_relayer(shop, anvil)

    async def crash(*_: object) -> bool:
        raise SystemExit("killed between commit and send")

    with monkeypatch.context() as patched:
        patched.setattr(transactions, "send", crash)
        with pytest.raises(SystemExit):
            await relays.relay_authorization(
                shop.platform.settlements,
                shop.merchant.merchant_id,
                invoice.id,
                "",
                translate.authorization_from_proto(authorization),
            )
    assert await sent_by_relayer(shop, anvil) == sent_before
    retried = await relay(shop, invoice.id, authorization)
    assert await sent_by_relayer(shop, anvil) == sent_before
    assert await resend_unmined(shop.platform.settlements) >= 1
    assert await resend_unmined(shop.platform.settlements) == 0
    assert await sent_by_relayer(shop, anvil) == sent_before + 1
    assert await shop.usdc.balance(shop.wallet) == 500_000
    await shop.settle()
    assert (await shop.get(retried.id)).status == pb.SETTLEMENT_STATUS_CONFIRMED
