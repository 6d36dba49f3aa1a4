"""The SSRF guard: forbidden callback URLs never produce a connection, allowed ones still work.

Every test that sends traffic sends it to listeners on 127.0.0.1 (or ::1) that it starts.  The
guarded client's inner transport is a tripwire that records whatever the guard let through and
refuses to leave loopback, so even a broken guard cannot reach another address.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.webhooks import Outcome, WebhookSigner, attempt_delivery, generate_secret, make_client
from service.webhooks.ssrf import (
    AllowList,
    AllowListError,
    CallbackRefusedError,
    GuardedTransport,
    IPAddress,
    ParsedTarget,
    Resolver,
    check_url,
    is_public_address,
    parse_ipv4_host,
    resolve_target,
    system_resolver,
)
from tests.receivers import Receiver

if TYPE_CHECKING:
    from tests.conftest import Receivers

LOOPBACK = AllowList.from_settings(["127.0.0.0/8", "::1"])


class Tripwire(httpx.AsyncBaseTransport):
    """Inner transport: records every request the guard passed on; forwards loopback only."""

    def __init__(self, verify: ssl.SSLContext | bool = True) -> None:
        self.seen: list[httpx.Request] = []
        self._real = httpx.AsyncHTTPTransport(
            verify=verify, limits=httpx.Limits(max_keepalive_connections=0)
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        if not ipaddress.ip_address(request.url.host).is_loopback:
            raise httpx.ConnectError(f"tripwire: {request.url.host} is not loopback")
        return await self._real.handle_async_request(request)

    async def aclose(self) -> None:
        await self._real.aclose()


@pytest.fixture
async def canary(receivers: Receivers) -> Receiver:
    """A loopback listener (127.0.0.1 and ::1, one port) that counts connections, answers 204."""
    return await receivers(ipv6=True)


@pytest.fixture
def signer() -> WebhookSigner:
    return WebhookSigner([generate_secret()])


# Every entry is forbidden with an empty allow-list; ``{port}`` is the canary's port.
FORBIDDEN = [
    "http://127.0.0.1:{port}/hook",
    "https://127.0.0.1:{port}/hook",
    "http://127.1:{port}/hook",
    "http://127.0.1:{port}/hook",
    "http://2130706433:{port}/hook",
    "http://0x7f000001:{port}/hook",
    "http://0x7f.0.0.1:{port}/hook",
    "http://0x7f.1:{port}/hook",
    "http://0177.0.0.1:{port}/hook",
    "http://0177.1:{port}/hook",
    "http://017700000001:{port}/hook",
    "http://127.0.0.1.:{port}/hook",
    "http://0:{port}/hook",
    "http://0.0.0.0:{port}/hook",
    "http://[::1]:{port}/hook",
    "http://[0:0:0:0:0:0:0:1]:{port}/hook",
    "http://[::]:{port}/hook",
    "http://[::ffff:127.0.0.1]:{port}/hook",
    "http://[::ffff:7f00:1]:{port}/hook",
    "http://[::127.0.0.1]:{port}/hook",
    "http://[64:ff9b::7f00:1]:{port}/hook",
    "http://[64:ff9b::a9fe:a9fe]:{port}/hook",
    "http://[2002:7f00:1::]:{port}/hook",
    "http://[fd00::1]:{port}/hook",
    "http://[fd00:ec2::254]:{port}/latest/meta-data/",
    "http://[fe80::1]:{port}/hook",
    "http://[fe80::1%25lo]:{port}/hook",
    "http://[ff02::1]:{port}/hook",
    "http://169.254.169.254:{port}/latest/meta-data/",
    "http://2852039166:{port}/latest/meta-data/",
    "http://100.64.0.1:{port}/hook",
    "http://10.0.0.1:{port}/hook",
    "http://172.16.0.1:{port}/hook",
    "http://192.168.1.1:{port}/hook",
    "http://198.18.0.1:{port}/hook",
    "http://192.0.2.1:{port}/hook",
    "http://203.0.113.7:{port}/hook",
    "http://224.0.0.1:{port}/hook",
    "http://240.0.0.1:{port}/hook",
    "http://255.255.255.255:{port}/hook",
    "http://localhost:{port}/hook",
    "http://LocalHost.:{port}/hook",
    "http://hooks.localhost:{port}/hook",
    "http://public.example@127.0.0.1:{port}/hook",
    "http://public.example:pw@127.0.0.1:{port}/hook",
    "http://127.0.0.1:{port}#@public.example/hook",
    "http://%31%32%37.0.0.1:{port}/hook",
    "http://1.2.3.4.5:{port}/hook",
    "file:///etc/passwd",
    "gopher://127.0.0.1:{port}/_GET%20/",
    "ftp://127.0.0.1:{port}/",
    "dict://127.0.0.1:{port}/info",
    "http:///hook",
    "http://127.0.0.1:0/hook",
]


@pytest.mark.parametrize("template", FORBIDDEN)
async def test_forbidden_url_is_refused_without_any_connection(
    template: str, canary: Receiver, signer: WebhookSigner
) -> None:
    """A forbidden callback URL fails as refused and nothing, not even a SYN, reaches a socket."""
    url = template.format(port=canary.port)
    with pytest.raises(CallbackRefusedError):
        check_url(url, AllowList())
    tripwire = Tripwire()
    async with make_client(AllowList(), 2.0, inner=tripwire) as client:
        outcome = await attempt_delivery(client, url, "msg_canary", b"{}", signer, timeout_s=2.0)
    assert outcome.outcome is Outcome.FAILED
    assert outcome.record.status_code is None
    assert outcome.record.error == "refused"
    assert outcome.detail is not None and outcome.detail.startswith("refused:")
    assert tripwire.seen == []
    assert canary.connections == 0


@pytest.mark.parametrize(
    "template",
    [
        "http://127.0.0.1:{port}/hook",
        "http://127.1:{port}/hook",
        "http://2130706433:{port}/hook",
        "http://0x7f000001:{port}/hook",
        "http://0x7f.0.0.1:{port}/hook",
        "http://0177.1:{port}/hook",
        "http://017700000001:{port}/hook",
        "http://127.0.0.1.:{port}/hook",
    ],
)
async def test_odd_loopback_spellings_reach_loopback_when_allowed(
    template: str, canary: Receiver, signer: WebhookSigner
) -> None:
    """The odd spellings really mean 127.0.0.1: allow loopback and they reach the canary."""
    tripwire = Tripwire()
    async with make_client(LOOPBACK, 2.0, inner=tripwire) as client:
        url = template.format(port=canary.port)
        outcome = await attempt_delivery(client, url, "msg_canary", b"{}", signer, timeout_s=2.0)
    assert outcome.outcome is Outcome.DELIVERED, outcome.record.error
    assert [request.url.host for request in tripwire.seen] == ["127.0.0.1"]
    assert canary.connections == 1


@pytest.mark.parametrize(
    "host",
    [
        "2130706433",
        "0x7f000001",
        "0x7f.1",
        "0177.1",
        "0177.0.0.01",
        "017700000001",
        "127.1",
        "127.0.1",
        "0",
        "1.2.3",
        "0xff.0xff.0xffff",
        "4294967295",
        "8.8.8.8",
    ],
)
def test_ipv4_spellings_parse_as_the_c_library_reads_them(host: str) -> None:
    """Our reading of numeric hosts matches inet_aton, which getaddrinfo uses to connect."""
    assert parse_ipv4_host(host) == ipaddress.IPv4Address(socket.inet_aton(host))


@given(
    st.lists(st.integers(0, 255), min_size=1, max_size=4),
    st.lists(st.sampled_from(["dec", "oct", "hex"]), min_size=4, max_size=4),
)
def test_ipv4_parser_agrees_with_inet_aton_on_any_spelling(
    parts: list[int], radices: list[str]
) -> None:
    """Whatever mix of decimal, octal and hex a host uses, we read the address inet_aton does."""
    formats: dict[str, Callable[[int], str]] = {
        "dec": str,
        "oct": lambda n: f"0{n:o}",
        "hex": lambda n: f"0x{n:x}",
    }
    host = ".".join(formats[radix](part) for part, radix in zip(parts, radices, strict=False))
    assert parse_ipv4_host(host) == ipaddress.IPv4Address(socket.inet_aton(host))


@pytest.mark.parametrize(
    "host", ["1.2.3.256", "0x7g.1", "09.1.1.1", "1.2.3.4.5", "a.b.c.123", "0x", "1.0x"]
)
def test_malformed_numeric_hosts_are_errors_not_names(host: str) -> None:
    """A host ending in a number that is no valid IPv4 address is refused, never resolved."""
    with pytest.raises(ValueError, match="IPv4"):
        parse_ipv4_host(host)


@pytest.mark.parametrize("host", ["example.com", "hooks.example.org.", "xn--bcher-kva.de"])
def test_domain_names_are_not_read_as_addresses(host: str) -> None:
    """Ordinary domain names are left for the resolver."""
    assert parse_ipv4_host(host) is None


@pytest.mark.parametrize(
    "address",
    [
        "8.8.8.8",
        "1.1.1.1",
        "93.184.215.14",
        "2606:4700:4700::1111",
        "2a00:1450:4001:82b::200e",
        "::ffff:8.8.8.8",
        "64:ff9b::808:808",
        "2002:808:808::1",
    ],
)
def test_public_addresses_are_allowed(address: str) -> None:
    """The guard does not over-block: public unicast addresses (and forms of them) pass."""
    assert is_public_address(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.31.255.255",
        "192.168.0.1",
        "169.254.169.254",
        "100.64.0.1",
        "100.127.255.255",
        "0.0.0.0",
        "0.1.2.3",
        "198.18.0.1",
        "198.19.255.255",
        "192.0.0.8",
        "192.0.2.1",
        "198.51.100.1",
        "203.0.113.1",
        "224.0.0.1",
        "239.255.255.250",
        "240.0.0.1",
        "255.255.255.255",
        "::1",
        "::",
        "fc00::1",
        "fd00:ec2::254",
        "fe80::1",
        "fec0::1",
        "ff0e::1",
        "2001:db8::1",
        "2001::1",
        "3fff::1",
        "64:ff9b:1::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "::ffff:169.254.169.254",
        "::127.0.0.1",
        "64:ff9b::7f00:1",
        "64:ff9b::a00:1",
        "2002:a9fe:a9fe::",
        "2002:7f00:1::1",
    ],
)
def test_non_public_addresses_are_refused(address: str) -> None:
    """Loopback, private, link-local, CGNAT, multicast, reserved and IPv6 forms are refused."""
    assert not is_public_address(ipaddress.ip_address(address))


def test_check_url_accepts_public_urls_and_normalizes_the_host() -> None:
    """A normal https URL passes; its host comes back lower-cased with the effective port."""
    target = check_url("https://Hooks.Example.COM/path?token=x", AllowList())
    assert (target.scheme, target.host, target.port, target.ip) == (
        "https",
        "hooks.example.com",
        443,
        None,
    )
    decimal = check_url("http://134744072:8080/", AllowList())
    assert decimal.ip == ipaddress.IPv4Address("8.8.8.8")
    assert decimal.port == 8080


def test_allow_list_parses_hosts_and_networks() -> None:
    """Settings entries become exact hostnames or networks; bad entries stop the process."""
    allow = AllowList.from_settings(["127.0.0.1", " 10.0.0.0/8 ", "[::1]", "Hooks.Internal.", ""])
    assert allow.hosts == frozenset({"hooks.internal"})
    assert allow.allows_address(ipaddress.ip_address("10.9.8.7"))
    assert allow.allows_address(ipaddress.ip_address("::ffff:127.0.0.1"))
    assert not allow.allows_address(ipaddress.ip_address("127.0.0.2"))
    assert allow.allows_host("HOOKS.internal")
    assert not allow.allows_host("evil.hooks.internal")
    check_url("http://hooks.internal/x", allow)
    check_url("http://10.1.1.1/x", allow)
    with pytest.raises(AllowListError):
        AllowList.from_settings(["not a host!"])


def fake_resolver(table: dict[str, list[str]]) -> tuple[list[str], Resolver]:
    """A resolver answering from ``table`` (no DNS traffic), and the list of names it was asked."""
    asked: list[str] = []

    async def resolve(host: str, port: int) -> list[IPAddress]:
        asked.append(host)
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [ipaddress.ip_address(address) for address in table[host]]

    return asked, resolve


@pytest.mark.parametrize(
    ("host", "answers"),
    [
        ("rebind.test", ["127.0.0.1"]),
        ("metadata.test", ["169.254.169.254"]),
        ("mixed.test", ["93.184.215.14", "10.0.0.5"]),
        ("mapped.test", ["::ffff:127.0.0.1"]),
    ],
)
async def test_names_resolving_to_forbidden_addresses_are_refused(
    host: str, answers: list[str], canary: Receiver, signer: WebhookSigner
) -> None:
    """A name is refused when ANY of its addresses is not public; no connection is made."""
    asked, resolver = fake_resolver({host: answers})
    tripwire = Tripwire()
    async with make_client(AllowList(), 2.0, resolver=resolver, inner=tripwire) as client:
        url = f"http://{host}:{canary.port}/hook"
        outcome = await attempt_delivery(client, url, "msg_1", b"{}", signer, timeout_s=2.0)
    assert asked == [host]
    assert outcome.record.error == "refused"
    assert outcome.detail is not None and outcome.detail.startswith("refused:")
    # The client's delivery log must not map the private network: no resolved address in it.
    shown = msgspec.json.encode(outcome.record).decode()
    assert not [address for address in answers if address in shown], shown
    assert tripwire.seen == []
    assert canary.connections == 0


async def test_localhost_resolves_to_loopback_and_is_refused() -> None:
    """The real resolver maps localhost to loopback, and the resolved-address check refuses it."""
    target = ParsedTarget(
        url=httpx.URL("http://localhost:9/"), scheme="http", host="localhost", port=9
    )
    addresses = await system_resolver("localhost", 9)
    assert addresses and all(address.is_loopback for address in addresses)
    with pytest.raises(CallbackRefusedError, match="resolves to"):
        await resolve_target(target, AllowList())


async def test_request_goes_to_the_checked_address_with_the_original_host_header(
    canary: Receiver, signer: WebhookSigner
) -> None:
    """The connection uses the address that was checked (no second lookup); Host stays the name."""
    asked, resolver = fake_resolver({"receiver.test": ["127.0.0.1"]})
    allow = AllowList.from_settings(["127.0.0.1"])
    async with make_client(allow, 2.0, resolver=resolver) as client:
        url = f"http://receiver.test:{canary.port}/hook"
        outcome = await attempt_delivery(client, url, "msg_1", b"{}", signer, timeout_s=2.0)
    assert outcome.outcome is Outcome.DELIVERED, outcome.record.error
    assert asked == ["receiver.test"]
    assert canary.connections == 1
    assert f"host: receiver.test:{canary.port}\r\n" in canary.requests[0].head.lower()


async def test_unresolvable_name_is_a_connection_failure_not_a_refusal(
    signer: WebhookSigner,
) -> None:
    """A name that does not resolve is a network failure, retried like any other."""
    _, resolver = fake_resolver({})
    async with make_client(AllowList(), 2.0, resolver=resolver) as client:
        outcome = await attempt_delivery(
            client, "http://nowhere.test/hook", "msg_1", b"{}", signer, timeout_s=2.0
        )
    assert outcome.outcome is Outcome.FAILED
    assert outcome.record.error == "connect_failed"
    assert outcome.detail is not None and outcome.detail.startswith("ConnectError: cannot resolve")


async def test_allowlisted_name_may_resolve_to_a_private_address(
    canary: Receiver, signer: WebhookSigner
) -> None:
    """An operator-allowed hostname reaches its internal address."""
    _, resolver = fake_resolver({"hooks.internal": ["127.0.0.1"]})
    allow = AllowList.from_settings(["hooks.internal"])
    async with make_client(allow, 2.0, resolver=resolver, inner=Tripwire()) as client:
        url = f"http://hooks.internal:{canary.port}/hook"
        outcome = await attempt_delivery(client, url, "msg_1", b"{}", signer, timeout_s=2.0)
    assert outcome.outcome is Outcome.DELIVERED, outcome.record.error
    assert canary.connections == 1


class Recorder(httpx.AsyncBaseTransport):
    """Inner transport that answers 204 itself and keeps the requests it was given."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(204)


