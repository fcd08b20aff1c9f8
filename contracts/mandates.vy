# pragma version ~=0.4.3
"""
@title Mandates
@notice Auto-pay mandates for USDC: a payer grants one merchant wallet a cap of base units per
        period, for a period length, until an expiry. Only the platform's collector may pull
        under a mandate, only from the payer to that merchant, only within the cap of the
        current period, only before the expiry, and each collection reference at most once.
        The payer revokes at will. The USDC moves by the token's own `transferFrom` on the
        allowance the payer gave this contract: this contract never holds funds.
@dev Invariants (tests/chain/test_mandate_properties.py checks them on random sequences):
     I1. For a mandate, the amounts collected in one period (`(block.timestamp - start) //
         period`) sum to at most its `cap`.
     I2. `collect` moves exactly `amount` from `payer` to `merchant` and nothing else: no other
         balance changes, and this contract's balance is never touched.
     I3. A reference is collected at most once, across every payer and merchant.
     I4. A revoked or expired mandate (block.timestamp >= expiry) collects nothing.
     I5. A mandate exists only by its payer's consent: the payer's own call, or the payer's
         EIP-712 signature over this contract's domain, used once (a sequential nonce).
     Period boundaries are counted from `start`, in block time (the validators' clock, which
     drifts by seconds, not by periods). Creating a mandate again for the same merchant
     replaces it and starts a new period at once: that is the payer's own consent to a new
     cap, so it may collect up to the new cap right away.
     Checks, then effects, then the one interaction (the token's `transferFrom`), which comes
     after every write; the token is fixed at deployment (USDC makes no callbacks).
"""

from ethereum.ercs import IERC20


struct Mandate:
    # Base units the collector may pull per period; 0 marks no mandate (a cap is never 0).
    cap: uint256
    # Seconds per period, > 0.
    period: uint256
    # block.timestamp at creation: period 0 begins here.
    start: uint256
    # Unix time from which nothing can be collected (exclusive bound: collect needs now < expiry).
    expiry: uint256
    # The period that `spent` counts; behind the current one until the next collection.
    period_index: uint256
    # Base units collected in period `period_index`.
    spent: uint256
    revoked: bool


event MandateCreated:
    payer: indexed(address)
    merchant: indexed(address)
    cap: uint256
    period: uint256
    start: uint256
    expiry: uint256

event MandateRevoked:
    payer: indexed(address)
    merchant: indexed(address)

event Collected:
    payer: indexed(address)
    merchant: indexed(address)
    reference: indexed(bytes32)
    amount: uint256
    period_index: uint256

event CollectorChanged:
    previous: address
    new: address


