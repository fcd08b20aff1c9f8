"""The mandate contract on the session's anvil: deployment, a mandate created by its payer or by
a relayed signature (eth-account's and anvil's eth_signTypedData_v4), collections with exact
balances and logs, periods rolling over and the expiry at set block times, revocation,
replacement and the rotation of the collector."""

import json
from typing import Any

from eth_abi.abi import encode
from eth_account.messages import encode_typed_data
from eth_utils.crypto import keccak

from devstack import mandate_signature
from devstack.chain import CHAIN_ID, Anvil, MockUsdc, split_signature
from devstack.mandates import MandateEvent, Mandates, MandateState
from tests.chain import eip712
from tests.chain.conftest import (
    ANVIL_WALLET,
    COLLECTED,
    FUNDS,
    MANDATE_CREATED,
    MANDATE_GAS,
    TRANSFER,
    Wallet,
    balances,
    logs,
    mine_next_at,
    mined_at,
    new_key,
    reason_mined,
    send,
    topic,
    word,
)

CAP = 250_000
DAY = 86_400
MANDATE_TYPE = (
    "Mandate(address payer,address merchant,uint256 cap,uint256 period,uint256 expiry,"
    "uint256 nonce,uint256 deadline)"
)


def reference(number: int) -> bytes:
    return number.to_bytes(32, "big")


def only_event(mandates: Mandates, receipt: Any) -> MandateEvent:
    (event,) = mandates.events_of(receipt)
    return event


async def created_at(
    usdc: MockUsdc, mandates: Mandates, payer: str, merchant: str, start: int, **terms: int
) -> MandateState:
    """Creates the payer's mandate in a block at `start`; default terms: CAP a day for 30 days."""
    cap, period = terms.get("cap", CAP), terms.get("period", DAY)
    expiry = terms.get("expiry", start + 30 * DAY)
    await mine_next_at(usdc, start)
    receipt = await mandates.create(payer, merchant, cap, period, expiry)
    assert await mined_at(usdc, receipt) == start
    return MandateState(cap, period, start, expiry, 0, 0, False)


async def collect_at(
    usdc: MockUsdc,
    mandates: Mandates,
    collector: str,
    block_time: int,
    payer: str,
    merchant: str,
    amount: int,
    ref: bytes,
) -> Any:
    """A collection mined at `block_time`, refused or not (a fixed gas limit)."""
    await mine_next_at(usdc, block_time)
    receipt = await mandates.collect(collector, payer, merchant, amount, ref, gas=MANDATE_GAS)
    assert await mined_at(usdc, receipt) == block_time
    return receipt


async def test_the_contract_knows_its_token_owner_and_collector(
    usdc: MockUsdc, mandates: Mandates, mandate_owner: str, collector: str
) -> None:
    functions = mandates.contract.functions
    assert await functions.token().call() == usdc.address
    assert await functions.owner().call() == mandate_owner
    assert await mandates.collector() == collector
    # Its deployment's one event: the first collector.
    assert [(e.name, e.args) for e in await mandates.events()] == [
        ("CollectorChanged", {"previous": "0x" + "00" * 20, "new": collector})
    ]
    # Collections move USDC through it, never into it: it holds none, and no ether.
    assert await usdc.balance(mandates.address) == 0
    assert await usdc.w3.eth.get_balance(mandates.contract.address) == 0


async def test_the_domain_and_type_hash_are_what_wallets_compute(mandates: Mandates) -> None:
    expected = keccak(
        encode(
            ["bytes32", "bytes32", "bytes32", "uint256", "address"],
            [
                keccak(text=eip712.EIP712_DOMAIN),
                keccak(text="Mandates"),
                keccak(text="1"),
                CHAIN_ID,
                mandates.address,
            ],
        )
    )
    assert await mandates.domain_separator() == "0x" + expected.hex()
    signable = encode_typed_data(
        full_message=mandate_signature.typed_data(
            CHAIN_ID,
            mandates.address,
            {
                "payer": mandates.address,
                "merchant": mandates.address,
                "cap": 1,
                "period": 1,
                "expiry": 1,
                "nonce": 0,
                "deadline": 1,
            },
        )
    )
    assert bytes(signable.header) == expected
    on_chain = await mandates.contract.functions.MANDATE_TYPEHASH().call()
    assert bytes(on_chain) == keccak(text=MANDATE_TYPE)


