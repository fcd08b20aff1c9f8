"""Signing EIP-3009 authorizations in tests as a wallet does: eth-account's typed-data signer
over real USDC's TransferWithAuthorization type, written out here rather than taken from
settlement_svc, so a mistake there cannot hide in both."""

from typing import Any

from eth_account import Account

from billing.settlement.v1 import settlement_pb2 as pb

TRANSFER_WITH_AUTHORIZATION = [
    {"name": "from", "type": "address"},
    {"name": "to", "type": "address"},
    {"name": "value", "type": "uint256"},
    {"name": "validAfter", "type": "uint256"},
    {"name": "validBefore", "type": "uint256"},
    {"name": "nonce", "type": "bytes32"},
]


def sign(key: str, request: pb.PaymentRequest, **overrides: Any) -> pb.Authorization:
    """The payer's authorization of the request (validBefore: its expiry), with `overrides` of
    the message's fields (from, to, value, validAfter, validBefore, nonce)."""
    message: dict[str, Any] = {
        "from": Account.from_key(key).address,
        "to": request.payee_wallet_address,
        "value": int(request.amount_base_units),
        "validAfter": 0,
        "validBefore": request.expire_time.seconds,
        "nonce": request.reference_hash,
    }
    message.update(overrides)
    signed = Account.sign_typed_data(
        key,
        domain_data={
            "name": request.token_name,
            "version": request.token_version,
            "chainId": request.chain_id,
            "verifyingContract": request.token_address,
        },
        message_types={"TransferWithAuthorization": TRANSFER_WITH_AUTHORIZATION},
        message_data=message,
    )
    return pb.Authorization(
        from_address=message["from"],
        to_address=message["to"],
        value=str(message["value"]),
        valid_after=str(message["validAfter"]),
        valid_before=str(message["validBefore"]),
        nonce=message["nonce"],
        signature="0x" + bytes(signed.signature).hex(),
    )
