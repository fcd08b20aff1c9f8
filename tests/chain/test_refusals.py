"""What MockUSDC refuses of an EIP-3009 authorization, with real USDC's revert reasons, and that
a refusal moves nothing and spends no nonce."""

from typing import Any

import pytest
from eth_account.messages import encode_typed_data
from eth_utils.crypto import keccak

from devstack.chain import Anvil, MockUsdc, authorization_arguments, split_signature
from tests.chain import eip712
from tests.chain.conftest import (
    ANVIL_WALLET,
    AUTHORIZATION_CANCELED,
    FUNDS,
    Wallet,
    authorization,
    balances,
    logs,
    new_key,
    new_nonce,
    revert_reason,
    send,
    topic,
)

TRANSFER_TYPE = "TransferWithAuthorization"


def signed(payer: Wallet, usdc: MockUsdc, message: dict[str, Any]) -> str:
    return eip712.sign(payer.key, usdc.address, TRANSFER_TYPE, message)


async def refused(usdc: MockUsdc, submitter: str, message: dict[str, Any], signature: str) -> str:
    """The reason the token refuses the authorization; it must leave everything as it was."""
    before = await balances(usdc, message["from"], message["to"])
    used_before = await usdc.authorization_state(message["from"], message["nonce"])
    reason = await revert_reason(usdc.transfer_with_authorization(submitter, message, signature))
    assert await balances(usdc, message["from"], message["to"]) == before
    assert await usdc.authorization_state(message["from"], message["nonce"]) is used_before
    return reason


async def test_an_authorization_executes_once(
    usdc: MockUsdc, payer: Wallet, payee: str, submitter: str
) -> None:
    message = await authorization(usdc, payer.address, payee, 100_000)
    signature = signed(payer, usdc, message)
    await usdc.transfer_with_authorization(submitter, message, signature)

    assert (
        await refused(usdc, submitter, message, signature)
        == "FiatTokenV2: authorization is used or canceled"
    )
    assert await balances(usdc, payer.address, payee) == [FUNDS - 100_000, 100_000]


async def test_another_signer_is_refused(
    usdc: MockUsdc, payer: Wallet, payee: str, submitter: str
) -> None:
    message = await authorization(usdc, payer.address, payee, 100_000)
    signature = eip712.sign(new_key().key, usdc.address, TRANSFER_TYPE, message)
    assert await refused(usdc, submitter, message, signature) == "FiatTokenV2: invalid signature"


@pytest.mark.parametrize(
    ("field", "tampered"),
    [
        ("value", lambda value: value + 1),
        ("to", lambda _: new_key().address),
        ("validBefore", lambda valid_before: valid_before + 1),
        ("validAfter", lambda valid_after: valid_after + 1),
        ("nonce", lambda _: new_nonce()),
    ],
)
async def test_a_tampered_field_breaks_the_signature(
    usdc: MockUsdc, payer: Wallet, payee: str, submitter: str, field: str, tampered: Any
) -> None:
    message = await authorization(usdc, payer.address, payee, 100_000)
    signature = signed(payer, usdc, message)
    forged = {**message, field: tampered(message[field])}
    assert await refused(usdc, submitter, forged, signature) == "FiatTokenV2: invalid signature"


@pytest.mark.parametrize(
    "domain",
    [
        {"verifying_contract": "0x" + "11" * 20},  # signed for another token
        {"chain_id": 1},  # signed for another chain
    ],
)
async def test_a_signature_for_another_domain_is_refused(
    usdc: MockUsdc, payer: Wallet, payee: str, submitter: str, domain: dict[str, Any]
) -> None:
    message = await authorization(usdc, payer.address, payee, 100_000)
    signature = eip712.sign(
        payer.key,
        domain.get("verifying_contract", usdc.address),
        TRANSFER_TYPE,
        message,
        chain_id=domain.get("chain_id", 31337),
    )
    assert await refused(usdc, submitter, message, signature) == "FiatTokenV2: invalid signature"


async def test_an_authorization_before_its_window_is_refused(
    usdc: MockUsdc, payer: Wallet, payee: str, submitter: str
) -> None:
    opens = await usdc.block_time() + 3600
    message = await authorization(usdc, payer.address, payee, 100_000, valid_after=opens)
    assert (
        await refused(usdc, submitter, message, signed(payer, usdc, message))
        == "FiatTokenV2: authorization is not yet valid"
    )


async def test_an_expired_authorization_is_refused(
    usdc: MockUsdc, payer: Wallet, payee: str, submitter: str
) -> None:
    # The next block's time is at least the latest's, and validBefore is exclusive.
    closes = await usdc.block_time()
    message = await authorization(usdc, payer.address, payee, 100_000, valid_before=closes)
    assert (
        await refused(usdc, submitter, message, signed(payer, usdc, message))
        == "FiatTokenV2: authorization is expired"
    )


async def test_more_than_the_balance_is_refused_and_the_nonce_stays_unused(
    usdc: MockUsdc, payer: Wallet, payee: str, submitter: str
) -> None:
    message = await authorization(usdc, payer.address, payee, FUNDS + 1)
    assert (
        await refused(usdc, submitter, message, signed(payer, usdc, message))
        == "ERC20: transfer amount exceeds balance"
    )
    assert await usdc.authorization_state(payer.address, message["nonce"]) is False


