"""The formats of hashes and wallet addresses a settlement carries."""

import re

from eth_utils.address import is_checksum_address, to_checksum_address

from service_kit.errors import InvalidArgument

_HASH = re.compile(r"^0x[0-9a-fA-F]{64}$")
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_SIGNATURE = re.compile(r"^0x[0-9a-fA-F]{130}$")
# secp256k1's group order: a signature with s above half of it is the malleable twin of another,
# which USDC (like OpenZeppelin's ECDSA) refuses.
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
MAX_REFERENCE = 128


def bytes32(value: str, field: str) -> str:
    """A 32-byte hash as 0x + 64 hex digits, returned lowercase."""
    if not _HASH.match(value):
        raise InvalidArgument(f"{field} must be 0x followed by 64 hex digits", field=field)
    return value.lower()


def wallet(value: str, field: str) -> str:
    """An address, lowercase or with a valid EIP-55 checksum; returned checksummed."""
    if not _ADDRESS.match(value):
        raise InvalidArgument(f"{field} must be 0x followed by 40 hex digits", field=field)
    hex_digits = value[2:]
    mixed_case = hex_digits != hex_digits.lower() and hex_digits != hex_digits.upper()
    if mixed_case and not is_checksum_address(value):
        raise InvalidArgument(f"{field} has an invalid EIP-55 checksum", field=field)
    return str(to_checksum_address(value))


def payout_wallet(value: str, field: str) -> str:
    """A wallet that can be paid: a valid address other than the zero address, where a transfer
    burns the USDC."""
    address = wallet(value, field)
    if int(address, 16) == 0:
        raise InvalidArgument(f"{field} must not be the zero address", field=field)
    return address


def reference(value: str, field: str) -> str:
    """The id of another service's object (an invoice, a checkout session, a user): required,
    and no longer than any id is."""
    if not value or len(value) > MAX_REFERENCE:
        raise InvalidArgument(f"{field} must be 1-{MAX_REFERENCE} characters", field=field)
    return value


def signature(value: str, field: str) -> bytes:
    """A 65-byte secp256k1 signature (r, s, v) as 0x + 130 hex digits, with Ethereum's v (27 or
    28; a recovery id of 0 or 1 is taken as 27 or 28) and a canonical s."""
    if not _SIGNATURE.match(value):
        raise InvalidArgument(
            f"{field} must be 0x followed by 130 hex digits (r, s, v)", field=field
        )
    raw = bytearray(bytes.fromhex(value[2:]))
    if raw[64] in (0, 1):  # Some wallets give the recovery id, not Ethereum's v.
        raw[64] += 27
    if raw[64] not in (27, 28):
        raise InvalidArgument(f"{field} has a v other than 27 or 28", field=field)
    if int.from_bytes(raw[32:64], "big") > SECP256K1_N // 2:
        raise InvalidArgument(f"{field} is not canonical (s is in the upper half)", field=field)
    return bytes(raw)
