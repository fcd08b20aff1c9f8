"""Properties of the mandate contract over random sequences of grants (direct or signed),
collections, revocations and time jumps, checked step by step against a Python model and, at
the end, from the chain's own logs:

- a cap is never exceeded in a period of a mandate;
- USDC moves only from a payer to a merchant of theirs, in a collection: every Transfer of the
  token pairs with a Collected of the same amount in its transaction, no other balance
  changes, the contract holds nothing and the supply stays;
- a reference pays at most once;
- a revoked or expired mandate collects nothing.

Every example runs on a snapshot of the session's chain, reverted afterwards; each transaction
is mined at a block time set here with a fixed gas limit, so a refusal is mined as reverted and
the verdict is the chain's at a known time.
"""

from collections import defaultdict
from dataclasses import dataclass, field, replace
from typing import Any

from hexbytes import HexBytes
from hypothesis import event, example, given, settings
from hypothesis import strategies as st

from devstack import mandate_signature
from devstack.chain import CHAIN_ID, Anvil, MockUsdc
from devstack.mandates import Mandates, MandateState
from tests.chain.conftest import (
    MANDATE_GAS,
    MINTER,
    TRANSFER,
    Wallet,
    balances,
    mine_next_at,
    mined_at,
    new_key,
    sendable,
)

PAYERS, MERCHANTS, REFERENCES = 2, 2, 6
# Each payer holds FUNDS; payer 0 approves less than that, payer 1 more, so both the
# allowance and the balance run out in some examples.
FUNDS = 3_000
ALLOWANCES = (1_500, 10_000)


@dataclass(frozen=True)
class Grant:
    payer: int
    merchant: int
    cap: int
    period: int
    # Expiry relative to the block time it is mined at: <= 0 is refused.
    expires_in: int
    signed: bool
    delay: int


@dataclass(frozen=True)
class Collect:
    payer: int
    merchant: int
    amount: int
    reference: int
    delay: int


@dataclass(frozen=True)
class Revoke:
    payer: int
    merchant: int
    delay: int


Step = Grant | Collect | Revoke

# Seconds to the next block: mostly short, with periods' edges and long jumps.
delays = st.integers(1, 5) | st.sampled_from([9, 10, 11, 29, 30, 31, 59, 60, 61, 300])
payers = st.integers(0, PAYERS - 1)
merchants = st.integers(0, MERCHANTS - 1)
grants = st.builds(
    Grant,
    payer=payers,
    merchant=merchants,
    cap=st.integers(1, 1_000),
    period=st.sampled_from([10, 30, 60]),
    # Mostly long enough to collect in, with the edges.
    expires_in=st.sampled_from([-1, 0, 1, 45, 120, *[1_000] * 5]),
    signed=st.booleans(),
    delay=delays,
)


@st.composite
def plans(draw: st.DrawFn) -> list[Step]:
    """A grant that can collect first, then up to 12 steps: collections most often, then
    grants, then revocations. Three collections or revocations in four are for a pair granted
    (with an expiry ahead) earlier in the plan, else most would find no mandate; one in four
    for any pair. A collection's amount is within its pair's cap half of the time, else
    anything up to 1,100; one in three lands on an edge of its pair's mandate in time (its
    expiry, the second before it, or a period's first or last second)."""
    first = replace(draw(grants), expires_in=draw(st.sampled_from([45, 120, 1_000])))
    plan: list[Step] = [first]
    # Seconds since the first block of the plan; each grant's start, when it is accepted.
    clock = first.delay
    started = {(first.payer, first.merchant): (clock, first)}
    for _ in range(draw(st.integers(0, 12))):
        kind = draw(st.sampled_from(["grant", "revoke", *["collect"] * 6]))
        if kind == "grant":
            grant = draw(grants)
            clock += grant.delay
            plan.append(grant)
            if grant.expires_in > 0:
                started[(grant.payer, grant.merchant)] = (clock, grant)
            continue
        if started and draw(st.sampled_from([True, True, True, False])):
            payer, merchant = draw(st.sampled_from(sorted(started)))
        else:
            payer, merchant = draw(payers), draw(merchants)
        delay = draw(delays)
        if (payer, merchant) in started and draw(st.sampled_from([True, False, False])):
            start, grant = started[(payer, merchant)]
            expiry = start + grant.expires_in
            boundary = start + (clock - start) // grant.period * grant.period + grant.period
            edges = [
                t - clock for t in (boundary, boundary - 1) * 2 + (expiry, expiry - 1) if t > clock
            ]
            if edges:
                delay = draw(st.sampled_from(edges))
        clock += delay
        if kind == "revoke":
            plan.append(Revoke(payer, merchant, delay))
            continue
        cap = started[(payer, merchant)][1].cap if (payer, merchant) in started else 1_000
        amount = draw(st.integers(1, cap) | st.integers(0, 1_100))
        plan.append(Collect(payer, merchant, amount, draw(st.integers(0, REFERENCES - 1)), delay))
    return plan


