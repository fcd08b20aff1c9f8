"""Everything the mandate contract refuses, each with its exact reason, and that a refusal
changes nothing: not the mandate, the payer's nonce, the reference, the collector, any
balance or the allowance.

Each refused call is mined as reverted at a set block time (a fixed gas limit) and its reason
read by replaying it on its own block, so time checks are judged at a known time.
"""

import re
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import vyper  # type: ignore[import-untyped]

from devstack import mandate_signature
from devstack.chain import CHAIN_ID, Anvil, MockUsdc, split_signature
from devstack.mandates import MANDATES_SOURCE, Mandates, compile_mandates
from tests.chain import eip712
from tests.chain.conftest import (
    MANDATE_GAS,
    Wallet,
    approving_payer,
    mine_next_at,
    mined_at,
    new_key,
    reason_mined,
    revert_reason,
    send,
    sendable,
    world_of,
)

CAP = 100_000
DAY = 86_400
REFERENCE = b"\x42" * 32


async def refused_at(
    usdc: MockUsdc,
    mandates: Mandates,
    payer: str,
    merchant: str,
    block_time: int,
    sending: Callable[[], Awaitable[Any]],
    reference: bytes = REFERENCE,
) -> str:
    """Mines `sending()` at `block_time`, which must revert, and answers its reason; the
    world of (payer, merchant, reference) must be as before."""
    before = await world_of(usdc, mandates, payer, merchant, reference)
    await mine_next_at(usdc, block_time)
    receipt = await sending()
    assert await mined_at(usdc, receipt) == block_time
    reason = await reason_mined(usdc, receipt)
    assert await world_of(usdc, mandates, payer, merchant, reference) == before
    return reason


async def live_mandate(
    usdc: MockUsdc, mandates: Mandates, payer: str, merchant: str, **terms: int
) -> int:
    """Creates a mandate of CAP a day for 30 days (or `terms`); answers its start."""
    start = await usdc.block_time() + 5
    await mine_next_at(usdc, start)
    await mandates.create(
        payer,
        merchant,
        terms.get("cap", CAP),
        terms.get("period", DAY),
        terms.get("expiry", start + 30 * DAY),
    )
    return start


# --- Creation -------------------------------------------------------------------------------

# (merchant: "zero", "payer", "contract" or a fresh address; cap; period; expiry from now;
# the reason)
BAD_TERMS = [
    ("zero", CAP, DAY, DAY, "merchant is zero"),
    ("payer", CAP, DAY, DAY, "merchant is payer"),
    ("contract", CAP, DAY, DAY, "merchant is this contract"),
    ("fresh", 0, DAY, DAY, "cap is zero"),
    ("fresh", CAP, 0, DAY, "period is zero"),
    ("fresh", CAP, DAY, 0, "expiry passed"),
    ("fresh", CAP, DAY, -1, "expiry passed"),
]


def merchant_for(kind: str, payer: str, mandates: Mandates) -> str:
    return {
        "zero": "0x" + "00" * 20,
        "payer": payer,
        "contract": mandates.address,
    }.get(kind) or new_key().address


@pytest.mark.parametrize(("kind", "cap", "period", "expires_in", "reason"), BAD_TERMS)
async def test_a_payer_cannot_create_a_mandate_on_bad_terms(
    usdc: MockUsdc,
    mandates: Mandates,
    mandate_payer: Wallet,
    kind: str,
    cap: int,
    period: int,
    expires_in: int,
    reason: str,
) -> None:
    payer = mandate_payer.address
    merchant = merchant_for(kind, payer, mandates)
    now = await usdc.block_time() + 5

    async def create() -> Any:
        return await mandates.create(payer, merchant, cap, period, now + expires_in, MANDATE_GAS)

    assert await refused_at(usdc, mandates, payer, merchant, now, create) == reason


