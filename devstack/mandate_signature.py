"""A mandate as a wallet signs it: the EIP-712 typed data of contracts/mandates.vy's `Mandate`
under the contract's domain. Wallet-side code (the tests, the demo's anvil-signed mandate)
uses this; the contract checks it with its own copy of the type, so a mistake in one
shows against the other."""

from typing import Any

from eth_account import Account

NAME = "Mandates"
VERSION = "1"

DOMAIN = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]
MANDATE = [
    {"name": "payer", "type": "address"},
    {"name": "merchant", "type": "address"},
    {"name": "cap", "type": "uint256"},
    {"name": "period", "type": "uint256"},
    {"name": "expiry", "type": "uint256"},
    {"name": "nonce", "type": "uint256"},
    {"name": "deadline", "type": "uint256"},
]
INTEGER_FIELDS = ("cap", "period", "expiry", "nonce", "deadline")


def typed_data(chain_id: int, contract: str, message: dict[str, Any]) -> dict[str, Any]:
    """The argument of eth_signTypedData_v4 for a Mandate message (payer, merchant, cap,
    period, expiry, nonce, deadline; integers as ints or decimal strings)."""
    return {
        "types": {"EIP712Domain": DOMAIN, "Mandate": MANDATE},
        "primaryType": "Mandate",
        "domain": {
            "name": NAME,
            "version": VERSION,
            "chainId": chain_id,
            "verifyingContract": contract,
        },
        "message": message,
    }


def sign(key: str, chain_id: int, contract: str, message: dict[str, Any]) -> str:
    """The 65-byte signature (0x + r, s, v) of eth-account's typed-data signer."""
    integers = {k: int(v) if k in INTEGER_FIELDS else v for k, v in message.items()}
    signed = Account.sign_typed_data(key, full_message=typed_data(chain_id, contract, integers))
    return "0x" + bytes(signed.signature).hex()
