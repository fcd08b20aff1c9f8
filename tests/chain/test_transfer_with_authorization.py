"""An EIP-3009 authorization executes on MockUSDC whoever signs it as a wallet signs for real
USDC: eth-account, the official x402 SDK, and anvil's own eth_signTypedData_v4 (what the hosted
page's injected wallet calls)."""

import inspect
import json
from types import SimpleNamespace
from typing import Any

import pytest
import x402.mechanisms.evm.exact.client as x402_exact_client
from eth_account import Account
from x402 import PaymentRequirements
from x402.mechanisms.evm.exact import ExactEvmScheme

from devstack.chain import Anvil, MockUsdc, authorization_arguments
from tests.chain import eip712
from tests.chain.conftest import (
    ANVIL_WALLET,
    AUTHORIZATION_USED,
    FUNDS,
    TRANSFER,
    Wallet,
    authorization,
    balances,
    logs,
    new_key,
    receipt_of,
    send,
    topic,
    word,
)


async def assert_executed(
    usdc: MockUsdc, tx_hash: str, message: dict[str, Any], before: list[int]
) -> None:
    """The authorization moved exactly its value, spent its nonce, and logged AuthorizationUsed
    and then Transfer, as USDC does."""
    payer, payee, value = message["from"], message["to"], int(message["value"])
    nonce = bytes.fromhex(message["nonce"].removeprefix("0x"))
    receipt = await receipt_of(usdc, tx_hash)
    assert receipt["status"] == 1
    assert await balances(usdc, payer, payee) == [before[0] - value, before[1] + value]
    assert await usdc.authorization_state(payer, message["nonce"]) is True
    assert logs(receipt) == [
        (usdc.address, [AUTHORIZATION_USED, topic(payer), nonce], b""),
        (usdc.address, [TRANSFER, topic(payer), topic(payee)], word(value)),
    ]


async def test_an_eth_account_signature_executes(
    usdc: MockUsdc, payer: Wallet, payee: str, submitter: str
) -> None:
    message = await authorization(usdc, payer.address, payee, 250_000)
    signature = eip712.sign(payer.key, usdc.address, "TransferWithAuthorization", message)
    assert await usdc.authorization_state(payer.address, message["nonce"]) is False

    tx_hash = await usdc.transfer_with_authorization(submitter, message, signature)

    await assert_executed(usdc, tx_hash, message, [FUNDS, 0])


async def test_an_x402_sdk_payment_executes(
    usdc: MockUsdc, payer: Wallet, payee: str, submitter: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The SDK sets validAfter 0 and validBefore its clock + max_timeout_seconds; its clock is
    # pinned to the chain's, whose blocks may be far from the wall clock.
    block_time = await usdc.block_time()
    monkeypatch.setattr(x402_exact_client, "time", SimpleNamespace(time=lambda: block_time))
    payment = ExactEvmScheme(Account.from_key(payer.key)).create_payment_payload(
        PaymentRequirements(
            scheme="exact",
            network="eip155:31337",
            asset=usdc.address,
            amount="500000",
            pay_to=payee,
            max_timeout_seconds=300,
            extra={"name": "USD Coin", "version": "2"},
        )
    )
    message = payment["authorization"]
    assert {key: message[key] for key in ("from", "to", "value", "validAfter", "validBefore")} == {
        "from": payer.address,
        "to": payee,
        "value": "500000",
        "validAfter": "0",
        "validBefore": str(block_time + 300),
    }

    tx_hash = await usdc.transfer_with_authorization(submitter, message, payment["signature"])

    await assert_executed(usdc, tx_hash, message, [FUNDS, 0])


def test_the_x402_sdk_chooses_the_nonce_itself() -> None:
    """create_payment_payload takes no nonce: it draws 32 random bytes for each payment, so an
    SDK payment cannot carry a nonce of ours (a payment request's reference hash)."""
    parameters = inspect.signature(ExactEvmScheme.create_payment_payload).parameters
    assert list(parameters) == ["self", "requirements", "extensions"]
    scheme = ExactEvmScheme(Account.from_key(new_key().key))
    requirements = PaymentRequirements(
        scheme="exact",
        network="eip155:31337",
        asset=new_key().address,
        amount="1",
        pay_to=new_key().address,
        max_timeout_seconds=300,
        extra={"name": "USD Coin", "version": "2"},
    )
    nonces = {scheme.create_payment_payload(requirements)["authorization"]["nonce"] for _ in "ab"}
    assert len(nonces) == 2
    assert all(len(bytes.fromhex(nonce.removeprefix("0x"))) == 32 for nonce in nonces)


async def test_a_signature_from_anvils_eth_sign_typed_data_v4_executes(
    usdc: MockUsdc, anvil: Anvil, payee: str, submitter: str
) -> None:
    signer = anvil.accounts[ANVIL_WALLET]
    await usdc.mint(signer, 300_000, submitter)
    before = await balances(usdc, signer, payee)
    message = await authorization(usdc, signer, payee, 300_000)

    response = await usdc.w3.provider.make_request(
        "eth_signTypedData_v4",
        [signer, json.dumps(eip712.typed_data(usdc.address, "TransferWithAuthorization", message))],
    )
    tx_hash = await usdc.transfer_with_authorization(submitter, message, response["result"])

    await assert_executed(usdc, tx_hash, message, before)


async def test_the_payee_receives_with_authorization(
    usdc: MockUsdc, anvil: Anvil, payer: Wallet
) -> None:
    payee = anvil.accounts[ANVIL_WALLET]
    before = await balances(usdc, payer.address, payee)
    message = await authorization(usdc, payer.address, payee, 400_000)
    signature = eip712.sign(payer.key, usdc.address, "ReceiveWithAuthorization", message)

    receipt = await send(
        usdc,
        usdc.contract.functions.receiveWithAuthorization(
            *authorization_arguments(message, signature)
        ),
        payee,
    )

    await assert_executed(usdc, receipt["transactionHash"].to_0x_hex(), message, before)