async def test_the_domain_follows_the_chain_id_of_each_call() -> None:
    """A private anvil (the session's must keep its id): after anvil_setChainId, a mandate
    signed for the old id is refused and one for the new id creates."""
    chain = Anvil()
    chain.start()
    usdc = await MockUsdc.deploy(chain.url, chain.accounts[0])
    mandates = await Mandates.deploy(chain.url, chain.accounts[0], usdc.address, chain.accounts[1])
    try:
        payer, merchant = new_key(), new_key().address
        await usdc.w3.provider.make_request("anvil_setChainId", [1])
        # anvil's dev signer keeps signing for 31337: send as an impersonated account.
        relayer = new_key().address
        for method, params in (
            ("anvil_setBalance", [relayer, hex(10**18)]),
            ("anvil_impersonateAccount", [relayer]),
        ):
            await usdc.w3.provider.make_request(method, params)
        now = await usdc.block_time()
        message = {
            "payer": payer.address,
            "merchant": merchant,
            "cap": CAP,
            "period": DAY,
            "expiry": now + DAY,
            "nonce": 0,
            "deadline": now + 600,
        }
        old = mandate_signature.sign(payer.key, CHAIN_ID, mandates.address, message)
        refused = await mandates.create_with_signature(relayer, message, old, gas=MANDATE_GAS)
        assert await reason_mined(usdc, refused) == "invalid signature"

        new = mandate_signature.sign(payer.key, 1, mandates.address, message)
        await mandates.create_with_signature(relayer, message, new)
        assert (await mandates.mandate(payer.address, merchant)).cap == CAP
    finally:
        await mandates.close()
        await usdc.close()
        chain.stop()


async def test_a_payer_creates_a_mandate(
    usdc: MockUsdc, mandates: Mandates, mandate_payer: Wallet
) -> None:
    merchant = new_key().address
    start = await usdc.block_time() + 5
    await mine_next_at(usdc, start)
    receipt = await mandates.create(mandate_payer.address, merchant, CAP, DAY, start + 7 * DAY)

    assert logs(receipt) == [
        (
            mandates.address,
            [MANDATE_CREATED, topic(mandate_payer.address), topic(merchant)],
            word(CAP) + word(DAY) + word(start) + word(start + 7 * DAY),
        )
    ]
    assert only_event(mandates, receipt).args == {
        "payer": mandate_payer.address,
        "merchant": merchant,
        "cap": CAP,
        "period": DAY,
        "start": start,
        "expiry": start + 7 * DAY,
    }
    assert await mandates.mandate(mandate_payer.address, merchant) == MandateState(
        CAP, DAY, start, start + 7 * DAY, 0, 0, False
    )
    assert await mandates.available(mandate_payer.address, merchant) == CAP
    # The payer's own creation spends their signing nonce: no signed mandate still in flight
    # can overwrite this one.
    assert await mandates.nonce(mandate_payer.address) == 1
    # The mandate moves nothing by itself.
    assert await balances(usdc, mandate_payer.address, merchant) == [FUNDS, 0]


async def test_the_collector_moves_usdc_from_the_payer_to_the_merchant(
    usdc: MockUsdc, mandates: Mandates, mandate_payer: Wallet, collector: str
) -> None:
    payer, merchant = mandate_payer.address, new_key().address
    start = await usdc.block_time() + 5
    await created_at(usdc, mandates, payer, merchant, start)

    receipt = await collect_at(
        usdc, mandates, collector, start + 60, payer, merchant, 100_000, reference(1)
    )

    assert receipt["status"] == 1
    # The token's Transfer, payer to merchant, then Collected with the reference.
    assert logs(receipt) == [
        (usdc.address, [TRANSFER, topic(payer), topic(merchant)], word(100_000)),
        (
            mandates.address,
            [COLLECTED, topic(payer), topic(merchant), reference(1)],
            word(100_000) + word(0),
        ),
    ]
    assert await balances(usdc, payer, merchant, mandates.address, collector) == [
        FUNDS - 100_000,
        100_000,
        0,
        0,
    ]
    assert await usdc.contract.functions.allowance(payer, mandates.address).call() == (
        FUNDS - 100_000
    )
    assert await mandates.collected(reference(1)) is True
    assert await mandates.collected(reference(2)) is False
    assert await mandates.mandate(payer, merchant) == MandateState(
        CAP, DAY, start, start + 30 * DAY, 0, 100_000, False
    )
    assert await mandates.available(payer, merchant) == CAP - 100_000

    # The rest of the cap, to the base unit, in a second collection.
    rest = await collect_at(
        usdc, mandates, collector, start + 120, payer, merchant, CAP - 100_000, reference(2)
    )
    assert rest["status"] == 1
    assert await balances(usdc, payer, merchant) == [FUNDS - CAP, CAP]
    assert await mandates.available(payer, merchant) == 0


