"""The SSRF guard for outgoing webhook calls: only public addresses, checked at connect time.

A callback URL comes from a client, so without a guard the worker would POST wherever it points:
Redis on loopback, the cloud metadata service, an admin panel on the private network.  Two layers
stop that:

* :func:`check_url` validates a URL without touching the network (scheme, host, userinfo, and
  addresses written as literals).  The API calls it when a job is submitted, so an obviously bad
  URL is refused with 422 instead of failing seven deliveries later.
* :class:`GuardedTransport` is the httpx transport every webhook request goes through.  It repeats
  :func:`check_url`, resolves the host itself, requires *every* resolved address to be public (or
  allowlisted) and then connects to the address it checked, so a DNS answer that changes between
  the check and the connect (DNS rebinding) cannot redirect the request.

Host parsing follows the WHATWG URL standard's IPv4 rules, because the C library does too:
``getaddrinfo("2130706433")``, ``getaddrinfo("0x7f.1")``, ``getaddrinfo("0177.1")`` and
``getaddrinfo("127.1")`` all mean 127.0.0.1.  httpx 0.28 does not normalize these: it keeps them
as opaque host names (and only rejects dotted quads with leading zeros, ``0177.0.0.1``), so left
alone they would reach ``getaddrinfo`` and connect to loopback.  A host that *ends in a number* is
therefore parsed here as an IPv4 address (decimal, octal with a leading ``0``, hex with ``0x``; one
to four parts), checked as that address and connected to as that address; one that does not parse
is refused.  httpx also keeps percent escapes (``%31%32%37.0.0.1``) in hosts; anything outside
hostname characters is refused.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
import ssl
import string
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Final

import httpx

from service.errors import ConfigError, InputError

__all__ = [
    "AllowList",
    "AllowListError",
    "CallbackRefusedError",
    "GuardedTransport",
    "IPAddress",
    "ParsedTarget",
    "Resolver",
    "check_url",
    "check_url_syntax",
    "embedded_ipv4",
    "is_public_address",
    "parse_ipv4_host",
    "resolve_target",
    "system_resolver",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
#: Resolves ``(host, port)`` to the addresses a connection could reach.
Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]

#: Longer URLs are refused: no legitimate callback needs more, and logs stay readable.
MAX_URL_LENGTH: Final = 2048
#: Addresses of one name tried in turn when connecting fails (a dead IPv6 route, say).
MAX_CONNECT_ADDRESSES: Final = 3
_SCHEMES: Final = frozenset({"http", "https"})
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
#: What an ASCII (IDNA-encoded) hostname may contain.  httpx lets ``%`` escapes and NUL through in
#: hosts, which resolvers then read in their own ways; nothing outside this set is sent anywhere.
_HOSTNAME_RE: Final = re.compile(r"^[a-z0-9_](?:[a-z0-9_.-]*[a-z0-9_])?\.?$")

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


class CallbackRefusedError(InputError):
    """A callback URL or the address it leads to is not one webhooks may call."""

    code = "callback_url_refused"

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"callback URL refused: {reason}")


class AllowListError(ConfigError):
    """An entry of ``KURZ_WEBHOOK_ALLOW_HOSTS`` is neither a hostname nor an IP network."""

    code = "webhook_allow_hosts"


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


class AllowList:
    """Hosts and networks that callbacks may reach although they are not public addresses.

    For a deployment whose receivers live on the private network (or for tests on loopback).  A
    hostname entry exempts that exact name (case-insensitive, no wildcards) from every address
    check; a network entry (``10.1.0.0/16``, or one address such as ``127.0.0.1``) exempts
    addresses inside it.  ``AllowList()`` allows nothing.  A bad entry raises
    :class:`AllowListError`, so a typo stops the process instead of silently blocking webhooks.
    """

    __slots__ = ("hosts", "networks")

    def __init__(self, entries: Iterable[str] = ()) -> None:
        hosts: set[str] = set()
        networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for raw in entries:
            entry = raw.strip()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
                continue
            except ValueError:
                pass
            try:
                name = entry.encode("idna").decode("ascii").lower().rstrip(".")
            except UnicodeError as exc:
                raise AllowListError(f"webhook allow-list entry {entry!r}: {exc}") from exc
            if not _HOSTNAME_RE.match(name):
                raise AllowListError(
                    f"webhook allow-list entry {entry!r} is neither a hostname nor an IP network"
                )
            hosts.add(name)
        self.hosts: frozenset[str] = frozenset(hosts)
        self.networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = tuple(networks)

    @classmethod
    def from_settings(cls, entries: Iterable[str]) -> AllowList:
        """Build from ``Settings.webhook_allow_hosts`` (``KURZ_WEBHOOK_ALLOW_HOSTS``)."""
        return cls(entries)

    def __repr__(self) -> str:
        entries = sorted(self.hosts) + [str(net) for net in self.networks]
        return f"AllowList({entries!r})"

    def allows_host(self, host: str) -> bool:
        """Whether ``host`` (ASCII, as in a URL) is exempt by name."""
        return host.lower().rstrip(".") in self.hosts

    def allows_address(self, ip: IPAddress) -> bool:
        """Whether ``ip`` (or the IPv4 address it embeds) lies in an allowed network."""
        candidates: list[IPAddress] = [ip]
        if isinstance(ip, ipaddress.IPv6Address):
            v4 = embedded_ipv4(ip)
            if v4 is not None:
                candidates.append(v4)
        return any(
            candidate.version == net.version and candidate in net
            for candidate in candidates
            for net in self.networks
        )


@dataclass(frozen=True, slots=True)
class ParsedTarget:
    """A callback URL that passed :func:`check_url`, with its host already normalized."""

    url: httpx.URL
    scheme: str
    #: ASCII host as the URL spells it (IDNA-encoded, lower case, IPv6 without brackets).
    host: str
    port: int
    #: The address when the host is an IP literal in any spelling (``0x7f.1`` -> 127.0.0.1).
    ip: IPAddress | None = field(default=None)


def check_url(url: str | httpx.URL, allow: AllowList) -> ParsedTarget:
    """Validate a callback URL without any network access; raise ``CallbackRefusedError``.

    Refused: what :func:`check_url_syntax` refuses, characters that have no place in a hostname,
    ``localhost`` names, and IP literals (in any spelling) that are neither public nor allowed.
    Hostnames are only resolved when connecting, by :class:`GuardedTransport`.
    """
    parsed = check_url_syntax(url)
    text = str(parsed)
    scheme = parsed.scheme
    host = parsed.raw_host.decode("ascii").lower()
    port = parsed.port if parsed.port is not None else _DEFAULT_PORTS[scheme]
    ip = _literal_address(text, host)
    if ip is not None:
        if not (is_public_address(ip) or allow.allows_address(ip) or allow.allows_host(host)):
            raise CallbackRefusedError(text, f"{_describe(ip)} is not a public address")
    elif not allow.allows_host(host):
        if not _HOSTNAME_RE.match(host):
            raise CallbackRefusedError(text, f"host {host!r} contains characters not allowed")
        name = host.rstrip(".")
        if name == "localhost" or name.endswith(".localhost"):
            raise CallbackRefusedError(text, f"{name!r} always means this machine")
    return ParsedTarget(url=parsed, scheme=scheme, host=host, port=port, ip=ip)


def check_url_syntax(url: str | httpx.URL) -> httpx.URL:
    """The parsed URL if its form is acceptable, whatever the allow-list; else refuse it.

    Refused: invalid URLs, anything but http/https, userinfo (``http://good.example@127.0.0.1/``
    is a classic way to make a reader see the wrong host), a missing host, port 0 or above 65535,
    and URLs over ``MAX_URL_LENGTH``.  Callers check this before handing a URL to an httpx client,
    which resolves a host-less URL such as ``file:///etc/passwd`` against its base URL and would
    report a misleading reason.
    """
    text = str(url)
    if len(text) > MAX_URL_LENGTH:
        raise CallbackRefusedError(
            text[:100], f"the URL is longer than {MAX_URL_LENGTH} characters"
        )
    try:
        parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise CallbackRefusedError(text, f"not a valid URL ({exc})") from exc
    if parsed.scheme not in _SCHEMES:
        raise CallbackRefusedError(
            text, f"scheme {parsed.scheme or '(none)'!r} is not allowed; use http or https"
        )
    if parsed.userinfo:
        raise CallbackRefusedError(text, "credentials in the URL (user@host) are not allowed")
    if not parsed.raw_host:
        raise CallbackRefusedError(text, "the URL has no host")
    port = parsed.port if parsed.port is not None else _DEFAULT_PORTS[parsed.scheme]
    if not 0 < port < 65536:
        raise CallbackRefusedError(text, f"port {port} is out of range")
    return parsed


def _describe(ip: IPAddress) -> str:
    """An address for a refusal message, with the IPv4 address it embeds spelled out."""
    v4 = embedded_ipv4(ip) if isinstance(ip, ipaddress.IPv6Address) else None
    return f"{ip} ({v4})" if v4 is not None else str(ip)


def _literal_address(text: str, host: str) -> IPAddress | None:
    """The address a host names when it is an IP literal in any spelling, else None."""
    if ":" in host:
        if "%" in host:
            raise CallbackRefusedError(text, "IPv6 zone identifiers are not allowed")
        try:
            return ipaddress.IPv6Address(host)
        except ValueError as exc:
            raise CallbackRefusedError(text, f"invalid IPv6 address ({exc})") from exc
    try:
        return parse_ipv4_host(host)
    except ValueError as exc:
        raise CallbackRefusedError(text, str(exc)) from exc


async def system_resolver(host: str, port: int) -> list[IPAddress]:
    """Every address the system resolver gives for ``host`` (TCP), in its preferred order."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _canonname, sockaddr in infos:
        ip = ipaddress.ip_address(str(sockaddr[0]))
        if ip not in addresses:
            addresses.append(ip)
    return addresses