@dataclass
class Model:
    """What the contract should hold, kept by the rules written out in Python."""

    mandates: dict[tuple[int, int], MandateState] = field(default_factory=dict)
    payer_funds: list[int] = field(default_factory=lambda: [FUNDS] * PAYERS)
    allowances: list[int] = field(default_factory=lambda: list(ALLOWANCES))
    merchant_funds: list[int] = field(default_factory=lambda: [0] * MERCHANTS)
    used: set[int] = field(default_factory=set)
    nonces: list[int] = field(default_factory=lambda: [0] * PAYERS)

    def available(self, pair: tuple[int, int], now: int) -> int:
        mandate = self.mandates.get(pair)
        if mandate is None or mandate.revoked or now >= mandate.expiry:
            return 0
        if (now - mandate.start) // mandate.period != mandate.period_index:
            return mandate.cap
        return mandate.cap - mandate.spent

    def apply(self, step: Step, now: int) -> bool:
        """Whether the contract accepts `step` at block time `now`; if so, its effects."""
        pair = (step.payer, step.merchant)
        mandate = self.mandates.get(pair)
        if isinstance(step, Grant):
            if step.expires_in <= 0:
                return False
            self.mandates[pair] = MandateState(
                step.cap, step.period, now, now + step.expires_in, 0, 0, False
            )
            self.nonces[step.payer] += 1
            return True
        if isinstance(step, Revoke):
            if mandate is None or mandate.revoked:
                return False
            self.mandates[pair] = replace(mandate, revoked=True)
            self.nonces[step.payer] += 1
            return True
        amount, payer = step.amount, step.payer
        if (
            mandate is None
            or amount == 0
            or step.reference in self.used
            or amount > self.available(pair, now)
            or amount > self.allowances[payer]
            or amount > self.payer_funds[payer]
        ):
            return False
        index = (now - mandate.start) // mandate.period
        spent = mandate.spent if index == mandate.period_index else 0
        self.mandates[pair] = replace(mandate, period_index=index, spent=spent + amount)
        self.used.add(step.reference)
        self.payer_funds[payer] -= amount
        self.allowances[payer] -= amount
        self.merchant_funds[step.merchant] += amount
        return True


def reference_of(number: int) -> bytes:
    return (number + 1).to_bytes(32, "big")


@dataclass
class Parties:
    payers: list[Wallet]
    merchants: list[str]
    owner: str
    collector: str
    # Holds nothing and does nothing: its balance must stay 0.
    bystander: str


async def set_up(usdc: MockUsdc, anvil: Anvil) -> tuple[Mandates, Parties]:
    owner, collector = new_key().address, new_key().address
    for address in (owner, collector):
        await sendable(usdc, address)
    mandates = await Mandates.deploy(anvil.url, owner, usdc.address, collector)
    wallets = [new_key() for _ in range(PAYERS)]
    for wallet, allowance in zip(wallets, ALLOWANCES, strict=True):
        await usdc.mint(wallet.address, FUNDS, anvil.accounts[MINTER])
        await sendable(usdc, wallet.address)
        tx_hash = await usdc.contract.functions.approve(mandates.address, allowance).transact(
            {"from": wallet.address}
        )
        await usdc.w3.eth.wait_for_transaction_receipt(tx_hash)
    parties = Parties(
        payers=wallets,
        merchants=[new_key().address for _ in range(MERCHANTS)],
        owner=owner,
        collector=collector,
        bystander=new_key().address,
    )
    return mandates, parties