async def test_https_keeps_the_name_for_sni_and_certificate_checks() -> None:
    """For https the URL host becomes the IP while SNI and the Host header keep the name."""
    _, resolver = fake_resolver({"hooks.example": ["93.184.215.14"]})
    recorder = Recorder()
    transport = GuardedTransport(AllowList(), resolver=resolver, inner=recorder)
    async with httpx.AsyncClient(transport=transport) as client:
        response = await client.post("https://hooks.example:8443/hook", content=b"{}")
    assert response.status_code == 204
    (sent,) = recorder.requests
    assert sent.url.host == "93.184.215.14"
    assert sent.url.port == 8443
    assert sent.headers["host"] == "hooks.example:8443"
    assert sent.extensions["sni_hostname"] == "hooks.example"


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for ``receiver.test`` only (no IP address in it)."""
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    try:
        subprocess.run(
            [
                "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-nodes", "-days", "1", "-subj", "/CN=receiver.test",
                "-addext", "subjectAltName=DNS:receiver.test",
                "-keyout", str(key), "-out", str(cert),
            ],
            check=True,
            capture_output=True,
            timeout=30,
        )  # fmt: skip
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"openssl cannot make a test certificate: {exc}")
    return cert, key


def tls_contexts(tls_files: tuple[Path, Path]) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context with the test certificate, and a client context trusting only it."""
    cert, key = tls_files
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    return server_context, ssl.create_default_context(cafile=str(cert))