async def resolve_target(
    target: ParsedTarget, allow: AllowList, resolver: Resolver = system_resolver
) -> list[IPAddress]:
    """The addresses to connect to for ``target``, all of them checked.

    Raises ``CallbackRefusedError`` when *any* address is refused: with a mix, a resolver (or an
    attacker's DNS server) decides which one is used, so one bad answer spoils the name.  Raises
    ``httpx.ConnectError`` when the name does not resolve, which is a network failure, not a
    refusal.
    """
    if target.ip is not None:
        return [target.ip]
    try:
        addresses = await resolver(target.host, target.port)
    except (OSError, UnicodeError) as exc:
        raise httpx.ConnectError(f"cannot resolve {target.host!r}: {exc}") from exc
    if not addresses:
        raise httpx.ConnectError(f"{target.host!r} resolves to no address")
    if allow.allows_host(target.host):
        return addresses
    refused = [ip for ip in addresses if not (is_public_address(ip) or allow.allows_address(ip))]
    if refused:
        listed = ", ".join(_describe(ip) for ip in refused)
        raise CallbackRefusedError(
            str(target.url), f"{target.host!r} resolves to {listed}, not a public address"
        )
    return addresses


class GuardedTransport(httpx.AsyncBaseTransport):
    """An httpx transport that connects only to checked addresses.

    Each request's host is resolved here, every address checked, and the request is sent to the
    checked address (URL host rewritten to the IP) with the original ``Host`` header and, for
    https, the original name for SNI and certificate verification.  Up to
    ``MAX_CONNECT_ADDRESSES`` addresses are tried in the resolver's order until one connects.

    Keep-alive is off in the inner transport: its pool is keyed by (scheme, IP, port), so a
    kept-alive TLS connection verified for one name could otherwise carry a request for another
    name on the same IP.  Webhooks are one POST per event, so reuse buys little.

    ``verify`` is httpx's: an ``ssl.SSLContext`` trusting a private CA, for allow-listed internal
    receivers.  ``inner`` replaces the connecting transport (tests), and ``verify`` with it.
    """

    def __init__(
        self,
        allow: AllowList,
        *,
        resolver: Resolver = system_resolver,
        verify: ssl.SSLContext | bool = True,
        inner: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.allow = allow
        self._resolver = resolver
        self._inner = inner or httpx.AsyncHTTPTransport(
            verify=verify, limits=httpx.Limits(max_keepalive_connections=0)
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        target = check_url(request.url, self.allow)
        addresses = await resolve_target(target, self.allow, self._resolver)
        if "host" not in request.headers:
            request.headers["Host"] = request.url.netloc.decode("ascii")
        if target.scheme == "https" and target.ip is None:
            request.extensions = {**request.extensions, "sni_hostname": target.host.rstrip(".")}
        last_error: httpx.ConnectError | None = None
        for ip in addresses[:MAX_CONNECT_ADDRESSES]:
            request.url = target.url.copy_with(host=str(ip))
            try:
                return await self._inner.handle_async_request(request)
            except httpx.ConnectError as exc:
                last_error = exc
        assert last_error is not None  # addresses is never empty
        raise last_error

    async def aclose(self) -> None:
        await self._inner.aclose()
