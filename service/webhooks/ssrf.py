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
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Final

import httpx

from service.errors import AllowListError, CallbackRefusedError
from service.webhooks.addresses import IPAddress, embedded_ipv4, is_public_address, parse_ipv4_host

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

#: Resolves ``(host, port)`` to the addresses a connection could reach.
Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]

#: Longer URLs are refused: no legitimate callback needs more, and logs stay readable.
MAX_URL_LENGTH: Final = 2048
#: Addresses of one name tried in turn when connecting fails (a dead IPv6 route, say).
MAX_CONNECT_ADDRESSES: Final = 3
_SCHEMES: Final = frozenset({"http", "https"})
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
#: Ports a callback may use without an allow-list entry.
_OPEN_PORTS: Final = frozenset({80, 443})
#: ``host:port``, ``[v6]:port`` or ``network/len:port`` (a bare IPv6 address has colons too).
_PORT_SUFFIX: Final = re.compile(r"^(?P<target>\[[^\]]+\]|[^:]+):(?P<port>\d{1,5})$")
#: What an ASCII (IDNA-encoded) hostname may contain.  httpx lets ``%`` escapes and NUL through in
#: hosts, which resolvers then read in their own ways; nothing outside this set is sent anywhere.
_HOSTNAME_RE: Final = re.compile(r"^[a-z0-9_](?:[a-z0-9_.-]*[a-z0-9_])?\.?$")


class AllowList:
    """Hosts and networks that callbacks may reach although they are not public addresses.

    For a deployment whose receivers live on the private network (or for tests on loopback).  A
    hostname entry exempts that exact name (case-insensitive, no wildcards) from every address
    check; a network entry (``10.1.0.0/16``, or one address such as ``127.0.0.1``) exempts
    addresses inside it.  ``AllowList()`` allows nothing.  A bad entry raises
    :class:`AllowListError`, so a typo stops the process instead of silently blocking webhooks.

    With ``restrict_ports`` (callbacks), URLs may name ports 80 and 443 only, unless an entry
    allows more: one without a port (a host or network the operator trusts) allows any port on
    it, and ``host:port`` (``[v6]:port``, ``10.0.0.0/8:8080``) allows that one port there
    without exempting its addresses from the checks.  A port is often a different service:
    an admin panel, a database's HTTP interface.
    """

    __slots__ = ("host_ports", "hosts", "network_ports", "networks", "restrict_ports")

    def __init__(self, entries: Iterable[str] = (), *, restrict_ports: bool = False) -> None:
        hosts: set[str] = set()
        networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        host_ports: set[tuple[str, int]] = set()
        network_ports: list[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, int]] = []
        for raw in entries:
            entry = raw.strip()
            if not entry:
                continue
            entry, port = _split_port(entry)
            if port is not None:
                target = AllowList([entry])
                host_ports.update((host, port) for host in target.hosts)
                network_ports.extend((net, port) for net in target.networks)
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
        self.host_ports: frozenset[tuple[str, int]] = frozenset(host_ports)
        self.network_ports = tuple(network_ports)
        self.restrict_ports = restrict_ports

    @classmethod
    def from_settings(cls, entries: Iterable[str], *, callbacks: bool = False) -> AllowList:
        """Build from ``Settings.webhook_allow_hosts`` (``KURZ_WEBHOOK_ALLOW_HOSTS``, with
        ``callbacks``: ports restricted) or ``Settings.fetch_allow_hosts``."""
        return cls(entries, restrict_ports=callbacks)

    def allows_port(self, host: str, ip: IPAddress | None, port: int) -> bool:
        """Whether a URL may name ``port`` on ``host`` (``ip`` when the host is a literal)."""
        if not self.restrict_ports or port in _OPEN_PORTS:
            return True
        name = host.lower().rstrip(".")
        if name in self.hosts or (name, port) in self.host_ports:
            return True
        if ip is None:
            return False
        return self.allows_address(ip) or any(
            ip.version == net.version and ip in net and port == allowed
            for net, allowed in self.network_ports
        )

    def __repr__(self) -> str:
        entries = sorted(self.hosts) + [str(net) for net in self.networks]
        entries += sorted(f"{host}:{port}" for host, port in self.host_ports)
        entries += [f"{net}:{port}" for net, port in self.network_ports]
        return f"AllowList({entries!r}, restrict_ports={self.restrict_ports})"

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


def _split_port(entry: str) -> tuple[str, int | None]:
    """An allow-list entry and its port, if it names one (``AllowListError`` if out of range)."""
    match = _PORT_SUFFIX.match(entry)
    if match is None:
        return entry, None
    port = int(match["port"])
    if not 0 < port < 65536:
        raise AllowListError(f"webhook allow-list entry {entry!r}: port {port} is out of range")
    return match["target"].strip("[]"), port


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
    if not allow.allows_port(host, ip, port):
        raise CallbackRefusedError(
            text, f"port {port} is not allowed: 80 and 443 are, others need an allow-list entry"
        )
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
