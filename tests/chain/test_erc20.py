"""MockUSDC's plain ERC-20 side, with FiatTokenV1's checks and revert reasons."""

from devstack.chain import Anvil, MockUsdc
from tests.chain.conftest import (
    ANVIL_WALLET,
    APPROVAL,
    TRANSFER,
    balances,
    logs,
    new_key,
    receipt_of,
    revert_reason,
    send,
    topic,
    word,
)


async def test_transfer_approve_and_transfer_from(usdc: MockUsdc, anvil: Anvil) -> None:
    owner, spender, receiver = anvil.accounts[ANVIL_WALLET], anvil.accounts[0], new_key().address
    await usdc.mint(owner, 1_000, anvil.accounts[0])
    before = await usdc.balance(owner)
    functions = usdc.contract.functions

    tx_hash = await usdc.transfer(owner, receiver, 100)
    assert logs(await receipt_of(usdc, tx_hash)) == [
        (usdc.address, [TRANSFER, topic(owner), topic(receiver)], word(100))
    ]
    receipt = await send(usdc, functions.approve(spender, 300), owner)
    assert logs(receipt) == [(usdc.address, [APPROVAL, topic(owner), topic(spender)], word(300))]
    await send(usdc, functions.transferFrom(owner, receiver, 200), spender)

    assert await balances(usdc, owner, receiver) == [before - 300, 300]
    assert await functions.allowance(owner, spender).call() == 100
    assert (
        await revert_reason(send(usdc, functions.transferFrom(owner, receiver, 101), spender))
        == "ERC20: transfer amount exceeds allowance"
    )


async def test_what_usdc_refuses_the_mock_refuses(usdc: MockUsdc, anvil: Anvil) -> None:
    holder = anvil.accounts[ANVIL_WALLET]
    functions = usdc.contract.functions
    held = await usdc.balance(holder)
    nobody = "0x" + "00" * 20
    assert (
        await revert_reason(usdc.transfer(holder, new_key().address, held + 1))
        == "ERC20: transfer amount exceeds balance"
    )
    assert (
        await revert_reason(usdc.transfer(holder, nobody, 0))
        == "ERC20: transfer to the zero address"
    )
    assert (
        await revert_reason(send(usdc, functions.approve(nobody, 1), holder))
        == "ERC20: approve to the zero address"
    )
    assert (
        await revert_reason(send(usdc, functions.mint(holder, 1), holder))
        == "only the minter mints"
    )
