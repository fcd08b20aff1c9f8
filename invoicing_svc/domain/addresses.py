"""Which network addresses a webhook may reach: public unicast ones only. Loopback, private,
shared (CGNAT), link-local, unique-local, multicast, unspecified and reserved addresses are
internal, however they are spelled: an IPv6 address carrying an internal IPv4 one (mapped,
6to4, NAT64, Teredo) is internal too."""

import ipaddress
from ipaddress import IPv4Address, IPv6Address

IPAddress = IPv4Address | IPv6Address

_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def embedded_ipv4(address: IPv6Address) -> IPv4Address | None:
    """The IPv4 address an IPv6 address carries to a v4 host, if it carries one."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return IPv4Address(int(address) & 0xFFFFFFFF)
    if address.teredo is not None:
        return address.teredo[1]
    return None


def is_public(address: IPAddress) -> bool:
    """True for a globally reachable unicast address. `is_global` alone is not enough on this
    Python: it calls multicast and some IPv4-mapped addresses global."""
    if isinstance(address, IPv6Address):
        embedded = embedded_ipv4(address)
        if address.scope_id or (embedded is not None and not is_public(embedded)):
            return False
    return address.is_global and not (
        address.is_multicast
        or address.is_private
        or address.is_reserved
        or address.is_loopback
        or address.is_link_local
        or address.is_unspecified
    )


def _number(part: str) -> int | None:
    """One part of an IPv4 address as resolvers read it: 0x.. hex, 0.. octal, else decimal."""
    if part.startswith("0x"):
        digits, base = part[2:], 16
    elif len(part) > 1 and part.startswith("0"):
        digits, base = part[1:], 8
    else:
        digits, base = part, 10
    # int() alone would also take "+1", " 1" and "1_0".
    if not (digits.isascii() and digits.isalnum()):
        return None
    try:
        return int(digits, base)
    except ValueError:
        return None


def _ipv4(host: str) -> IPv4Address | None:
    """inet_aton's forms, which getaddrinfo accepts: 127.0.0.1, 127.1, 2130706433, 0x7f000001,
    0177.0.0.1. Raises ValueError for a host that ends in a number but is none of them."""
    parts = host.split(".")
    if _number(parts[-1]) is None:
        return None
    numbers = [_number(part) for part in parts]
    if len(parts) > 4 or None in numbers:
        raise ValueError(f"{host} is not an IPv4 address")
    *leading, last = (n for n in numbers if n is not None)
    if any(n > 0xFF for n in leading) or last >= 1 << (8 * (4 - len(leading))):
        raise ValueError(f"{host} is not an IPv4 address")
    value = last
    for index, byte in enumerate(leading):
        value |= byte << (8 * (3 - index))
    return IPv4Address(value)


def literal_address(host: str) -> IPAddress | None:
    """The address a URL's host names literally (lower case, no brackets, one trailing dot
    allowed), or None when it is a name. Raises ValueError for a malformed number."""
    if ":" in host:
        return IPv6Address(host)
    return _ipv4(host.removesuffix("."))