EIP712_DOMAIN_TYPEHASH: constant(bytes32) = keccak256(
    "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)
EIP712_NAME: constant(String[8]) = "Mandates"
EIP712_VERSION: constant(String[1]) = "1"
MANDATE_TYPEHASH: public(constant(bytes32)) = keccak256(
    "Mandate(address payer,address merchant,uint256 cap,uint256 period,uint256 expiry,uint256 nonce,uint256 deadline)"
)

# secp256k1n / 2. For every signature (r, s) there is a second valid one, (r, n - s); accepting
# only the lower s (EIP-2) makes each signature unique, as USDC and MockUSDC do.
MAX_LOW_S: constant(bytes32) = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0

# The USDC contract. Immutable: a collection can only ever move this token.
token: public(immutable(address))
# The deployer: may only rotate the collector. It can neither collect nor touch a mandate.
owner: public(immutable(address))
# The platform's key that may collect.
collector: public(address)

# payer => merchant => the payer's mandate for that merchant.
mandates: public(HashMap[address, HashMap[address, Mandate]])
# reference => collected already (a reference pays once, whoever the payer and merchant).
collected: public(HashMap[bytes32, bool])
# payer => the nonce their next signed mandate must carry.
nonces: public(HashMap[address, uint256])


@deploy
def __init__(usdc: address, collector: address):
    """
    @param usdc The token collections move (USDC).
    @param collector The platform's collecting key; the owner may rotate it.
    """
    # A zero token or collector would make a contract that can never collect: refuse it here.
    assert usdc != empty(address), "token is zero"
    assert collector != empty(address), "collector is zero"
    token = usdc
    owner = msg.sender
    self.collector = collector
    log CollectorChanged(previous=empty(address), new=collector)


@external
def set_collector(new_collector: address):
    """
    @notice Rotates the collecting key (a compromised or retired one stops working at once).
            Only the owner. Emits CollectorChanged.
    @dev The owner chooses who collects, never how much: every collection stays bound by the
         payers' mandates.
    """
    assert msg.sender == owner, "not owner"
    # Zero would silently stop every collection; a pause is not this function's job.
    assert new_collector != empty(address), "collector is zero"
    previous: address = self.collector
    self.collector = new_collector
    log CollectorChanged(previous=previous, new=new_collector)


@external
def create_mandate(merchant: address, cap: uint256, period: uint256, expiry: uint256):
    """
    @notice Grants `merchant` a mandate on the caller's USDC: up to `cap` base units per
            `period` seconds, until `expiry` (unix time, exclusive). Replaces the caller's
            mandate for that merchant, if any, and starts its first period now.
            Emits MandateCreated.
    @dev The caller must also approve this contract on the token for what may be collected.
         Advances the caller's nonce, so a signed mandate the caller has not yet seen relayed
         can no longer overwrite this one.
    """
    self.nonces[msg.sender] += 1
    self._create(msg.sender, merchant, cap, period, expiry)


@external
def create_mandate_with_signature(
    payer: address,
    merchant: address,
    cap: uint256,
    period: uint256,
    expiry: uint256,
    deadline: uint256,
    v: uint8,
    r: bytes32,
    s: bytes32,
):
    """
    @notice As create_mandate, on the payer's EIP-712 signature of
            Mandate(payer, merchant, cap, period, expiry, nonce, deadline) in this contract's
            domain {name "Mandates", version "1", chainId, verifyingContract}, with the payer's
            current nonce. Anyone may submit it (the platform relays it, so the payer pays no
            gas); it creates only what the payer signed.
    @param deadline Unix time after which the signature is refused (inclusive bound).
    """
    # A signature for a relay that never came must not create a mandate months later.
    assert block.timestamp <= deadline, "signature expired"
    nonce: uint256 = self.nonces[payer]
    struct_hash: bytes32 = keccak256(
        abi_encode(MANDATE_TYPEHASH, payer, merchant, cap, period, expiry, nonce, deadline)
    )
    assert self._signer_of(struct_hash, v, r, s) == payer, "invalid signature"
    # Consumed before the mandate is written: the same signature never verifies again.
    self.nonces[payer] = nonce + 1
    self._create(payer, merchant, cap, period, expiry)


@external
def revoke(merchant: address):
    """
    @notice Revokes the caller's mandate for `merchant`: nothing more can be collected under
            it. Its cap, period and what it collected stay readable. Emits MandateRevoked.
    @dev Advances the caller's nonce too, so no signed mandate still in flight can bring it
         back. The token allowance stays as the payer left it: reducing it is the payer's.
    """
    mandate: Mandate = self.mandates[msg.sender][merchant]
    # Nothing to revoke (none, or revoked already): refused, so a wallet shows it.
    assert mandate.cap != 0 and not mandate.revoked, "no mandate"
    self.mandates[msg.sender][merchant].revoked = True
    self.nonces[msg.sender] += 1
    log MandateRevoked(payer=msg.sender, merchant=merchant)


@external
def collect(payer: address, merchant: address, amount: uint256, reference: bytes32):
    """
    @notice Moves `amount` base units of the token from `payer` to `merchant` under the payer's
            mandate for that merchant, once per `reference`. Only the collector.
            Emits Collected (after the token's Transfer).
    @dev Refusals, in this order: "not collector", "no mandate", "mandate revoked",
         "mandate expired", "amount is zero", "reference used", "cap exceeded"; then the
         token's own (balance, allowance) pass through unchanged.
    """
    assert msg.sender == self.collector, "not collector"
    mandate: Mandate = self.mandates[payer][merchant]
    assert mandate.cap != 0, "no mandate"
    assert not mandate.revoked, "mandate revoked"
    assert block.timestamp < mandate.expiry, "mandate expired"
    # A zero collection would spend a reference and log a payment that moved nothing.
    assert amount != 0, "amount is zero"
    assert not self.collected[reference], "reference used"

    # Roll into the current period: what an earlier period spent does not count in this one.
    index: uint256 = (block.timestamp - mandate.start) // mandate.period
    spent: uint256 = mandate.spent
    if index != mandate.period_index:
        spent = 0
    # spent <= cap always holds, so this cannot underflow; `spent + amount` could overflow.
    assert amount <= mandate.cap - spent, "cap exceeded"

    # Every write before the transfer: a re-entered collect sees the reference spent and the
    # cap consumed.
    self.collected[reference] = True
    self.mandates[payer][merchant].period_index = index
    self.mandates[payer][merchant].spent = spent + amount

    # USDC reverts on a short balance or allowance with its own reason; a token that returned
    # false instead would still be refused here.
    assert extcall IERC20(token).transferFrom(payer, merchant, amount), "transfer failed"
    log Collected(
        payer=payer, merchant=merchant, reference=reference, amount=amount, period_index=index
    )


@view
@external
def available(payer: address, merchant: address) -> uint256:
    """
    @notice What collect would accept for this payer and merchant now, by the mandate alone:
            0 if there is none, or it is revoked or expired, else the cap less what the
            current period collected. The payer's balance and allowance are not counted.
    """
    mandate: Mandate = self.mandates[payer][merchant]
    if mandate.cap == 0 or mandate.revoked or block.timestamp >= mandate.expiry:
        return 0
    if (block.timestamp - mandate.start) // mandate.period != mandate.period_index:
        return mandate.cap
    return mandate.cap - mandate.spent


@view
@external
def DOMAIN_SEPARATOR() -> bytes32:
    """
    @notice The EIP-712 domain separator, computed per call from the current chain id, so a
            signature made for another chain (a fork's other side) never verifies here.
    """
    return self._domain_separator()


@internal
def _create(payer: address, merchant: address, cap: uint256, period: uint256, expiry: uint256):
    # A zero merchant would burn the payer's funds; the payer's own wallet, or this contract,
    # would move nothing to anyone (or lock it here).
    assert merchant != empty(address), "merchant is zero"
    assert merchant != payer, "merchant is payer"
    assert merchant != self, "merchant is this contract"
    # cap 0 is how storage says "no mandate"; period 0 would divide by zero at collection.
    assert cap != 0, "cap is zero"
    assert period != 0, "period is zero"
    # A mandate that is expired at birth could never collect.
    assert expiry > block.timestamp, "expiry passed"

    self.mandates[payer][merchant] = Mandate(
        cap=cap,
        period=period,
        start=block.timestamp,
        expiry=expiry,
        period_index=0,
        spent=0,
        revoked=False,
    )
    log MandateCreated(
        payer=payer, merchant=merchant, cap=cap, period=period, start=block.timestamp, expiry=expiry
    )


@view
@internal
def _domain_separator() -> bytes32:
    return keccak256(
        abi_encode(
            EIP712_DOMAIN_TYPEHASH,
            keccak256(EIP712_NAME),
            keccak256(EIP712_VERSION),
            chain.id,
            self,
        )
    )


@view
@internal
def _signer_of(struct_hash: bytes32, v: uint8, r: bytes32, s: bytes32) -> address:
    """
    @dev The address that signed the EIP-712 message of `struct_hash` in this domain. Refuses,
         with "invalid signature", a malleable (high s), wrongly versioned or unrecoverable one.
    """
    digest: bytes32 = keccak256(concat(b"\x19\x01", self._domain_separator(), struct_hash))
    assert convert(s, uint256) <= convert(MAX_LOW_S, uint256), "invalid signature"
    # The precompile recovers nothing for another v.
    assert v == 27 or v == 28, "invalid signature"
    signer: address = ecrecover(digest, v, r, s)
    # An unrecoverable signature yields the zero address: it must never pass for a payer.
    assert signer != empty(address), "invalid signature"
    return signer
