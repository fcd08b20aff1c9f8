"""Real USDC's EIP-712 domain and types, written out from circlefin/stablecoin-evm
(contracts/util/EIP712.sol, contracts/v2/EIP3009.sol, EIP2612.sol, FiatTokenV2_2.sol) rather
than taken from the token under test, and signed with eth-account as a wallet signs them."""

from typing import Any

from eth_account import Account

from devstack.chain import CHAIN_ID, split_signature

NAME = "USD Coin"
VERSION = "2"

EIP712_DOMAIN = "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
# Each public type-hash constant of FiatTokenV2: its type string and the value Circle's source
# declares for it.
TYPE_HASHES = {
    "TRANSFER_WITH_AUTHORIZATION_TYPEHASH": (
        "TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,"
        "uint256 validBefore,bytes32 nonce)",
        "0x7c7c6cdb67a18743f49ec6fa9b35f50d52ed05cbed4cc592e13b44501c1a2267",
    ),
    "RECEIVE_WITH_AUTHORIZATION_TYPEHASH": (
        "ReceiveWithAuthorization(address from,address to,uint256 value,uint256 validAfter,"
        "uint256 validBefore,bytes32 nonce)",
        "0xd099cc98ef71107a616c4f0f941f04c322d8e254fe26b3c6668db87aae413de8",
    ),
    "CANCEL_AUTHORIZATION_TYPEHASH": (
        "CancelAuthorization(address authorizer,bytes32 nonce)",
        "0x158b0a9edf7a828aad02f63cd515c68ef2f50ba807396f6d12842833a1597429",
    ),
    "PERMIT_TYPEHASH": (
        "Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)",
        "0x6e71edae12b1b97f4d1f60370fef10105fa2faae0126114a169c64845d6126c9",
    ),
}

_AUTHORIZATION = [
    {"name": "from", "type": "address"},
    {"name": "to", "type": "address"},
    {"name": "value", "type": "uint256"},
    {"name": "validAfter", "type": "uint256"},
    {"name": "validBefore", "type": "uint256"},
    {"name": "nonce", "type": "bytes32"},
]
TYPES: dict[str, list[dict[str, str]]] = {
    "TransferWithAuthorization": _AUTHORIZATION,
    "ReceiveWithAuthorization": _AUTHORIZATION,
    "CancelAuthorization": [
        {"name": "authorizer", "type": "address"},
        {"name": "nonce", "type": "bytes32"},
    ],
    "Permit": [
        {"name": "owner", "type": "address"},
        {"name": "spender", "type": "address"},
        {"name": "value", "type": "uint256"},
        {"name": "nonce", "type": "uint256"},
        {"name": "deadline", "type": "uint256"},
    ],
}

# secp256k1's group order.
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def domain(token: str, chain_id: int = CHAIN_ID) -> dict[str, Any]:
    return {"name": NAME, "version": VERSION, "chainId": chain_id, "verifyingContract": token}


def typed_data(token: str, primary_type: str, message: dict[str, Any]) -> dict[str, Any]:
    """The whole EIP-712 document of `message`, as eth_signTypedData_v4 takes it (JSON)."""
    return {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            primary_type: TYPES[primary_type],
        },
        "primaryType": primary_type,
        "domain": domain(token),
        "message": message,
    }


def sign(
    key: str, token: str, primary_type: str, message: dict[str, Any], chain_id: int = CHAIN_ID
) -> str:
    """`key`'s signature of `message` in USDC's domain: 0x + r, s, v (65 bytes)."""
    signed = Account.sign_typed_data(
        key,
        domain_data=domain(token, chain_id),
        message_types={primary_type: TYPES[primary_type]},
        message_data=message,
    )
    return "0x" + bytes(signed.signature).hex()


def high_s_twin(signature: str) -> str:
    """The other valid signature of the same message by the same key: (r, n - s), v flipped."""
    v, r, s = split_signature(signature)
    twin_s = SECP256K1_N - int.from_bytes(s, "big")
    return "0x" + (r + twin_s.to_bytes(32, "big") + bytes([55 - v])).hex()