@pytest.mark.parametrize(("kind", "cap", "period", "expires_in", "reason"), BAD_TERMS)
async def test_a_signed_mandate_on_bad_terms_is_refused_alike(
    usdc: MockUsdc,
    mandates: Mandates,
    collector: str,
    kind: str,
    cap: int,
    period: int,
    expires_in: int,
    reason: str,
) -> None:
    payer = new_key()
    merchant = merchant_for(kind, payer.address, mandates)
    now = await usdc.block_time() + 5
    message = {
        "payer": payer.address,
        "merchant": merchant,
        "cap": cap,
        "period": period,
        "expiry": now + expires_in,
        "nonce": 0,
        "deadline": now + 600,
    }
    signature = mandate_signature.sign(payer.key, CHAIN_ID, mandates.address, message)

    async def relay() -> Any:
        return await mandates.create_with_signature(collector, message, signature, MANDATE_GAS)

    assert await refused_at(usdc, mandates, payer.address, merchant, now, relay) == reason


# --- Signatures -----------------------------------------------------------------------------


async def signed_terms(
    usdc: MockUsdc, mandates: Mandates, payer: Wallet, merchant: str, **changes: Any
) -> tuple[dict[str, Any], str]:
    """A valid mandate message for the payer's current nonce (then `changes`) and its
    signature by the payer."""
    now = await usdc.block_time()
    message = {
        "payer": payer.address,
        "merchant": merchant,
        "cap": CAP,
        "period": DAY,
        "expiry": now + 30 * DAY,
        "nonce": await mandates.nonce(payer.address),
        "deadline": now + 600,
    } | changes
    return message, mandate_signature.sign(payer.key, CHAIN_ID, mandates.address, message)


async def relay_refused(
    usdc: MockUsdc,
    mandates: Mandates,
    relayer: str,
    message: dict[str, Any],
    signature: str,
    block_time: int | None = None,
) -> str:
    at = (await usdc.block_time()) + 5 if block_time is None else block_time

    async def relay() -> Any:
        return await mandates.create_with_signature(relayer, message, signature, MANDATE_GAS)

    return await refused_at(usdc, mandates, message["payer"], message["merchant"], at, relay)


async def test_a_signature_creates_once(usdc: MockUsdc, mandates: Mandates, collector: str) -> None:
    payer, merchant = new_key(), new_key().address
    message, signature = await signed_terms(usdc, mandates, payer, merchant)
    await mandates.create_with_signature(collector, message, signature)

    assert await relay_refused(usdc, mandates, collector, message, signature) == (
        "invalid signature"
    )
    assert await mandates.nonce(payer.address) == 1


async def test_another_signer_is_refused(
    usdc: MockUsdc, mandates: Mandates, collector: str
) -> None:
    payer, merchant = new_key(), new_key().address
    message, _ = await signed_terms(usdc, mandates, payer, merchant)
    forged = mandate_signature.sign(new_key().key, CHAIN_ID, mandates.address, message)

    assert await relay_refused(usdc, mandates, collector, message, forged) == "invalid signature"


@pytest.mark.parametrize(
    ("field", "value"),
    [("cap", CAP + 1), ("period", DAY + 1), ("expiry", None), ("deadline", None)],
)
async def test_a_tampered_term_is_refused(
    usdc: MockUsdc, mandates: Mandates, collector: str, field: str, value: int | None
) -> None:
    payer, merchant = new_key(), new_key().address
    message, signature = await signed_terms(usdc, mandates, payer, merchant)
    tampered = message | {field: message[field] + 1 if value is None else value}

    assert await relay_refused(usdc, mandates, collector, tampered, signature) == (
        "invalid signature"
    )


async def test_a_signature_for_another_merchant_or_payer_is_refused(
    usdc: MockUsdc, mandates: Mandates, collector: str
) -> None:
    payer, merchant = new_key(), new_key().address
    message, signature = await signed_terms(usdc, mandates, payer, merchant)

    for changed in ({"merchant": new_key().address}, {"payer": new_key().address}):
        reason = await relay_refused(usdc, mandates, collector, message | changed, signature)
        assert reason == "invalid signature"


async def test_the_high_s_twin_of_a_valid_signature_is_refused(
    usdc: MockUsdc, mandates: Mandates, collector: str
) -> None:
    payer, merchant = new_key(), new_key().address
    message, signature = await signed_terms(usdc, mandates, payer, merchant)
    twin = eip712.high_s_twin(signature)

    assert await relay_refused(usdc, mandates, collector, message, twin) == "invalid signature"
    # The low-s original still creates: the twin spent nothing.
    await mandates.create_with_signature(collector, message, signature)
    assert (await mandates.mandate(payer.address, merchant)).cap == CAP