@pytest.mark.parametrize(("name", "delivered"), [("receiver.test", True), ("other.test", False)])
async def test_tls_verifies_the_certificate_against_the_url_name(
    tls_files: tuple[Path, Path],
    signer: WebhookSigner,
    name: str,
    delivered: bool,
    receivers: Receivers,
) -> None:
    """Over real TLS to the checked IP, the certificate must match the URL's hostname."""
    server_context, client_context = tls_contexts(tls_files)
    canary = await receivers(ipv6=True, ssl_context=server_context)
    _, resolver = fake_resolver({name: ["127.0.0.1"]})
    allow = AllowList(["127.0.0.1"])
    async with make_client(allow, 2.0, resolver=resolver, verify=client_context) as client:
        url = f"https://{name}:{canary.port}/hook"
        outcome = await attempt_delivery(client, url, "msg_1", b"{}", signer, timeout_s=2.0)
    assert (outcome.outcome is Outcome.DELIVERED) is delivered, outcome.record.error
    if not delivered:
        assert outcome.record.error == "tls_failed"
        assert outcome.detail is not None and "certificate" in outcome.detail.lower()


async def test_tls_connection_for_one_name_is_not_reused_for_another(
    tls_files: tuple[Path, Path], receivers: Receivers
) -> None:
    """Two names on one IP: a kept-alive TLS connection verified for one never carries the other."""
    server_context, client_context = tls_contexts(tls_files)
    canary = await receivers(keep_alive=True, ipv6=True, ssl_context=server_context)
    _, resolver = fake_resolver({"receiver.test": ["127.0.0.1"], "other.test": ["127.0.0.1"]})
    allow = AllowList(["127.0.0.1"])
    async with make_client(allow, 2.0, resolver=resolver, verify=client_context) as client:
        first = await client.post(f"https://receiver.test:{canary.port}/", content=b"{}")
        assert first.status_code == 204
        with pytest.raises(httpx.ConnectError, match="certificate"):
            await client.post(f"https://other.test:{canary.port}/", content=b"{}")
    assert len(canary.requests) == 1


