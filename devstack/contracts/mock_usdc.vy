# pragma version ~=0.4.3
"""
@title MockUSDC
@notice A 6-decimal ERC-20 standing in for USDC on the local chain: the deployer mints.
        Like real USDC (FiatTokenV2_2, circlefin/stablecoin-evm) it implements EIP-3009
        (transferWithAuthorization, receiveWithAuthorization, cancelAuthorization,
        authorizationState) and EIP-2612 (permit, nonces) under the EIP-712 domain
        {name: "USD Coin", version: "2", chainId, verifyingContract: this token}, with
        USDC's type hashes, checks, their order and revert messages. So a signature made
        for this token is made exactly as for USDC.
@dev Dev only. Not here: pausing, blacklists, minter allowances, burning, ERC-1271
     (contract wallet) signatures and the `bytes signature` overloads of V2_2.
"""

# Vyper reserves `from`: the indexed fields keep the standard Transfer topic all the same.
event Transfer:
    sender: indexed(address)
    receiver: indexed(address)
    value: uint256

event Approval:
    owner: indexed(address)
    spender: indexed(address)
    value: uint256

event AuthorizationUsed:
    authorizer: indexed(address)
    nonce: indexed(bytes32)

event AuthorizationCanceled:
    authorizer: indexed(address)
    nonce: indexed(bytes32)