def cancellation(payer: Wallet, usdc: MockUsdc, nonce: str, signer: str | None = None) -> Any:
    signature = eip712.sign(
        signer or payer.key,
        usdc.address,
        "CancelAuthorization",
        {"authorizer": payer.address, "nonce": nonce},
    )
    v, r, s = split_signature(signature)
    nonce_bytes = bytes.fromhex(nonce.removeprefix("0x"))
    return usdc.contract.functions.cancelAuthorization(payer.address, nonce_bytes, v, r, s)


async def test_a_canceled_authorization_is_refused(
    usdc: MockUsdc, payer: Wallet, payee: str, submitter: str
) -> None:
    message = await authorization(usdc, payer.address, payee, 100_000)
    nonce = bytes.fromhex(message["nonce"].removeprefix("0x"))

    receipt = await send(usdc, cancellation(payer, usdc, message["nonce"]), submitter)

    assert logs(receipt) == [
        (usdc.address, [AUTHORIZATION_CANCELED, topic(payer.address), nonce], b"")
    ]
    assert await usdc.authorization_state(payer.address, message["nonce"]) is True
    assert (
        await refused(usdc, submitter, message, signed(payer, usdc, message))
        == "FiatTokenV2: authorization is used or canceled"
    )
    # Canceling twice is refused as well.
    assert (
        await revert_reason(send(usdc, cancellation(payer, usdc, message["nonce"]), submitter))
        == "FiatTokenV2: authorization is used or canceled"
    )


async def test_only_the_authorizer_cancels(usdc: MockUsdc, payer: Wallet, submitter: str) -> None:
    nonce = new_nonce()
    by_a_stranger = cancellation(payer, usdc, nonce, signer=new_key().key)
    assert (
        await revert_reason(send(usdc, by_a_stranger, submitter))
        == "FiatTokenV2: invalid signature"
    )
    assert await usdc.authorization_state(payer.address, nonce) is False


async def test_a_used_authorization_cannot_be_canceled(
    usdc: MockUsdc, payer: Wallet, payee: str, submitter: str
) -> None:
    message = await authorization(usdc, payer.address, payee, 100_000)
    await usdc.transfer_with_authorization(submitter, message, signed(payer, usdc, message))
    assert (
        await revert_reason(send(usdc, cancellation(payer, usdc, message["nonce"]), submitter))
        == "FiatTokenV2: authorization is used or canceled"
    )


async def test_only_the_payee_receives_with_authorization(
    usdc: MockUsdc, anvil: Anvil, payer: Wallet, submitter: str
) -> None:
    payee = anvil.accounts[ANVIL_WALLET]
    message = await authorization(usdc, payer.address, payee, 100_000)
    signature = eip712.sign(payer.key, usdc.address, "ReceiveWithAuthorization", message)
    receive = usdc.contract.functions.receiveWithAuthorization(
        *authorization_arguments(message, signature)
    )
    assert (
        await revert_reason(send(usdc, receive, submitter))
        == "FiatTokenV2: caller must be the payee"
    )
    # A TransferWithAuthorization signature is no ReceiveWithAuthorization one, even from the
    # payee: the type hash is part of what is signed.
    as_transfer = usdc.contract.functions.receiveWithAuthorization(
        *authorization_arguments(message, signed(payer, usdc, message))
    )
    assert await revert_reason(send(usdc, as_transfer, payee)) == "FiatTokenV2: invalid signature"
    assert await usdc.authorization_state(payer.address, message["nonce"]) is False


async def test_the_high_s_twin_of_a_valid_signature_is_refused(
    usdc: MockUsdc, payer: Wallet, payee: str, submitter: str
) -> None:
    message = await authorization(usdc, payer.address, payee, 100_000)
    twin = eip712.high_s_twin(signed(payer, usdc, message))
    # The twin is a valid signature by the payer: the ecrecover precompile recovers the payer.
    signable = encode_typed_data(
        full_message=eip712.typed_data(usdc.address, TRANSFER_TYPE, message)
    )
    digest = keccak(b"\x19\x01" + signable.header + signable.body)
    v, r, s = split_signature(twin)
    recovered = await usdc.w3.eth.call(
        {"to": "0x" + "00" * 19 + "01", "data": digest + v.to_bytes(32, "big") + r + s}
    )
    assert recovered == bytes(12) + bytes.fromhex(payer.address[2:])

    assert await refused(usdc, submitter, message, twin) == "ECRecover: invalid signature 's' value"


async def test_a_v_other_than_27_or_28_is_refused(
    usdc: MockUsdc, payer: Wallet, payee: str, submitter: str
) -> None:
    message = await authorization(usdc, payer.address, payee, 100_000)
    signature = signed(payer, usdc, message)
    assert (
        await refused(usdc, submitter, message, signature[:-2] + "1d")  # v = 29
        == "ECRecover: invalid signature 'v' value"
    )


async def test_a_signature_that_recovers_no_address_is_refused(
    usdc: MockUsdc, submitter: str, payee: str
) -> None:
    # r = 0 is no point of the curve: ecrecover yields the zero address, which must not pass
    # for the zero address's authorization.
    message = await authorization(usdc, "0x" + "00" * 20, payee, 0)
    unrecoverable = "0x" + "00" * 32 + "00" * 31 + "01" + "1b"
    assert await refused(usdc, submitter, message, unrecoverable) == "ECRecover: invalid signature"