async def test_a_period_rolls_over_at_its_boundary(
    usdc: MockUsdc, mandates: Mandates, mandate_payer: Wallet, collector: str
) -> None:
    payer, merchant = mandate_payer.address, new_key().address
    start = await usdc.block_time() + 5
    await created_at(usdc, mandates, payer, merchant, start, cap=CAP, period=DAY)

    async def collect(block_time: int, amount: int, number: int) -> Any:
        return await collect_at(
            usdc, mandates, collector, block_time, payer, merchant, amount, reference(number)
        )

    assert (await collect(start, CAP, 1))["status"] == 1
    # Still period 0 one second before its end: the cap is spent.
    last_second = await collect(start + DAY - 1, 1, 2)
    assert await reason_mined(usdc, last_second) == "cap exceeded"
    # Period 1 begins at start + period exactly, with the whole cap.
    first_second = await collect(start + DAY, CAP, 3)
    assert first_second["status"] == 1
    assert only_event(mandates, first_second).args["period_index"] == 1
    assert await mandates.mandate(payer, merchant) == MandateState(
        CAP, DAY, start, start + 30 * DAY, 1, CAP, False
    )
    # Periods with no collection are skipped, not accumulated: period 4 has one cap too.
    await mine_next_at(usdc, start + 4 * DAY + 10)
    await usdc.mine(1)
    assert await mandates.available(payer, merchant) == CAP
    skipped = await collect(start + 4 * DAY + 20, CAP + 1, 4)
    assert await reason_mined(usdc, skipped) == "cap exceeded"
    partial = await collect(start + 4 * DAY + 30, 40_000, 5)
    assert only_event(mandates, partial).args == {
        "payer": payer,
        "merchant": merchant,
        "reference": reference(5),
        "amount": 40_000,
        "period_index": 4,
    }
    assert await mandates.available(payer, merchant) == CAP - 40_000
    assert await balances(usdc, payer, merchant) == [
        FUNDS - 2 * CAP - 40_000,
        2 * CAP + 40_000,
    ]


async def test_a_mandate_collects_until_its_expiry(
    usdc: MockUsdc, mandates: Mandates, mandate_payer: Wallet, collector: str
) -> None:
    payer, merchant = mandate_payer.address, new_key().address
    start = await usdc.block_time() + 5
    expiry = start + 3 * DAY
    await created_at(usdc, mandates, payer, merchant, start, expiry=expiry)

    before = await collect_at(
        usdc, mandates, collector, expiry - 1, payer, merchant, 1_000, reference(1)
    )
    assert before["status"] == 1
    at_expiry = await collect_at(
        usdc, mandates, collector, expiry, payer, merchant, 1_000, reference(2)
    )
    assert await reason_mined(usdc, at_expiry) == "mandate expired"
    assert await mandates.available(payer, merchant) == 0
    assert await balances(usdc, payer, merchant) == [FUNDS - 1_000, 1_000]