async def run(mandates: Mandates, parties: Parties, step: Step, now: int) -> Any:
    """Sends the step's transaction, to be mined at block time `now`."""
    payer = parties.payers[step.payer]
    merchant = parties.merchants[step.merchant]
    if isinstance(step, Collect):
        return await mandates.collect(
            parties.collector,
            payer.address,
            merchant,
            step.amount,
            reference_of(step.reference),
            gas=MANDATE_GAS,
        )
    if isinstance(step, Revoke):
        return await mandates.revoke(payer.address, merchant, gas=MANDATE_GAS)
    expiry = now + step.expires_in
    if not step.signed:
        return await mandates.create(
            payer.address, merchant, step.cap, step.period, expiry, gas=MANDATE_GAS
        )
    message = {
        "payer": payer.address,
        "merchant": merchant,
        "cap": step.cap,
        "period": step.period,
        "expiry": expiry,
        "nonce": await mandates.nonce(payer.address),
        "deadline": now,
    }
    signature = mandate_signature.sign(payer.key, CHAIN_ID, mandates.address, message)
    # The collector relays (it pays the gas; the payer's USDC does not move).
    return await mandates.create_with_signature(
        parties.collector, message, signature, gas=MANDATE_GAS
    )


async def assert_matches(
    usdc: MockUsdc,
    mandates: Mandates,
    parties: Parties,
    model: Model,
    now: int,
    step: Step | None = None,
) -> None:
    """The contract's state is the model's: after a step, what the step could change (its
    payer's mandate and nonce, its reference, every balance); with no step, everything."""
    pairs = (
        [(p, m) for p in range(PAYERS) for m in range(MERCHANTS)]
        if step is None
        else [(step.payer, step.merchant)]
    )
    for p, m in pairs:
        payer, merchant = parties.payers[p].address, parties.merchants[m]
        expected = model.mandates.get((p, m), MandateState(0, 0, 0, 0, 0, 0, False))
        assert await mandates.mandate(payer, merchant) == expected
        assert await mandates.available(payer, merchant) == model.available((p, m), now)
        assert await mandates.nonce(payer) == model.nonces[p]
    assert await balances(usdc, *(w.address for w in parties.payers)) == model.payer_funds
    assert await balances(usdc, *parties.merchants) == model.merchant_funds
    references = (
        range(REFERENCES) if step is None else [step.reference] if isinstance(step, Collect) else []
    )
    for number in references:
        assert await mandates.collected(reference_of(number)) is (number in model.used)