EIP712_DOMAIN_TYPEHASH: constant(bytes32) = keccak256(
    "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)
EIP712_VERSION: constant(String[1]) = "2"

TRANSFER_WITH_AUTHORIZATION_TYPEHASH: public(constant(bytes32)) = keccak256(
    "TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
)
RECEIVE_WITH_AUTHORIZATION_TYPEHASH: public(constant(bytes32)) = keccak256(
    "ReceiveWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
)
CANCEL_AUTHORIZATION_TYPEHASH: public(constant(bytes32)) = keccak256(
    "CancelAuthorization(address authorizer,bytes32 nonce)"
)
PERMIT_TYPEHASH: public(constant(bytes32)) = keccak256(
    "Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)"
)

# secp256k1n / 2. For every signature (r, s) there is a second valid one, (r, n - s), and only
# one of the two has s at most this: accepting that one alone makes each signature unique.
MAX_LOW_S: constant(bytes32) = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0

name: public(String[32])
symbol: public(String[8])
decimals: public(uint8)
totalSupply: public(uint256)
balanceOf: public(HashMap[address, uint256])
allowance: public(HashMap[address, HashMap[address, uint256]])
minter: public(address)

# authorizer => nonce => used or canceled (EIP-3009 nonces are random, not sequential).
_authorization_states: HashMap[address, HashMap[bytes32, bool]]
# owner => the nonce of their next permit (EIP-2612 nonces are sequential).
_permit_nonces: HashMap[address, uint256]


@deploy
def __init__():
    # The EIP-712 domain name: wallets and SDKs sign for "USD Coin", as on real USDC.
    self.name = "USD Coin"
    self.symbol = "USDC"
    self.decimals = 6
    self.minter = msg.sender


@external
def mint(receiver: address, amount: uint256):
    assert msg.sender == self.minter, "only the minter mints"
    self.totalSupply += amount
    self.balanceOf[receiver] += amount
    log Transfer(sender=empty(address), receiver=receiver, value=amount)


@external
def transfer(receiver: address, amount: uint256) -> bool:
    self._transfer(msg.sender, receiver, amount)
    return True


@external
def approve(spender: address, amount: uint256) -> bool:
    self._approve(msg.sender, spender, amount)
    return True


@external
def transferFrom(owner: address, receiver: address, amount: uint256) -> bool:
    assert amount <= self.allowance[owner][msg.sender], "ERC20: transfer amount exceeds allowance"
    self._transfer(owner, receiver, amount)
    self.allowance[owner][msg.sender] -= amount
    return True


@view
@external
def version() -> String[1]:
    """
    @notice The EIP-712 domain version, as FiatTokenV2_1's `version()`.
    """
    return EIP712_VERSION


@view
@external
def DOMAIN_SEPARATOR() -> bytes32:
    """
    @notice The EIP-712 domain separator, computed per call from the current chain id, so a
            signature made for another chain (a fork's other side) never verifies here.
    """
    return self._domain_separator()


@view
@external
def authorizationState(authorizer: address, nonce: bytes32) -> bool:
    """
    @notice Whether the authorizer's nonce was used or canceled.
    """
    return self._authorization_states[authorizer][nonce]


@view
@external
def nonces(owner: address) -> uint256:
    """
    @notice The nonce the owner's next permit must be signed with.
    """
    return self._permit_nonces[owner]


@external
def transferWithAuthorization(
    payer: address,
    payee: address,
    amount: uint256,
    validAfter: uint256,
    validBefore: uint256,
    nonce: bytes32,
    v: uint8,
    r: bytes32,
    s: bytes32,
):
    """
    @notice Moves `amount` from `payer` to `payee` on the payer's signed authorization
            (EIP-712 TransferWithAuthorization, its `from`, `to` and `value`); anyone may
            submit it. Emits AuthorizationUsed, then Transfer.
    @dev A submitter can see the authorization in the mempool and send it first: the payment
         lands all the same, but a contract that expects to make the transfer itself should
         use receiveWithAuthorization.
    """
    self._execute_authorization(
        TRANSFER_WITH_AUTHORIZATION_TYPEHASH,
        payer,
        payee,
        amount,
        validAfter,
        validBefore,
        nonce,
        v,
        r,
        s,
    )


@external
def receiveWithAuthorization(
    payer: address,
    payee: address,
    amount: uint256,
    validAfter: uint256,
    validBefore: uint256,
    nonce: bytes32,
    v: uint8,
    r: bytes32,
    s: bytes32,
):
    """
    @notice As transferWithAuthorization, signed as ReceiveWithAuthorization, and only the
            payee may submit it: nobody can front-run the payee's own call with it.
    """
    assert payee == msg.sender, "FiatTokenV2: caller must be the payee"
    self._execute_authorization(
        RECEIVE_WITH_AUTHORIZATION_TYPEHASH,
        payer,
        payee,
        amount,
        validAfter,
        validBefore,
        nonce,
        v,
        r,
        s,
    )


@external
def cancelAuthorization(authorizer: address, nonce: bytes32, v: uint8, r: bytes32, s: bytes32):
    """
    @notice Marks an unused nonce as used on the authorizer's signed request, so no
            authorization of that nonce can execute. Emits AuthorizationCanceled.
    """
    self._require_unused_authorization(authorizer, nonce)
    struct_hash: bytes32 = keccak256(abi_encode(CANCEL_AUTHORIZATION_TYPEHASH, authorizer, nonce))
    assert self._signer_of(struct_hash, v, r, s) == authorizer, "FiatTokenV2: invalid signature"

    self._authorization_states[authorizer][nonce] = True
    log AuthorizationCanceled(authorizer=authorizer, nonce=nonce)


@external
def permit(
    owner: address,
    spender: address,
    amount: uint256,
    deadline: uint256,
    v: uint8,
    r: bytes32,
    s: bytes32,
):
    """
    @notice Sets `spender`'s allowance of `owner`'s tokens to `amount` on `owner`'s signed
            permit, valid until `deadline` (unix time; max uint256: no deadline).
    @dev The permit is signed over the owner's current nonce, which this call advances: a
         permit is used once, and permits are used in the order they were signed.
    """
    assert deadline == max_value(uint256) or deadline >= block.timestamp, (
        "FiatTokenV2: permit is expired"
    )
    nonce: uint256 = self._permit_nonces[owner]
    self._permit_nonces[owner] = nonce + 1
    struct_hash: bytes32 = keccak256(
        abi_encode(PERMIT_TYPEHASH, owner, spender, amount, nonce, deadline)
    )
    assert self._signer_of(struct_hash, v, r, s) == owner, "EIP2612: invalid signature"

    self._approve(owner, spender, amount)


@internal
def _execute_authorization(
    typehash: bytes32,
    payer: address,
    payee: address,
    amount: uint256,
    valid_after: uint256,
    valid_before: uint256,
    nonce: bytes32,
    v: uint8,
    r: bytes32,
    s: bytes32,
):
    # USDC's order: the window, the nonce, the signature; then the nonce is spent and
    # AuthorizationUsed logged before the transfer (which reverts it all if it fails).
    assert block.timestamp > valid_after, "FiatTokenV2: authorization is not yet valid"
    assert block.timestamp < valid_before, "FiatTokenV2: authorization is expired"
    self._require_unused_authorization(payer, nonce)
    struct_hash: bytes32 = keccak256(
        abi_encode(typehash, payer, payee, amount, valid_after, valid_before, nonce)
    )
    assert self._signer_of(struct_hash, v, r, s) == payer, "FiatTokenV2: invalid signature"

    self._authorization_states[payer][nonce] = True
    log AuthorizationUsed(authorizer=payer, nonce=nonce)
    self._transfer(payer, payee, amount)


@view
@internal
def _require_unused_authorization(authorizer: address, nonce: bytes32):
    assert not self._authorization_states[authorizer][nonce], (
        "FiatTokenV2: authorization is used or canceled"
    )


@view
@internal
def _domain_separator() -> bytes32:
    return keccak256(
        abi_encode(
            EIP712_DOMAIN_TYPEHASH,
            keccak256(self.name),
            keccak256(EIP712_VERSION),
            chain.id,
            self,
        )
    )


@view
@internal
def _signer_of(struct_hash: bytes32, v: uint8, r: bytes32, s: bytes32) -> address:
    """
    @dev The address that signed the EIP-712 message of `struct_hash` in this token's domain,
         as USDC's ECRecover.recover: reverts on a malleable or unrecoverable signature
         instead of returning an address.
    """
    digest: bytes32 = keccak256(concat(b"\x19\x01", self._domain_separator(), struct_hash))
    # Malleability: (r, n - s) with the other v is a second valid signature of the same
    # message. Nonces stop it from being replayed here, but anyone keying a payment by its
    # signature would see two; USDC accepts only the lower s (EIP-2), and so do we.
    assert convert(s, uint256) <= convert(MAX_LOW_S, uint256), (
        "ECRecover: invalid signature 's' value"
    )
    # The precompile recovers nothing for another v; checked first for USDC's message.
    assert v == 27 or v == 28, "ECRecover: invalid signature 'v' value"
    signer: address = ecrecover(digest, v, r, s)
    # A signature that recovers no key yields the zero address: it must never pass for an
    # authorizer, or anyone could spend what the zero address holds (tokens sent to it).
    assert signer != empty(address), "ECRecover: invalid signature"
    return signer


@internal
def _transfer(sender: address, receiver: address, amount: uint256):
    assert sender != empty(address), "ERC20: transfer from the zero address"
    assert receiver != empty(address), "ERC20: transfer to the zero address"
    assert amount <= self.balanceOf[sender], "ERC20: transfer amount exceeds balance"
    self.balanceOf[sender] -= amount
    self.balanceOf[receiver] += amount
    log Transfer(sender=sender, receiver=receiver, value=amount)


@internal
def _approve(owner: address, spender: address, amount: uint256):
    assert owner != empty(address), "ERC20: approve from the zero address"
    assert spender != empty(address), "ERC20: approve to the zero address"
    self.allowance[owner][spender] = amount
    log Approval(owner=owner, spender=spender, value=amount)