async def test_a_payer_revokes(
    usdc: MockUsdc, mandates: Mandates, mandate_payer: Wallet, collector: str
) -> None:
    payer, merchant = mandate_payer.address, new_key().address
    start = await usdc.block_time() + 5
    await created_at(usdc, mandates, payer, merchant, start)
    await collect_at(usdc, mandates, collector, start + 1, payer, merchant, 7_000, reference(1))

    receipt = await mandates.revoke(payer, merchant)

    assert [(e.name, e.args) for e in mandates.events_of(receipt)] == [
        ("MandateRevoked", {"payer": payer, "merchant": merchant})
    ]
    # What it collected stays readable.
    assert await mandates.mandate(payer, merchant) == MandateState(
        CAP, DAY, start, start + 30 * DAY, 0, 7_000, True
    )
    assert await mandates.available(payer, merchant) == 0
    # Created (1), revoked (2): a signed mandate made before the revocation no longer verifies.
    assert await mandates.nonce(payer) == 2
    refused = await collect_at(
        usdc, mandates, collector, start + 10, payer, merchant, 1, reference(2)
    )
    assert await reason_mined(usdc, refused) == "mandate revoked"
    assert await balances(usdc, payer, merchant) == [FUNDS - 7_000, 7_000]


async def test_creating_again_replaces_the_mandate_and_starts_a_period(
    usdc: MockUsdc, mandates: Mandates, mandate_payer: Wallet, collector: str
) -> None:
    payer, merchant = mandate_payer.address, new_key().address
    start = await usdc.block_time() + 5
    await created_at(usdc, mandates, payer, merchant, start)
    await collect_at(usdc, mandates, collector, start + 1, payer, merchant, CAP, reference(1))

    # Halfway through the day, a smaller cap per week: its period 0 starts now, unspent.
    later = start + DAY // 2
    replaced = await created_at(
        usdc, mandates, payer, merchant, later, cap=50_000, period=7 * DAY, expiry=later + DAY
    )
    assert await mandates.mandate(payer, merchant) == replaced
    assert await mandates.available(payer, merchant) == 50_000
    over = await collect_at(
        usdc, mandates, collector, later + 1, payer, merchant, 50_001, reference(2)
    )
    assert await reason_mined(usdc, over) == "cap exceeded"
    within = await collect_at(
        usdc, mandates, collector, later + 2, payer, merchant, 50_000, reference(3)
    )
    assert only_event(mandates, within).args["period_index"] == 0
    assert await balances(usdc, payer, merchant) == [FUNDS - CAP - 50_000, CAP + 50_000]

    # A revoked mandate is brought back only by a new creation.
    await mandates.revoke(payer, merchant)
    again = await created_at(usdc, mandates, payer, merchant, later + 10)
    assert await mandates.mandate(payer, merchant) == again
    assert await mandates.available(payer, merchant) == CAP


async def test_a_relayed_signature_creates_a_mandate_the_payer_pays_no_gas_for(
    usdc: MockUsdc, anvil: Anvil, mandates: Mandates, collector: str
) -> None:
    """A payer with USDC and no ether: an EIP-2612 permit and a signed mandate, both relayed,
    then a collection."""
    payer, merchant = new_key(), new_key().address
    await usdc.mint(payer.address, FUNDS, anvil.accounts[0])
    relayer = collector
    now = await usdc.block_time()
    permit = {
        "owner": payer.address,
        "spender": mandates.address,
        "value": CAP,
        "nonce": 0,
        "deadline": now + 600,
    }
    v, r, s = split_signature(eip712.sign(payer.key, usdc.address, "Permit", permit))
    await send(
        usdc,
        usdc.contract.functions.permit(
            payer.address, mandates.address, CAP, permit["deadline"], v, r, s
        ),
        relayer,
    )
    message = {
        "payer": payer.address,
        "merchant": merchant,
        "cap": CAP,
        "period": DAY,
        "expiry": now + 30 * DAY,
        "nonce": await mandates.nonce(payer.address),
        "deadline": now + 600,
    }
    signature = mandate_signature.sign(payer.key, CHAIN_ID, mandates.address, message)

    start = now + 5
    await mine_next_at(usdc, start)
    receipt = await mandates.create_with_signature(relayer, message, signature)

    assert only_event(mandates, receipt).args == {
        "payer": payer.address,
        "merchant": merchant,
        "cap": CAP,
        "period": DAY,
        "start": start,
        "expiry": now + 30 * DAY,
    }
    assert await mandates.nonce(payer.address) == 1
    assert await mandates.mandate(payer.address, merchant) == MandateState(
        CAP, DAY, start, now + 30 * DAY, 0, 0, False
    )
    collected = await collect_at(
        usdc, mandates, collector, start + 1, payer.address, merchant, CAP, reference(1)
    )
    assert collected["status"] == 1
    assert await balances(usdc, payer.address, merchant) == [FUNDS - CAP, CAP]
    assert await usdc.w3.eth.get_balance(payer.address) == 0  # type: ignore[arg-type]


