"""EIP-3009 TransferWithAuthorization as a wallet signs it: the EIP-712 typed data of real
USDC's type under a token's domain. Wallet-side code (the demo, the benchmark, the tests) uses
this; the platform checks signatures with its own copy (settlement_svc/domain/authorizations.py),
so a mistake in one shows against the other."""

from typing import Any

from eth_account import Account

DOMAIN = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]
TRANSFER_WITH_AUTHORIZATION = [
    {"name": "from", "type": "address"},
    {"name": "to", "type": "address"},
    {"name": "value", "type": "uint256"},
    {"name": "validAfter", "type": "uint256"},
    {"name": "validBefore", "type": "uint256"},
    {"name": "nonce", "type": "bytes32"},
]


def typed_data(
    name: str, version: str, chain_id: int, token: str, message: dict[str, Any]
) -> dict[str, Any]:
    """The argument of eth_signTypedData_v4 (uint256 fields as ints or decimal strings)."""
    return {
        "types": {"EIP712Domain": DOMAIN, "TransferWithAuthorization": TRANSFER_WITH_AUTHORIZATION},
        "primaryType": "TransferWithAuthorization",
        "domain": {
            "name": name,
            "version": version,
            "chainId": chain_id,
            "verifyingContract": token,
        },
        "message": message,
    }


def sign(
    key: str, name: str, version: str, chain_id: int, token: str, message: dict[str, int | str]
) -> str:
    """The 65-byte signature (0x + r, s, v) of eth-account's typed-data signer."""
    integers = {
        k: int(v) if k in ("value", "validAfter", "validBefore") else v for k, v in message.items()
    }
    signed = Account.sign_typed_data(
        key, full_message=typed_data(name, version, chain_id, token, integers)
    )
    return "0x" + bytes(signed.signature).hex()
