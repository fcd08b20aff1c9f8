"""USDC's EIP-3009 functions, read and called through the chain adapter (ABI-encoded here)."""

from eth_abi.abi import decode, encode
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from settlement_svc.adapters.chain import Chain
from settlement_svc.domain.authorizations import Authorization


def selector(signature: str) -> bytes:
    """A function's 4-byte ABI selector."""
    return keccak(text=signature)[:4]


AUTHORIZATION_STATE = selector("authorizationState(address,bytes32)")
BALANCE_OF = selector("balanceOf(address)")
ALLOWANCE = selector("allowance(address,address)")
TRANSFER_WITH_AUTHORIZATION = selector(
    "transferWithAuthorization(address,address,uint256,uint256,uint256,bytes32,uint8,bytes32,bytes32)"
)


def transfer_with_authorization(authorization: Authorization) -> bytes:
    """The call data that executes the authorization (anyone may send it; the payee receives)."""
    return TRANSFER_WITH_AUTHORIZATION + encode(
        [
            "address",
            "address",
            "uint256",
            "uint256",
            "uint256",
            "bytes32",
            "uint8",
            "bytes32",
            "bytes32",
        ],
        [
            authorization.payer,
            authorization.payee,
            authorization.value,
            authorization.valid_after,
            authorization.valid_before,
            bytes.fromhex(authorization.nonce[2:]),
            authorization.v,
            authorization.r,
            authorization.s,
        ],
    )


PERMIT = selector("permit(address,address,uint256,uint256,uint8,bytes32,bytes32)")


def permit_call(owner: str, spender: str, value: int, deadline: int, signature: bytes) -> bytes:
    """The call data of the owner's EIP-2612 permit (65 bytes r, s, v); anyone may send it."""
    r, s, v = signature[:32], signature[32:64], signature[64]
    return PERMIT + encode(
        ["address", "address", "uint256", "uint256", "uint8", "bytes32", "bytes32"],
        [owner, spender, value, deadline, v, r, s],
    )


class Usdc:
    def __init__(self, chain: Chain, token: str) -> None:
        self._chain = chain
        # Checksummed; "" when not configured (settlement then serves no chain reads).
        self.token = str(to_checksum_address(token)) if token else ""

    async def authorization_used(self, authorizer: str, nonce: str) -> bool:
        """Whether the authorizer's nonce was used or canceled (authorizationState)."""
        data = AUTHORIZATION_STATE + encode(
            ["address", "bytes32"], [authorizer, bytes.fromhex(nonce[2:])]
        )
        (used,) = decode(["bool"], await self._chain.call(self.token, data))
        return bool(used)

    async def balance_of(self, owner: str) -> int:
        data = BALANCE_OF + encode(["address"], [owner])
        (balance,) = decode(["uint256"], await self._chain.call(self.token, data))
        return int(balance)

    async def allowance(self, owner: str, spender: str) -> int:
        data = ALLOWANCE + encode(["address", "address"], [owner, spender])
        (allowed,) = decode(["uint256"], await self._chain.call(self.token, data))
        return int(allowed)
