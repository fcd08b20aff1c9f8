"""Properties of EIP-3009 on MockUSDC over random amounts, nonces and windows: an authorization
executes exactly when it is valid at its block's time, a nonce executes at most once, and no
base unit is made or lost.

Each transaction is mined at a block time set here (the latest block's + a few seconds), and
sent with a fixed gas limit, so a refused one is mined as reverted instead of refused by gas
estimation: the verdict is the chain's, at a known time.
"""

from dataclasses import dataclass
from typing import Any

from hypothesis import event, example, given, settings
from hypothesis import strategies as st

from devstack.chain import Anvil, MockUsdc
from tests.chain import eip712
from tests.chain.conftest import MINTER, balances, funded_wallet, new_key, receipt_of

GAS = 200_000


@dataclass(frozen=True)
class Attempt:
    value: int
    # validAfter and validBefore, relative to the block time it is mined at.
    opens: int
    closes: int
    nonce: bytes
    # Seconds from the previous attempt's block (the first: from the latest block).
    delay: int


def attempts(funds: int, first_nonce: bytes) -> st.SearchStrategy[Attempt]:
    return st.builds(
        Attempt,
        # Within the payer's funds three times in four, else beyond them.
        value=st.sampled_from([True, True, True, False]).flatmap(
            lambda within: (
                st.integers(0, funds) if within else st.integers(funds + 1, 2 * funds + 1)
            )
        ),
        # Mostly open windows, with every edge: validAfter and validBefore are exclusive.
        opens=st.sampled_from(range(-5, 2)),
        closes=st.sampled_from(range(-1, 6)),
        # The second attempt reuses the first's nonce half of the time.
        nonce=st.sampled_from([first_nonce]) | st.binary(min_size=32, max_size=32),
        delay=st.integers(1, 3),
    )


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[int, list[Attempt]]:
    funds = draw(st.integers(0, 1_000_000))
    first = draw(attempts(funds, draw(st.binary(min_size=32, max_size=32))))
    second = draw(attempts(funds, first.nonce))
    return funds, [first, second]


async def mine_at(usdc: MockUsdc, block_time: int) -> None:
    await usdc.w3.provider.make_request("evm_setNextBlockTimestamp", [block_time])


A, B = b"\xaa" * 32, b"\xbb" * 32


@settings(max_examples=25, deadline=None)
@given(scenario=scenarios())
# A replay of an executed authorization.
@example(scenario=(1_000, [Attempt(400, -1, 1, A, 1), Attempt(400, -1, 1, A, 1)]))
# Refused at validAfter itself, its nonce then executes once the window is open.
@example(scenario=(1_000, [Attempt(400, 0, 1, A, 1), Attempt(400, -1, 1, A, 1)]))
# Refused at validBefore itself; another nonce then spends the whole balance.
@example(scenario=(1_000, [Attempt(1_000, -1, 0, A, 1), Attempt(1_000, -1, 1, B, 1)]))
# The whole balance spent, one unit more is refused.
@example(scenario=(1_000, [Attempt(1_000, -1, 1, A, 1), Attempt(1, -1, 1, B, 1)]))
async def test_an_authorization_executes_iff_valid_and_at_most_once(
    usdc: MockUsdc, anvil: Anvil, scenario: tuple[int, list[Attempt]]
) -> None:
    funds, planned = scenario
    submitter = anvil.accounts[MINTER]
    payer = await funded_wallet(usdc, anvil, funds)
    payee = new_key().address
    supply = await usdc.contract.functions.totalSupply().call()
    block_time = await usdc.block_time()
    balance, spent_nonces = funds, set()

    for number, attempt in enumerate(planned, 1):
        block_time += attempt.delay
        message: dict[str, Any] = {
            "from": payer.address,
            "to": payee,
            "value": attempt.value,
            "validAfter": block_time + attempt.opens,
            "validBefore": block_time + attempt.closes,
            "nonce": "0x" + attempt.nonce.hex(),
        }
        signature = eip712.sign(payer.key, usdc.address, "TransferWithAuthorization", message)
        valid = (
            attempt.opens < 0 < attempt.closes
            and attempt.nonce not in spent_nonces
            and attempt.value <= balance
        )

        await mine_at(usdc, block_time)
        tx_hash = await usdc.transfer_with_authorization(submitter, message, signature, gas=GAS)

        receipt = await receipt_of(usdc, tx_hash)
        mined_at = (await usdc.w3.eth.get_block(receipt["blockNumber"]))["timestamp"]
        assert mined_at == block_time
        assert receipt["status"] == (1 if valid else 0)
        event(f"attempt {number} {'executes' if valid else 'is refused'}")
        if valid:
            balance -= attempt.value
            spent_nonces.add(attempt.nonce)
        assert await balances(usdc, payer.address, payee) == [balance, funds - balance]
        for nonce in {planned[0].nonce, attempt.nonce}:
            used = await usdc.authorization_state(payer.address, "0x" + nonce.hex())
            assert used is (nonce in spent_nonces)

    assert await usdc.contract.functions.totalSupply().call() == supply
