"""EIP-2612 permit on MockUSDC, as on real USDC: signed over the owner's sequential nonce, once."""

from typing import Any

from devstack.chain import Anvil, MockUsdc, split_signature
from tests.chain import eip712
from tests.chain.conftest import (
    ANVIL_WALLET,
    APPROVAL,
    FUNDS,
    TRANSFER,
    Wallet,
    balances,
    logs,
    new_key,
    revert_reason,
    send,
    topic,
    word,
)

NO_DEADLINE = 2**256 - 1


async def signed_permit(
    usdc: MockUsdc,
    owner: Wallet,
    spender: str,
    value: int,
    *,
    deadline: int | None = None,
    nonce: int | None = None,
) -> Any:
    """The permit call with its signature; by default over the owner's current nonce, valid for
    an hour of block time."""
    message = {
        "owner": owner.address,
        "spender": spender,
        "value": value,
        "nonce": await usdc.contract.functions.nonces(owner.address).call()
        if nonce is None
        else nonce,
        "deadline": (await usdc.block_time()) + 3600 if deadline is None else deadline,
    }
    v, r, s = split_signature(eip712.sign(owner.key, usdc.address, "Permit", message))
    return usdc.contract.functions.permit(
        owner.address, spender, value, message["deadline"], v, r, s
    )


async def allowance(usdc: MockUsdc, owner: str, spender: str) -> int:
    return int(await usdc.contract.functions.allowance(owner, spender).call())


async def nonce_of(usdc: MockUsdc, owner: str) -> int:
    return int(await usdc.contract.functions.nonces(owner).call())


async def test_a_permit_approves_the_spender_who_then_transfers(
    usdc: MockUsdc, anvil: Anvil, payer: Wallet, payee: str, submitter: str
) -> None:
    spender = anvil.accounts[ANVIL_WALLET]
    assert await nonce_of(usdc, payer.address) == 0

    receipt = await send(usdc, await signed_permit(usdc, payer, spender, 600_000), submitter)

    assert logs(receipt) == [
        (usdc.address, [APPROVAL, topic(payer.address), topic(spender)], word(600_000))
    ]
    assert await allowance(usdc, payer.address, spender) == 600_000
    assert await nonce_of(usdc, payer.address) == 1
    pull = usdc.contract.functions.transferFrom(payer.address, payee, 250_000)
    receipt = await send(usdc, pull, spender)
    assert logs(receipt) == [
        (usdc.address, [TRANSFER, topic(payer.address), topic(payee)], word(250_000))
    ]
    assert await balances(usdc, payer.address, payee) == [FUNDS - 250_000, 250_000]
    assert await allowance(usdc, payer.address, spender) == 350_000


async def test_a_permit_is_used_once(usdc: MockUsdc, payer: Wallet, submitter: str) -> None:
    spender = new_key().address
    permit = await signed_permit(usdc, payer, spender, 600_000)
    await send(usdc, permit, submitter)

    # The nonce it was signed over is spent: the same signature no longer recovers the owner.
    assert await revert_reason(send(usdc, permit, submitter)) == "EIP2612: invalid signature"
    assert await nonce_of(usdc, payer.address) == 1
    assert await allowance(usdc, payer.address, spender) == 600_000


async def test_a_permit_for_a_later_nonce_is_refused(
    usdc: MockUsdc, payer: Wallet, submitter: str
) -> None:
    permit = await signed_permit(usdc, payer, new_key().address, 1, nonce=1)
    assert await revert_reason(send(usdc, permit, submitter)) == "EIP2612: invalid signature"
    assert await nonce_of(usdc, payer.address) == 0


async def test_a_permit_past_its_deadline_is_refused(
    usdc: MockUsdc, payer: Wallet, submitter: str
) -> None:
    # The next block's time is at least the latest's; the deadline itself is still valid.
    deadline = await usdc.block_time() - 1
    spender = new_key().address
    permit = await signed_permit(usdc, payer, spender, 1, deadline=deadline)
    assert await revert_reason(send(usdc, permit, submitter)) == "FiatTokenV2: permit is expired"
    assert await nonce_of(usdc, payer.address) == 0
    assert await allowance(usdc, payer.address, spender) == 0


async def test_a_permit_without_deadline_is_accepted(
    usdc: MockUsdc, payer: Wallet, submitter: str
) -> None:
    spender = new_key().address
    await send(usdc, await signed_permit(usdc, payer, spender, 7, deadline=NO_DEADLINE), submitter)
    assert await allowance(usdc, payer.address, spender) == 7


async def test_a_permit_by_another_signer_or_high_s_is_refused(
    usdc: MockUsdc, payer: Wallet, submitter: str
) -> None:
    spender = new_key().address
    deadline = await usdc.block_time() + 3600
    message = {
        "owner": payer.address,
        "spender": spender,
        "value": 5,
        "nonce": 0,
        "deadline": deadline,
    }
    by_a_stranger = eip712.sign(new_key().key, usdc.address, "Permit", message)
    twin = eip712.high_s_twin(eip712.sign(payer.key, usdc.address, "Permit", message))
    for signature, reason in (
        (by_a_stranger, "EIP2612: invalid signature"),
        (twin, "ECRecover: invalid signature 's' value"),
    ):
        v, r, s = split_signature(signature)
        permit = usdc.contract.functions.permit(payer.address, spender, 5, deadline, v, r, s)
        assert await revert_reason(send(usdc, permit, submitter)) == reason
    assert await nonce_of(usdc, payer.address) == 0
