"""Which IP addresses are public, and how hosts written as numbers are read.

Host parsing follows the WHATWG URL standard's IPv4 rules, because the C library does too:
``getaddrinfo("2130706433")``, ``getaddrinfo("0x7f.1")``, ``getaddrinfo("0177.1")`` and
``getaddrinfo("127.1")`` all mean 127.0.0.1.  See ``service.webhooks.ssrf`` for why that matters.
"""

from __future__ import annotations

import ipaddress
import string
from typing import Final

__all__ = ["IPAddress", "embedded_ipv4", "is_public_address", "parse_ipv4_host"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Ranges refused on top of what ``ipaddress``'s ``is_global`` and friends already refuse, listed
# explicitly because those properties differ between Python releases (and ``is_global`` is True
# for multicast).
_REFUSED_V4: Final = tuple(
    ipaddress.IPv4Network(net)
    for net in (
        "0.0.0.0/8",  # "this network"; 0.0.0.0 reaches the local host on Linux
        "10.0.0.0/8",
        "100.64.0.0/10",  # carrier-grade NAT
        "127.0.0.0/8",
        "169.254.0.0/16",  # link-local, including the 169.254.169.254 metadata service
        "172.16.0.0/12",
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # TEST-NET-1
        "192.88.99.0/24",  # deprecated 6to4 relay anycast
        "192.168.0.0/16",
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # TEST-NET-2
        "203.0.113.0/24",  # TEST-NET-3
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved
        "255.255.255.255/32",  # broadcast
    )
)
_REFUSED_V6: Final = tuple(
    ipaddress.IPv6Network(net)
    for net in (
        "::/128",
        "::1/128",
        "64:ff9b:1::/48",  # local-use NAT64: translates to whatever the operator routes
        "100::/64",  # discard-only
        "2001::/23",  # IETF protocol assignments, Teredo included
        "2001:db8::/32",  # documentation
        "3fff::/20",  # documentation (RFC 9637)
        "5f00::/16",  # SRv6 segment identifiers
        "fc00::/7",  # unique local, including fd00:ec2::254 (the AWS metadata service)
        "fe80::/10",  # link-local
        "fec0::/10",  # deprecated site-local
        "ff00::/8",  # multicast
    )
)
_NAT64_WELL_KNOWN: Final = ipaddress.IPv6Network("64:ff9b::/96")
_IPV4_COMPATIBLE: Final = ipaddress.IPv6Network("::/96")


def embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries and reaches, if it is one of the known forms.

    IPv4-mapped (``::ffff:a.b.c.d``) goes straight to the IPv4 host on a dual-stack socket;
    IPv4-compatible (``::a.b.c.d``), 6to4 (``2002:AABB:CCDD::``) and well-known NAT64
    (``64:ff9b::a.b.c.d``) get there through a tunnel or translator.  ``::`` and ``::1`` are not
    treated as embedding ``0.0.0.0``/``0.0.0.1``; they are refused as themselves.
    """
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64_WELL_KNOWN or (ip in _IPV4_COMPATIBLE and int(ip) > 1):
        return ipaddress.IPv4Address(int(ip) & 0xFFFF_FFFF)
    return None


def is_public_address(ip: IPAddress) -> bool:
    """Whether ``ip`` is a globally routable unicast address that webhooks may reach.

    An IPv6 form embedding an IPv4 address gets the IPv4 address's verdict, so
    ``::ffff:127.0.0.1`` and ``64:ff9b::7f00:1`` are refused like 127.0.0.1 itself.
    """
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            return False
        v4 = embedded_ipv4(ip)
        if v4 is not None:
            return is_public_address(v4)
        if ip.is_site_local or any(ip in net for net in _REFUSED_V6):
            return False
    elif any(ip in net for net in _REFUSED_V4):
        return False
    return ip.is_global and not (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


def _ipv4_number(part: str) -> int | None:
    """One dotted part as ``inet_aton`` reads it, or None when it is no number.

    WHATWG agrees except for a bare ``0x``, which it reads as 0 and ``inet_aton`` refuses; it is
    refused here too.
    """
    if part[:2] in ("0x", "0X"):
        digits, base, alphabet = part[2:], 16, "0123456789abcdefABCDEF"
    elif len(part) > 1 and part[0] == "0":
        digits, base, alphabet = part[1:], 8, "01234567"
    else:
        digits, base, alphabet = part, 10, "0123456789"
    if not digits or any(char not in alphabet for char in digits):
        return None
    return int(digits, base)


def parse_ipv4_host(host: str) -> ipaddress.IPv4Address | None:
    """Read ``host`` as an IPv4 address the way URL parsers and ``inet_aton`` do.

    Returns None for a host that does not end in a number (a domain name) and raises
    ``ValueError`` for one that does but is no valid address (``1.2.3.256``, ``0x7g.1``): such a
    host must not reach a resolver, which might read it differently.
    """
    parts = host.split(".")
    if len(parts) > 1 and parts[-1] == "":
        parts.pop()
    last = parts[-1]
    ends_in_number = (last.isascii() and last.isdigit()) or (
        last[:2] in ("0x", "0X") and all(char in string.hexdigits for char in last[2:])
    )
    if not (last and ends_in_number):
        return None
    numbers = [_ipv4_number(part) for part in parts]
    if len(parts) > 4 or any(number is None for number in numbers):
        raise ValueError(f"{host!r} looks like an IPv4 address but is not a valid one")
    values = [number for number in numbers if number is not None]
    if any(value > 255 for value in values[:-1]) or values[-1] >= 256 ** (5 - len(values)):
        raise ValueError(f"{host!r} is out of range for an IPv4 address")
    address = values[-1]
    for index, value in enumerate(values[:-1]):
        address += value * 256 ** (3 - index)
    return ipaddress.IPv4Address(address)