async def test_anvil_signs_a_mandate_with_eth_sign_typed_data_v4(
    usdc: MockUsdc, anvil: Anvil, mandates: Mandates, collector: str
) -> None:
    """What the checkout page's injected wallet will call, for a dev account anvil holds."""
    payer = anvil.accounts[ANVIL_WALLET]
    merchant = new_key().address
    await usdc.mint(payer, 600_000, anvil.accounts[0])
    await send(usdc, usdc.contract.functions.approve(mandates.address, 600_000), payer)
    before = await usdc.balance(payer)
    now = await usdc.block_time()
    message = {
        "payer": payer,
        "merchant": merchant,
        "cap": 600_000,
        "period": 7 * DAY,
        "expiry": now + 365 * DAY,
        "nonce": await mandates.nonce(payer),
        "deadline": now + 600,
    }
    response = await usdc.w3.provider.make_request(
        "eth_signTypedData_v4",
        [payer, json.dumps(mandate_signature.typed_data(CHAIN_ID, mandates.address, message))],
    )
    # The same signature eth-account makes: anvil and the wallet-side module agree.
    key = anvil.private_keys[ANVIL_WALLET]
    assert response["result"] == mandate_signature.sign(key, CHAIN_ID, mandates.address, message)

    await mine_next_at(usdc, now + 5)
    await mandates.create_with_signature(collector, message, response["result"])
    receipt = await collect_at(
        usdc, mandates, collector, now + 6, payer, merchant, 600_000, reference(1)
    )

    assert receipt["status"] == 1
    assert await balances(usdc, payer, merchant) == [before - 600_000, 600_000]


async def test_the_owner_rotates_the_collector(
    usdc: MockUsdc, mandates: Mandates, mandate_owner: str, collector: str, mandate_payer: Wallet
) -> None:
    payer, merchant = mandate_payer.address, new_key().address
    start = await usdc.block_time() + 5
    await created_at(usdc, mandates, payer, merchant, start)
    successor = new_key().address
    await usdc.w3.provider.make_request("anvil_setBalance", [successor, hex(10**18)])
    await usdc.w3.provider.make_request("anvil_impersonateAccount", [successor])

    receipt = await mandates.set_collector(mandate_owner, successor)

    assert [(e.name, e.args) for e in mandates.events_of(receipt)] == [
        ("CollectorChanged", {"previous": collector, "new": successor})
    ]
    assert await mandates.collector() == successor
    retired = await collect_at(usdc, mandates, collector, start + 1, payer, merchant, 1, b"\1" * 32)
    assert await reason_mined(usdc, retired) == "not collector"
    current = await collect_at(usdc, mandates, successor, start + 2, payer, merchant, 1, b"\1" * 32)
    assert current["status"] == 1
    assert await balances(usdc, payer, merchant) == [FUNDS - 1, 1]


async def test_the_events_tell_a_mandates_history(
    usdc: MockUsdc, mandates: Mandates, mandate_payer: Wallet, collector: str
) -> None:
    """What the chain watcher will read: one eth_getLogs over the contract, in chain order."""
    payer, merchant = mandate_payer.address, new_key().address
    first_block = await usdc.w3.eth.block_number
    start = await usdc.block_time() + 5
    await created_at(usdc, mandates, payer, merchant, start, cap=10, period=60)
    await collect_at(usdc, mandates, collector, start + 61, payer, merchant, 10, reference(9))
    await mandates.revoke(payer, merchant)

    history = [(e.name, e.args) for e in await mandates.events(from_block=first_block)]

    assert history == [
        (
            "MandateCreated",
            {
                "payer": payer,
                "merchant": merchant,
                "cap": 10,
                "period": 60,
                "start": start,
                "expiry": start + 30 * DAY,
            },
        ),
        (
            "Collected",
            {
                "payer": payer,
                "merchant": merchant,
                "reference": reference(9),
                "amount": 10,
                "period_index": 1,
            },
        ),
        ("MandateRevoked", {"payer": payer, "merchant": merchant}),
    ]