async def assert_the_logs_keep_the_invariants(
    usdc: MockUsdc, mandates: Mandates, parties: Parties, first_block: int, supply: int
) -> None:
    """The four properties from the chain's logs alone, whatever the model says."""
    history = await mandates.events(from_block=first_block)
    terms: dict[tuple[str, str], dict[str, Any]] = {}
    # (payer, merchant, start, period index) => collected in that period of that mandate.
    per_period: dict[tuple[str, str, int, int], int] = defaultdict(int)
    references: set[bytes] = set()
    # transaction => what Collected says it moved; and what the token's Transfers say.
    collections: dict[str, list[tuple[str, str, int]]] = defaultdict(list)
    for logged in history:
        args = logged.args
        pair = (args.get("payer"), args.get("merchant"))
        if logged.name == "MandateCreated":
            terms[pair] = {**args, "revoked": False}  # type: ignore[index]
        elif logged.name == "MandateRevoked":
            terms[pair]["revoked"] = True  # type: ignore[index]
        elif logged.name == "Collected":
            mandate = terms[pair]  # type: ignore[index]
            block = await usdc.w3.eth.get_block(logged.block_number)
            now = int(block["timestamp"])
            assert not mandate["revoked"]
            assert now < mandate["expiry"]
            index = (now - mandate["start"]) // mandate["period"]
            assert args["period_index"] == index
            key = (args["payer"], args["merchant"], mandate["start"], index)
            per_period[key] += args["amount"]
            assert per_period[key] <= mandate["cap"]
            assert args["reference"] not in references
            references.add(args["reference"])
            collections[logged.transaction_hash].append(
                (args["payer"], args["merchant"], args["amount"])
            )

    transfers = await usdc.w3.eth.get_logs(
        {"address": usdc.contract.address, "fromBlock": first_block, "topics": [HexBytes(TRANSFER)]}
    )
    moved: dict[str, list[tuple[str, str, int]]] = defaultdict(list)
    for log in transfers:
        decoded = usdc.contract.events.Transfer().process_log(log)["args"]
        moved["0x" + bytes(log["transactionHash"]).hex()].append(
            (decoded["sender"], decoded["receiver"], decoded["value"])
        )
    assert moved == collections
    assert await balances(usdc, mandates.address, parties.collector, parties.bystander) == [0, 0, 0]
    assert await balances(usdc, parties.owner) == [0]
    assert await usdc.contract.functions.totalSupply().call() == supply


T = 60  # A period in the examples below.


@settings(max_examples=30, deadline=None)
@given(plan=plans())
# The whole cap in a period, one unit more in its last second, the cap again at the boundary.
@example(
    plan=[
        Grant(0, 0, 500, T, 1_000, False, 1),
        Collect(0, 0, 500, 0, 1),
        Collect(0, 0, 1, 1, T - 2),
        Collect(0, 0, 500, 2, 1),
    ]
)
# A reference reused for another payer and merchant; a revoked mandate; a signed re-grant.
@example(
    plan=[
        Grant(0, 0, 400, T, 1_000, True, 1),
        Grant(1, 1, 400, T, 1_000, False, 1),
        Collect(0, 0, 100, 0, 1),
        Collect(1, 1, 100, 0, 1),
        Revoke(0, 0, 1),
        Collect(0, 0, 100, 1, 1),
        Revoke(0, 0, 1),
        Grant(0, 0, 50, T, 1_000, True, 1),
        Collect(0, 0, 50, 1, 1),
    ]
)
# Collected in the second before expiry (a fresh period), refused at it; the allowance of
# payer 0 runs out.
@example(
    plan=[
        Grant(0, 1, 1_000, 10, 45, False, 1),
        Collect(0, 1, 1_000, 0, 38),
        Collect(0, 1, 1, 1, 6),
        Collect(0, 1, 1, 2, 1),
        Grant(0, 1, 1_000, 10, 120, False, 1),
        Collect(0, 1, 600, 3, 1),
    ]
)
async def test_mandates_keep_their_invariants(
    usdc: MockUsdc, anvil: Anvil, plan: list[Step]
) -> None:
    snapshot = await usdc.snapshot()
    try:
        mandates, parties = await set_up(usdc, anvil)
        supply = await usdc.contract.functions.totalSupply().call()
        first_block = await usdc.w3.eth.block_number + 1
        model = Model()
        now = await usdc.block_time()
        for step in plan:
            now += step.delay
            await mine_next_at(usdc, now)
            receipt = await run(mandates, parties, step, now)
            assert await mined_at(usdc, receipt) == now
            accepted = model.apply(step, now)
            event(f"{type(step).__name__} {'accepted' if accepted else 'refused'}")
            assert receipt["status"] == (1 if accepted else 0)
            await assert_matches(usdc, mandates, parties, model, now, step)
        await assert_matches(usdc, mandates, parties, model, now)
        await assert_the_logs_keep_the_invariants(usdc, mandates, parties, first_block, supply)
        await mandates.close()
    finally:
        await usdc.revert(snapshot)