@pytest.mark.parametrize("v", [0, 1, 26, 29])
async def test_a_v_other_than_27_or_28_is_refused(
    usdc: MockUsdc, mandates: Mandates, collector: str, v: int
) -> None:
    payer, merchant = new_key(), new_key().address
    message, signature = await signed_terms(usdc, mandates, payer, merchant)
    _, r, s = split_signature(signature)

    async def relay() -> Any:
        # Sent as is: the helper would take a v of 0 or 1 for a recovery id.
        call = mandates.contract.functions.create_mandate_with_signature(
            payer.address,
            merchant,
            message["cap"],
            message["period"],
            message["expiry"],
            message["deadline"],
            v,
            r,
            s,
        )
        tx_hash = await call.transact({"from": collector, "gas": MANDATE_GAS})
        return await usdc.w3.eth.wait_for_transaction_receipt(tx_hash)

    at = await usdc.block_time() + 5
    reason = await refused_at(usdc, mandates, payer.address, merchant, at, relay)
    assert reason == "invalid signature"


async def test_an_unrecoverable_signature_never_passes_for_the_zero_address(
    usdc: MockUsdc, mandates: Mandates, collector: str
) -> None:
    """r = s = 0 recovers no key: ecrecover answers the zero address, which must not be
    taken for a payer of that address."""
    merchant = new_key().address
    now = await usdc.block_time()
    message = {
        "payer": "0x" + "00" * 20,
        "merchant": merchant,
        "cap": CAP,
        "period": DAY,
        "expiry": now + DAY,
        "nonce": 0,
        "deadline": now + 600,
    }
    nothing = "0x" + bytes(64).hex() + "1b"

    assert await relay_refused(usdc, mandates, collector, message, nothing) == "invalid signature"


async def test_a_signature_past_its_deadline_is_refused(
    usdc: MockUsdc, mandates: Mandates, collector: str
) -> None:
    payer, merchant = new_key(), new_key().address
    deadline = await usdc.block_time() + 100
    message, signature = await signed_terms(usdc, mandates, payer, merchant, deadline=deadline)

    reason = await relay_refused(usdc, mandates, collector, message, signature, deadline + 1)
    assert reason == "signature expired"


async def test_a_signature_is_accepted_at_its_deadline(
    usdc: MockUsdc, mandates: Mandates, collector: str
) -> None:
    payer, merchant = new_key(), new_key().address
    deadline = await usdc.block_time() + 100
    message, signature = await signed_terms(usdc, mandates, payer, merchant, deadline=deadline)
    await mine_next_at(usdc, deadline)
    receipt = await mandates.create_with_signature(collector, message, signature)
    assert await mined_at(usdc, receipt) == deadline
    assert (await mandates.mandate(payer.address, merchant)).start == deadline


async def test_a_signature_made_before_a_revocation_or_own_creation_is_refused(
    usdc: MockUsdc, anvil: Anvil, mandates: Mandates, collector: str
) -> None:
    """A signed mandate the platform has not yet relayed cannot bring back what the payer
    revoked since, nor overwrite what the payer created themselves since."""
    payer = await approving_payer(usdc, anvil, mandates)
    merchant = new_key().address
    first, first_signature = await signed_terms(usdc, mandates, payer, merchant)
    await mandates.create_with_signature(collector, first, first_signature)
    pending, pending_signature = await signed_terms(usdc, mandates, payer, merchant, cap=CAP * 2)
    await mandates.revoke(payer.address, merchant)

    reason = await relay_refused(usdc, mandates, collector, pending, pending_signature)
    assert reason == "invalid signature"

    in_flight, in_flight_signature = await signed_terms(usdc, mandates, payer, merchant, cap=7)
    await live_mandate(usdc, mandates, payer.address, merchant, cap=5)
    reason = await relay_refused(usdc, mandates, collector, in_flight, in_flight_signature)
    assert reason == "invalid signature"
    assert (await mandates.mandate(payer.address, merchant)).cap == 5


