"""The mandate contract (contracts/mandates.vy), read and called through the chain adapter."""

from eth_abi.abi import decode, encode
from eth_utils.address import to_checksum_address

from settlement_svc.adapters.chain import Chain
from settlement_svc.adapters.usdc import selector
from settlement_svc.domain.collections import OnChainMandate

MANDATES = selector("mandates(address,address)")
COLLECT = selector("collect(address,address,uint256,bytes32)")
CREATE_WITH_SIGNATURE = selector(
    "create_mandate_with_signature(address,address,uint256,uint256,uint256,uint256,uint8,bytes32,bytes32)"
)
MANDATE_TUPLE = "(uint256,uint256,uint256,uint256,uint256,uint256,bool)"


def collect_call(payer: str, merchant: str, amount: int, reference: str) -> bytes:
    return COLLECT + encode(
        ["address", "address", "uint256", "bytes32"],
        [payer, merchant, amount, bytes.fromhex(reference[2:])],
    )


def create_with_signature_call(
    payer: str,
    merchant: str,
    cap: int,
    period: int,
    expiry: int,
    deadline: int,
    signature: bytes,
) -> bytes:
    """The call data that creates the mandate the payer signed (65 bytes r, s, v)."""
    r, s, v = signature[:32], signature[32:64], signature[64]
    return CREATE_WITH_SIGNATURE + encode(
        [
            "address",
            "address",
            "uint256",
            "uint256",
            "uint256",
            "uint256",
            "uint8",
            "bytes32",
            "bytes32",
        ],
        [payer, merchant, cap, period, expiry, deadline, v, r, s],
    )


class MandateContract:
    def __init__(self, chain: Chain, address: str) -> None:
        self._chain = chain
        # Checksummed; "" when auto-pay is not configured.
        self.address = str(to_checksum_address(address)) if address else ""

    async def mandate(self, payer: str, merchant: str) -> OnChainMandate:
        data = MANDATES + encode(["address", "address"], [payer, merchant])
        ((cap, period, start, expiry, index, spent, revoked),) = decode(
            [MANDATE_TUPLE], await self._chain.call(self.address, data)
        )
        return OnChainMandate(cap, period, start, expiry, index, spent, bool(revoked))
