"""MockUSDC on the session's anvil, driven as wallets and relayers drive real USDC.

Payers are fresh keys holding only what a test mints them, so no other test's balances move.
Validity windows come from the latest block's time, never from the wall clock: the session's
chain may start in the past.
"""

import secrets
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from typing import Any

import pytest
from eth_account import Account
from eth_utils.crypto import keccak
from web3.exceptions import ContractLogicError
from web3.types import TxReceipt

from devstack.chain import Anvil, MockUsdc
from devstack.mandates import Mandates, MandateState

# The session's token was deployed by anvil's account 0, which mints; it also sends the
# transactions here (a submitter pays gas only, never USDC).
MINTER = 0
# The anvil dev account that anvil itself signs for (eth_signTypedData_v4) and that sends as a
# payee or spender. No other test uses it.
ANVIL_WALLET = 8

AUTHORIZATION_USED = keccak(text="AuthorizationUsed(address,bytes32)")
AUTHORIZATION_CANCELED = keccak(text="AuthorizationCanceled(address,bytes32)")
TRANSFER = keccak(text="Transfer(address,address,uint256)")
APPROVAL = keccak(text="Approval(address,address,uint256)")

# What a payer is minted.
FUNDS = 1_000_000


@dataclass(frozen=True)
class Wallet:
    key: str
    address: str


def new_key() -> Wallet:
    account = Account.create()
    return Wallet(key=account.key.to_0x_hex(), address=account.address)


async def funded_wallet(usdc: MockUsdc, anvil: Anvil, base_units: int = FUNDS) -> Wallet:
    wallet = new_key()
    await usdc.mint(wallet.address, base_units, anvil.accounts[MINTER])
    return wallet


@pytest.fixture
async def payer(usdc: MockUsdc, anvil: Anvil) -> Wallet:
    return await funded_wallet(usdc, anvil)


@pytest.fixture
def payee() -> str:
    return new_key().address


@pytest.fixture
def submitter(anvil: Anvil) -> str:
    return anvil.accounts[MINTER]


def new_nonce() -> str:
    return "0x" + secrets.token_hex(32)


async def authorization(
    usdc: MockUsdc,
    payer: str,
    payee: str,
    value: int,
    *,
    valid_after: int = 0,
    valid_before: int | None = None,
    nonce: str | None = None,
) -> dict[str, Any]:
    """An authorization message (x402's shape); by default valid for an hour of block time."""
    return {
        "from": payer,
        "to": payee,
        "value": value,
        "validAfter": valid_after,
        "validBefore": (await usdc.block_time()) + 3600 if valid_before is None else valid_before,
        "nonce": nonce or new_nonce(),
    }


async def revert_reason(transaction: Awaitable[Any]) -> str:
    """The token's reason for refusing `transaction` (web3 asks the node to estimate its gas
    first, which runs it on the pending block and reverts)."""
    with pytest.raises(ContractLogicError) as refused:
        await transaction
    return str(refused.value.message).removeprefix("execution reverted: ")


async def send(usdc: MockUsdc, call: Any, sender: str, gas: int | None = None) -> TxReceipt:
    """Sends a contract call from an unlocked account and waits for its receipt."""
    options: dict[str, Any] = {"from": sender}
    if gas is not None:
        options["gas"] = gas
    tx_hash = await call.transact(options)
    return await usdc.w3.eth.wait_for_transaction_receipt(tx_hash)


async def receipt_of(usdc: MockUsdc, tx_hash: str) -> TxReceipt:
    return await usdc.w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]


def topic(address: str) -> bytes:
    """An indexed address as its log topic."""
    return bytes(12) + bytes.fromhex(address.removeprefix("0x"))


def word(number: int) -> bytes:
    return number.to_bytes(32, "big")


def logs(receipt: TxReceipt) -> list[tuple[str, list[bytes], bytes]]:
    """Each log of the receipt as (emitter, topics, data)."""
    return [
        (str(log["address"]), [bytes(t) for t in log["topics"]], bytes(log["data"]))
        for log in receipt["logs"]
    ]


async def balances(usdc: MockUsdc, *owners: str) -> list[int]:
    return [await usdc.balance(owner) for owner in owners]


# The mandate contract (contracts/mandates.vy). Each test runs on a snapshot of the session's
# chain, reverted afterwards (block time included): its deployment, time jumps and balances
# vanish with it, so later tests see the chain as they would have.