async def test_a_signature_for_a_later_nonce_or_another_contract_is_refused(
    usdc: MockUsdc, mandates: Mandates, collector: str
) -> None:
    payer, merchant = new_key(), new_key().address
    ahead, ahead_signature = await signed_terms(usdc, mandates, payer, merchant, nonce=1)
    assert await relay_refused(usdc, mandates, collector, ahead, ahead_signature) == (
        "invalid signature"
    )
    message, _ = await signed_terms(usdc, mandates, payer, merchant)
    elsewhere = mandate_signature.sign(payer.key, CHAIN_ID, usdc.address, message)
    assert await relay_refused(usdc, mandates, collector, message, elsewhere) == (
        "invalid signature"
    )


# --- Collection -----------------------------------------------------------------------------


async def collect_refused(
    usdc: MockUsdc,
    mandates: Mandates,
    sender: str,
    payer: str,
    merchant: str,
    amount: int,
    block_time: int,
    reference: bytes = REFERENCE,
) -> str:
    async def collect() -> Any:
        return await mandates.collect(sender, payer, merchant, amount, reference, MANDATE_GAS)

    return await refused_at(usdc, mandates, payer, merchant, block_time, collect, reference)


async def test_only_the_collector_collects(
    usdc: MockUsdc,
    mandates: Mandates,
    mandate_payer: Wallet,
    mandate_owner: str,
    collector: str,
) -> None:
    payer, merchant = mandate_payer.address, new_key().address
    start = await live_mandate(usdc, mandates, payer, merchant)
    await usdc.w3.provider.make_request("anvil_setBalance", [merchant, hex(10**18)])
    await usdc.w3.provider.make_request("anvil_impersonateAccount", [merchant])

    # Not the merchant, not the payer, not the owner.
    for sender, at in ((merchant, start + 1), (payer, start + 2), (mandate_owner, start + 3)):
        reason = await collect_refused(usdc, mandates, sender, payer, merchant, 1, at)
        assert reason == "not collector"


async def test_nothing_is_collected_without_a_mandate(
    usdc: MockUsdc, mandates: Mandates, mandate_payer: Wallet, collector: str
) -> None:
    payer, merchant = mandate_payer.address, new_key().address
    await live_mandate(usdc, mandates, payer, merchant)
    now = await usdc.block_time()

    # Another merchant of the payer; the merchant's mandate from another payer.
    other_merchant = new_key().address
    reason = await collect_refused(usdc, mandates, collector, payer, other_merchant, 1, now + 1)
    assert reason == "no mandate"
    other_payer = new_key().address
    reason = await collect_refused(usdc, mandates, collector, other_payer, merchant, 1, now + 2)
    assert reason == "no mandate"


async def test_a_revoked_mandate_collects_nothing(
    usdc: MockUsdc, mandates: Mandates, mandate_payer: Wallet, collector: str
) -> None:
    payer, merchant = mandate_payer.address, new_key().address
    start = await live_mandate(usdc, mandates, payer, merchant)
    await mandates.revoke(payer, merchant)

    for at in (start + 10, start + 2 * DAY):
        reason = await collect_refused(usdc, mandates, collector, payer, merchant, 1, at)
        assert reason == "mandate revoked"


async def test_an_expired_mandate_collects_nothing(
    usdc: MockUsdc, mandates: Mandates, mandate_payer: Wallet, collector: str
) -> None:
    payer, merchant = mandate_payer.address, new_key().address
    start = await usdc.block_time() + 5
    await live_mandate(usdc, mandates, payer, merchant, expiry=start + 3 * DAY)

    for at in (start + 3 * DAY, start + 3 * DAY + 1, start + 90 * DAY):
        reason = await collect_refused(usdc, mandates, collector, payer, merchant, 1, at)
        assert reason == "mandate expired"


async def test_a_zero_amount_is_refused(
    usdc: MockUsdc, mandates: Mandates, mandate_payer: Wallet, collector: str
) -> None:
    payer, merchant = mandate_payer.address, new_key().address
    start = await live_mandate(usdc, mandates, payer, merchant)

    reason = await collect_refused(usdc, mandates, collector, payer, merchant, 0, start + 1)
    assert reason == "amount is zero"