@pytest.mark.parametrize(
    "url",
    ["https://user:pw@hooks.example.com/hook", "http://hooks.example.com@8.8.8.8/", "http://@x@y/"],
)
def test_credentials_in_the_url_are_refused(url: str) -> None:
    """user@host URLs are refused even when the host itself would be fine."""
    with pytest.raises(CallbackRefusedError, match="credentials"):
        check_url(url, AllowList())


async def test_credentials_trick_is_refused_even_with_loopback_allowed(
    canary: Receiver, signer: WebhookSigner
) -> None:
    """``http://public.example@127.0.0.1/`` is refused for its userinfo, not just its address."""
    tripwire = Tripwire()
    async with make_client(LOOPBACK, 2.0, inner=tripwire) as client:
        url = f"http://public.example@127.0.0.1:{canary.port}/hook"
        outcome = await attempt_delivery(client, url, "msg_1", b"{}", signer, timeout_s=2.0)
    assert outcome.record.error == "refused"
    assert outcome.detail is not None and "credentials" in outcome.detail
    assert tripwire.seen == []
    assert canary.connections == 0


# --- callback ports -------------------------------------------------------------------------------


def callbacks(*entries: str) -> AllowList:
    return AllowList.from_settings(entries, callbacks=True)


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com:8443/kurz",
        "http://hooks.example.com:6379/",
        "http://93.184.216.34:8080/",
        "http://[2606:4700::1111]:22/",
    ],
)
def test_a_callback_on_another_port_than_80_or_443_is_refused(url: str) -> None:
    """A port is often another service (an admin panel, a database's HTTP interface)."""
    with pytest.raises(CallbackRefusedError, match="port"):
        check_url(url, callbacks())


