"""Signing EIP-3009 authorizations in tests as a wallet does: eth-account's typed-data signer
over real USDC's TransferWithAuthorization type (devstack/eip3009.py, not settlement_svc's copy,
so a mistake there cannot hide in both)."""

from typing import Any

from eth_account import Account

from billing.settlement.v1 import settlement_pb2 as pb
from devstack import eip3009


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
    signature = eip3009.sign(
        key,
        request.token_name,
        request.token_version,
        request.chain_id,
        request.token_address,
        message,
    )
    return pb.Authorization(
        from_address=message["from"],
        to_address=message["to"],
        value=str(message["value"]),
        valid_after=str(message["validAfter"]),
        valid_before=str(message["validBefore"]),
        nonce=message["nonce"],
        signature=signature,
    )