async def test_a_reference_pays_once_whoever_it_is_for(
    usdc: MockUsdc, anvil: Anvil, mandates: Mandates, mandate_payer: Wallet, collector: str
) -> None:
    payer, merchant = mandate_payer.address, new_key().address
    start = await live_mandate(usdc, mandates, payer, merchant)
    await mine_next_at(usdc, start + 1)
    await mandates.collect(collector, payer, merchant, 1_000, REFERENCE)

    reason = await collect_refused(usdc, mandates, collector, payer, merchant, 1_000, start + 2)
    assert reason == "reference used"
    # The same reference for another payer's mandate with another merchant.
    other = await approving_payer(usdc, anvil, mandates)
    other_merchant = new_key().address
    await live_mandate(usdc, mandates, other.address, other_merchant)
    at = await usdc.block_time() + 1
    reason = await collect_refused(
        usdc, mandates, collector, other.address, other_merchant, 1_000, at
    )
    assert reason == "reference used"
    assert await usdc.balance(merchant) == 1_000
    assert await usdc.balance(other_merchant) == 0


@pytest.mark.parametrize("amount", [CAP + 1, 2**256 - 1])
async def test_more_than_the_cap_is_refused(
    usdc: MockUsdc, mandates: Mandates, mandate_payer: Wallet, collector: str, amount: int
) -> None:
    """Also an amount whose sum with what was spent would overflow uint256: the check is
    written so it cannot."""
    payer, merchant = mandate_payer.address, new_key().address
    start = await live_mandate(usdc, mandates, payer, merchant)

    reason = await collect_refused(usdc, mandates, collector, payer, merchant, amount, start + 1)
    assert reason == "cap exceeded"
    await mine_next_at(usdc, start + 2)
    await mandates.collect(collector, payer, merchant, 1, b"\1" * 32)
    reason = await collect_refused(usdc, mandates, collector, payer, merchant, amount, start + 3)
    assert reason == "cap exceeded"


async def test_usdcs_own_refusals_pass_through_and_spend_no_reference(
    usdc: MockUsdc, anvil: Anvil, mandates: Mandates, collector: str
) -> None:
    payer = await approving_payer(usdc, anvil, mandates, base_units=50_000)
    merchant = new_key().address
    start = await live_mandate(usdc, mandates, payer.address, merchant)

    # Within the cap, beyond the allowance (50,000).
    reason = await collect_refused(
        usdc, mandates, collector, payer.address, merchant, 60_000, start + 1
    )
    assert reason == "ERC20: transfer amount exceeds allowance"
    # Within the allowance, beyond the balance: the payer spent USDC elsewhere.
    await send(usdc, usdc.contract.functions.approve(mandates.address, CAP), payer.address)
    await send(usdc, usdc.contract.functions.transfer(new_key().address, 20_000), payer.address)
    reason = await collect_refused(
        usdc, mandates, collector, payer.address, merchant, 40_000, start + 2
    )
    assert reason == "ERC20: transfer amount exceeds balance"
    # The reference is still unused: a collection within both pays with it.
    await mine_next_at(usdc, start + 3)
    await mandates.collect(collector, payer.address, merchant, 30_000, REFERENCE)
    assert await usdc.balance(merchant) == 30_000


# A token that answers false instead of reverting (USDC never does): the contract must not take
# that for a payment.
FALSE_TOKEN = """
# pragma version ~=0.4.3
@external
def transferFrom(owner: address, receiver: address, amount: uint256) -> bool:
    return False
"""


async def test_a_token_answering_false_is_refused(
    usdc: MockUsdc, anvil: Anvil, mandate_owner: str, collector: str
) -> None:
    compiled = vyper.compile_code(FALSE_TOKEN, output_formats=["abi", "bytecode"])
    factory = usdc.w3.eth.contract(abi=compiled["abi"], bytecode=compiled["bytecode"])
    deployed = await send(usdc, factory.constructor(), mandate_owner)
    token = str(deployed["contractAddress"])
    mandates = await Mandates.deploy(anvil.url, mandate_owner, token, collector)
    try:
        payer, merchant = new_key().address, new_key().address
        await sendable(usdc, payer)
        start = await live_mandate(usdc, mandates, payer, merchant)

        reason = await collect_refused(usdc, mandates, collector, payer, merchant, 1, start + 1)
        assert reason == "transfer failed"
    finally:
        await mandates.close()