# A gas limit that covers every mandate call, so a refused one is mined as reverted at a set
# block time instead of refused by gas estimation on the pending block.
MANDATE_GAS = 300_000

MANDATE_CREATED = keccak(text="MandateCreated(address,address,uint256,uint256,uint256,uint256)")
MANDATE_REVOKED = keccak(text="MandateRevoked(address,address)")
COLLECTED = keccak(text="Collected(address,address,bytes32,uint256,uint256)")
COLLECTOR_CHANGED = keccak(text="CollectorChanged(address,address)")


async def sendable(usdc: MockUsdc, address: str) -> None:
    """Lets a fresh key's address send transactions through the node: gas money and
    impersonation (the node sends for it unsigned)."""
    for method, params in (
        ("anvil_setBalance", [address, hex(10**18)]),
        ("anvil_impersonateAccount", [address]),
    ):
        await usdc.w3.provider.make_request(method, params)


async def mine_next_at(usdc: MockUsdc, block_time: int) -> None:
    """The next block (the next transaction's, under automining) gets this timestamp."""
    await usdc.w3.provider.make_request("evm_setNextBlockTimestamp", [block_time])


async def mined_at(usdc: MockUsdc, receipt: TxReceipt) -> int:
    return int((await usdc.w3.eth.get_block(receipt["blockNumber"]))["timestamp"])


@pytest.fixture
async def chain_snapshot(usdc: MockUsdc) -> AsyncIterator[None]:
    snapshot = await usdc.snapshot()
    yield
    await usdc.revert(snapshot)


@pytest.fixture
async def mandate_owner(usdc: MockUsdc, chain_snapshot: None) -> str:
    owner = new_key().address
    await sendable(usdc, owner)
    return owner


@pytest.fixture
async def collector(usdc: MockUsdc, chain_snapshot: None) -> str:
    address = new_key().address
    await sendable(usdc, address)
    return address


@pytest.fixture
async def mandates(
    usdc: MockUsdc, anvil: Anvil, mandate_owner: str, collector: str
) -> AsyncIterator[Mandates]:
    contract = await Mandates.deploy(anvil.url, mandate_owner, usdc.address, collector)
    yield contract
    await contract.close()


async def approving_payer(
    usdc: MockUsdc, anvil: Anvil, mandates: Mandates, base_units: int = FUNDS
) -> Wallet:
    """A fresh payer holding `base_units`, able to send, who approved the contract for all."""
    wallet = await funded_wallet(usdc, anvil, base_units)
    await sendable(usdc, wallet.address)
    tx_hash = await usdc.contract.functions.approve(mandates.address, base_units).transact(
        {"from": wallet.address}
    )
    await usdc.w3.eth.wait_for_transaction_receipt(tx_hash)
    return wallet


@pytest.fixture
async def mandate_payer(usdc: MockUsdc, anvil: Anvil, mandates: Mandates) -> Wallet:
    return await approving_payer(usdc, anvil, mandates)


async def reason_mined(usdc: MockUsdc, receipt: TxReceipt) -> str:
    """Why a transaction mined as reverted was refused: it is replayed by eth_call on its own
    block, which runs at that block's time (the state before and after it is the same)."""
    assert receipt["status"] == 0
    sent = await usdc.w3.eth.get_transaction(receipt["transactionHash"])
    replay: dict[str, Any] = {"from": sent["from"], "to": sent["to"], "data": sent["input"]}
    call = usdc.w3.eth.call(replay, block_identifier=receipt["blockNumber"])  # type: ignore[arg-type]
    return await revert_reason(call)


@dataclass(frozen=True)
class MandateWorld:
    """Everything a mandate call may change for one payer, merchant and reference (what is
    available follows from the mandate and the block's time)."""

    mandate: MandateState
    nonce: int
    collected: bool
    collector: str
    balances: list[int]
    allowance: int


async def world_of(
    usdc: MockUsdc, mandates: Mandates, payer: str, merchant: str, reference: bytes = bytes(32)
) -> MandateWorld:
    return MandateWorld(
        mandate=await mandates.mandate(payer, merchant),
        nonce=await mandates.nonce(payer),
        collected=await mandates.collected(reference),
        collector=await mandates.collector(),
        balances=await balances(usdc, payer, merchant, mandates.address),
        allowance=int(await usdc.contract.functions.allowance(payer, mandates.address).call()),
    )