def test_80_and_443_are_open_and_allow_list_entries_open_more() -> None:
    """``host:port`` opens one port on a host or network; an entry without a port trusts the
    host on every port (receivers on the private network, tests on loopback)."""
    for url in (
        "https://hooks.example.com/k",
        "http://hooks.example.com:80/k",
        "https://hooks.example.com:443/k",
    ):
        check_url(url, callbacks())
    check_url("https://hooks.example.com:8443/k", callbacks("hooks.example.com:8443"))
    check_url("http://93.184.216.34:8080/", callbacks("93.184.216.0/24:8080"))
    check_url("http://[2606:4700::1111]:8080/", callbacks("[2606:4700::1111]:8080"))
    check_url("http://127.0.0.1:41234/", callbacks("127.0.0.1"))
    with pytest.raises(CallbackRefusedError, match="port"):
        check_url("https://hooks.example.com:9443/k", callbacks("hooks.example.com:8443"))
    # A port entry opens the port, not the address checks: loopback stays refused.
    with pytest.raises(CallbackRefusedError, match="not a public address"):
        check_url("http://127.0.0.1:8080/", callbacks("127.0.0.1:8080"))
    # Fetching articles is not restricted to those ports.
    check_url("http://93.184.216.34:8080/", AllowList.from_settings([]))


def test_a_port_out_of_range_in_an_entry_stops_start_up() -> None:
    with pytest.raises(AllowListError, match="out of range"):
        callbacks("hooks.example.com:70000")
