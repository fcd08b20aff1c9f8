"""EIP-3009 TransferWithAuthorization: its EIP-712 typed data, its signer, and whether it pays a
payment request. Pure: the chain's answers (time, balance, nonce state) are given.

The relay checks all of this before it sends anything, so a bad authorization costs the platform
no gas and the payer learns exactly what is wrong; the token checks it again on chain.
"""

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data

from service_kit.errors import FailedPrecondition, InvalidArgument
from settlement_svc.domain import formats
from settlement_svc.domain.payment_requests import PaymentRequest

# An authorization must stay valid this long after it is checked, so it can still be mined.
MIN_VALIDITY_SECONDS = 60
MAX_UINT256 = 2**256 - 1
_UINT = re.compile(r"^[0-9]{1,78}$")

TYPES = {
    "EIP712Domain": [
        {"name": "name", "type": "string"},
        {"name": "version", "type": "string"},
        {"name": "chainId", "type": "uint256"},
        {"name": "verifyingContract", "type": "address"},
    ],
    "TransferWithAuthorization": [
        {"name": "from", "type": "address"},
        {"name": "to", "type": "address"},
        {"name": "value", "type": "uint256"},
        {"name": "validAfter", "type": "uint256"},
        {"name": "validBefore", "type": "uint256"},
        {"name": "nonce", "type": "bytes32"},
    ],
}


@dataclass(frozen=True)
class TokenDomain:
    """The token's EIP-712 domain."""

    name: str
    version: str
    chain_id: int
    token: str


@dataclass(frozen=True)
class Authorization:
    payer: str
    payee: str
    value: int
    valid_after: int
    valid_before: int
    nonce: str
    # r (32 bytes) || s (32 bytes) || v (1 byte, 27 or 28).
    signature: bytes

    @property
    def v(self) -> int:
        return self.signature[64]

    @property
    def r(self) -> bytes:
        return self.signature[:32]

    @property
    def s(self) -> bytes:
        return self.signature[32:64]


def _uint(value: str, field: str) -> int:
    if not _UINT.match(value) or int(value) > MAX_UINT256:
        raise InvalidArgument(f"{field} must be a decimal integer of at most 256 bits", field=field)
    return int(value)


def parse(
    payer: str,
    payee: str,
    value: str,
    valid_after: str,
    valid_before: str,
    nonce: str,
    signature: str,
) -> Authorization:
    """The authorization in its wire form (fields of `authorization.*`), checked for format."""
    raw = formats.signature(signature, "authorization.signature")
    return Authorization(
        payer=formats.wallet(payer, "authorization.from_address"),
        payee=formats.wallet(payee, "authorization.to_address"),
        value=_uint(value, "authorization.value"),
        valid_after=_uint(valid_after, "authorization.valid_after"),
        valid_before=_uint(valid_before, "authorization.valid_before"),
        nonce=formats.bytes32(nonce, "authorization.nonce"),
        signature=raw,
    )


def typed_data(authorization: Authorization, domain: TokenDomain) -> dict[str, Any]:
    """The EIP-712 message the payer signs (eth_signTypedData_v4's argument)."""
    return {
        "types": TYPES,
        "primaryType": "TransferWithAuthorization",
        "domain": {
            "name": domain.name,
            "version": domain.version,
            "chainId": domain.chain_id,
            "verifyingContract": domain.token,
        },
        "message": {
            "from": authorization.payer,
            "to": authorization.payee,
            "value": authorization.value,
            "validAfter": authorization.valid_after,
            "validBefore": authorization.valid_before,
            "nonce": authorization.nonce,
        },
    }


def signer(authorization: Authorization, domain: TokenDomain) -> str:
    """The address that signed it (checksummed), or "" when the signature recovers no key."""
    message = encode_typed_data(full_message=typed_data(authorization, domain))
    try:
        return str(Account.recover_message(message, signature=authorization.signature))
    except Exception:  # eth_keys refuses a signature that is not a point of the curve
        return ""


def check_pays(
    authorization: Authorization,
    request: PaymentRequest,
    domain: TokenDomain,
    chain_time: int,
) -> None:
    """Raises, naming the field, unless the authorization pays exactly this request, is signed
    by its payer, and stays valid long enough to be mined (`chain_time`: the latest block's
    timestamp)."""
    if authorization.nonce != request.reference_hash:
        raise InvalidArgument(
            "authorization.nonce must be the payment request's reference hash "
            f"{request.reference_hash}",
            field="authorization.nonce",
        )
    if authorization.payee != request.payee:
        raise InvalidArgument(
            f"authorization.to_address must be the merchant's wallet {request.payee}",
            field="authorization.to_address",
        )
    if authorization.value != request.amount_base_units:
        raise InvalidArgument(
            f"authorization.value must be {request.amount_base_units} base units (the amount "
            f"due), not {authorization.value}",
            field="authorization.value",
        )
    if authorization.valid_after > chain_time:
        raise InvalidArgument(
            f"authorization.valid_after {authorization.valid_after} is in the future (the "
            f"chain's time is {chain_time})",
            field="authorization.valid_after",
        )
    if authorization.valid_before < chain_time + MIN_VALIDITY_SECONDS:
        raise InvalidArgument(
            f"authorization.valid_before must be at least {MIN_VALIDITY_SECONDS} s after the "
            f"chain's time {chain_time}",
            field="authorization.valid_before",
        )
    if authorization.valid_before > _unix(request.expire_time):
        raise InvalidArgument(
            "authorization.valid_before must not be after the payment request's expiry "
            f"{_unix(request.expire_time)}",
            field="authorization.valid_before",
        )
    recovered = signer(authorization, domain)
    if recovered != authorization.payer:
        raise InvalidArgument(
            f"authorization.signature is not {authorization.payer}'s signature of this "
            "authorization",
            field="authorization.signature",
        )


def check_payer(authorization: Authorization, *, nonce_used: bool, balance: int) -> None:
    """What the chain says of the payer: the nonce unused, the balance enough."""
    if nonce_used:
        raise FailedPrecondition(
            "this authorization was already used or canceled on chain",
            field="authorization.nonce",
        )
    if balance < authorization.value:
        raise FailedPrecondition(
            f"the payer holds {balance} base units; the authorization moves {authorization.value}",
            field="authorization.value",
        )


def _unix(moment: datetime) -> int:
    return int(moment.timestamp())