# --- Revocation and administration ---------------------------------------------------------


async def test_revoking_nothing_is_refused(
    usdc: MockUsdc, mandates: Mandates, mandate_payer: Wallet
) -> None:
    payer, merchant = mandate_payer.address, new_key().address
    now = await usdc.block_time()

    async def revoke() -> Any:
        return await mandates.revoke(payer, merchant, MANDATE_GAS)

    assert await refused_at(usdc, mandates, payer, merchant, now + 1, revoke) == "no mandate"
    await live_mandate(usdc, mandates, payer, merchant)
    await mandates.revoke(payer, merchant)
    now = await usdc.block_time()
    assert await refused_at(usdc, mandates, payer, merchant, now + 1, revoke) == "no mandate"


async def test_nobody_revokes_another_payers_mandate(
    usdc: MockUsdc, mandates: Mandates, mandate_payer: Wallet, collector: str
) -> None:
    """revoke acts on the caller's own mandate: the collector (or anyone) calling it for the
    payer's merchant finds none of its own, and the payer's stays live."""
    payer, merchant = mandate_payer.address, new_key().address
    start = await live_mandate(usdc, mandates, payer, merchant)

    async def by_collector() -> Any:
        return await mandates.revoke(collector, merchant, MANDATE_GAS)

    reason = await refused_at(usdc, mandates, payer, merchant, start + 1, by_collector)
    assert reason == "no mandate"
    assert (await mandates.mandate(payer, merchant)).revoked is False


async def test_only_the_owner_sets_the_collector_and_never_to_zero(
    usdc: MockUsdc, mandates: Mandates, mandate_owner: str, collector: str, mandate_payer: Wallet
) -> None:
    payer, merchant = mandate_payer.address, new_key().address
    now = await usdc.block_time()
    for sender, new, reason, at in (
        (collector, payer, "not owner", now + 1),
        (payer, payer, "not owner", now + 2),
        (mandate_owner, "0x" + "00" * 20, "collector is zero", now + 3),
    ):

        async def rotate(sender: str = sender, new: str = new) -> Any:
            return await mandates.set_collector(sender, new, MANDATE_GAS)

        assert await refused_at(usdc, mandates, payer, merchant, at, rotate) == reason
    assert await mandates.collector() == collector


@pytest.mark.parametrize(
    ("zero", "reason"), [("token", "token is zero"), ("collector", "collector is zero")]
)
async def test_a_deployment_without_token_or_collector_is_refused(
    usdc: MockUsdc, mandate_owner: str, collector: str, zero: str, reason: str
) -> None:
    abi, bytecode = compile_mandates()
    factory = usdc.w3.eth.contract(abi=abi, bytecode=bytecode)
    nobody = "0x" + "00" * 20
    token = nobody if zero == "token" else usdc.address
    who_collects = nobody if zero == "collector" else collector

    refused = factory.constructor(token, who_collects).transact({"from": mandate_owner})
    assert await revert_reason(refused) == reason


def test_every_reason_in_the_source_is_one_tested_here() -> None:
    """The contract's revert reasons are an interface (the platform's pre-check maps them):
    this list is the one docs/settlement.md gives, and each has its test above."""
    stated = set(re.findall(r'^\s*assert .*, "([^"]+)"$', MANDATES_SOURCE.read_text(), re.M))
    assert stated == {
        "token is zero",
        "collector is zero",
        "not owner",
        "not collector",
        "no mandate",
        "mandate revoked",
        "mandate expired",
        "amount is zero",
        "reference used",
        "cap exceeded",
        "transfer failed",
        "signature expired",
        "invalid signature",
        "merchant is zero",
        "merchant is payer",
        "merchant is this contract",
        "cap is zero",
        "period is zero",
        "expiry passed",
    }
