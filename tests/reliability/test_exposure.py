"""Exposure: the compose Redis refuses strangers, and callbacks cannot be aimed at the inside.

* Redis: ``docker-compose.yml`` publishes no Redis port and starts both servers with
  ``deploy/redis/start.sh``, the password from a required variable in their environment, never
  on a command line.  It is then proved to work: a real ``redis-server`` is started by that
  script (a private loopback port and a scratch directory), and an unauthenticated ``PING`` gets
  ``NOAUTH``, the ``default`` user ``WRONGPASS``, and the app's user with its password ``PONG``.
* SSRF: the forbidden-callback table of ``tests/test_ssrf.py`` (which proves, entry by entry, that
  the guarded client opens no connection) is reused, not copied: every entry must also be refused
  by the API itself with 422 ``callback_url_refused`` before a job exists.

Only loopback traffic: the Redis servers listen on 127.0.0.1, the API runs in-process.
"""

from __future__ import annotations

import re
import secrets
import shutil
import socket
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pytest
import redis as redis_sync
import yaml
from redis.asyncio import Redis

from service.api.app import create_app
from service.settings import ROOT, Settings
from service.webhooks.ssrf import AllowList, CallbackRefusedError, check_url
from tests.processes import ComposeRedis
from tests.test_ssrf import FORBIDDEN

if TYPE_CHECKING:
    from tests.conftest import AppServer

COMPOSE = ROOT / "docker-compose.yml"
#: ``${NAME}``, ``${NAME:?message}``, ``${NAME?message}``, ``${NAME:-default}``, ``${NAME-dflt}``.
_VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[?-])(?P<arg>[^}]*))?\}")


#: The ``figures`` fixture (tests/reliability/conftest.py) prints and records a test's figures.
Figures = Callable[..., None]


# --- the compose file -----------------------------------------------------------------------------


def compose_services() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    services = document["services"]
    assert isinstance(services, dict)
    return services


def interpolate(value: str, env: Mapping[str, str]) -> str:
    """Fill in ``${...}`` as docker compose does; a missing required variable is an error."""

    def substitute(match: re.Match[str]) -> str:
        name, op, arg = match.group("name"), match.group("op"), match.group("arg")
        present = name in env and (env[name] != "" or op in (None, "?", "-"))
        if present:
            return env[name]
        if op in (":?", "?"):
            raise KeyError(f"{name}: {arg}")
        if op in (":-", "-"):
            return arg or ""
        return ""

    return _VARIABLE.sub(substitute, value)


def test_compose_redis_publishes_no_port_and_requires_a_password_from_the_env(
    figures: Figures,
) -> None:
    """Both compose Redis servers are reachable only on the project network, and only with a
    password that must be set and appears on no command line."""
    services = compose_services()
    for name in ("redis", "cache"):
        service = services[name]
        assert "ports" not in service, f"{name} must not be published on the host"
        assert service.get("network_mode") != "host"
        secret = str(service["environment"]["REDIS_PASSWORD"])
        match = _VARIABLE.fullmatch(secret)
        assert match is not None, f"the password must come from a variable, not {secret!r}"
        assert match.group("op") in (":?", "?"), "the password must be required, with no default"
        # An unset password stops `docker compose up` instead of starting an open Redis.
        with pytest.raises(KeyError):
            interpolate(secret, {})
        command = " ".join(map(str, service["command"]))
        assert "REDIS_PASSWORD" not in command and "requirepass" not in command, command
        assert "REDIS_PASSWORD" not in " ".join(map(str, service["healthcheck"]["test"]))
    figures("compose-redis", command=" ".join(map(str, services["redis"]["command"])))


# --- a real redis-server started the compose way --------------------------------------------------


@pytest.fixture
def compose_redis(tmp_path: Path) -> Iterator[tuple[int, str]]:
    """The queue's Redis started by compose's script on a private loopback port; (port,
    password)."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    server = ComposeRedis(tmp_path, "queue", secrets.token_urlsafe(24))
    server.start()
    try:
        yield server.port, server.password
    finally:
        server.stop()


def resp_exchange(port: int, *commands: list[str]) -> list[bytes]:
    """Send RESP commands on one fresh connection; each reply's first line, as Redis wrote it.

    A raw socket, not redis-py: the client library retries authentication failures with
    backoff, and what is tested here is what the server says, nothing else.
    """
    replies: list[bytes] = []
    with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
        reader = sock.makefile("rb")
        for command in commands:
            encoded = f"*{len(command)}\r\n".encode()
            for part in command:
                data = part.encode()
                encoded += f"${len(data)}\r\n".encode() + data + b"\r\n"
            sock.sendall(encoded)
            replies.append(reader.readline().rstrip(b"\r\n"))
    return replies


def test_compose_redis_refuses_unauthenticated_clients(
    compose_redis: tuple[int, str], figures: Figures
) -> None:
    """Started as compose starts it, Redis answers NOAUTH without the password, WRONGPASS to
    a wrong one or to the ``default`` user, and PONG to the app's user with its password."""
    port, password = compose_redis
    anonymous = resp_exchange(port, ["PING"], ["SET", "kurz-exposure-probe", "1"], ["KEYS", "*"])
    assert all(reply.startswith(b"-NOAUTH") for reply in anonymous), anonymous
    wrong = resp_exchange(port, ["AUTH", "kurz", "not-the-password"], ["PING"])
    assert wrong[0].startswith(b"-WRONGPASS"), wrong
    assert wrong[1].startswith(b"-NOAUTH"), wrong
    default = resp_exchange(port, ["AUTH", password], ["PING"])
    assert default[0].startswith(b"-WRONGPASS"), default
    good = resp_exchange(port, ["AUTH", "kurz", password], ["PING"], ["CONFIG", "GET", "*"])
    assert good[:2] == [b"+OK", b"+PONG"], good
    assert good[2].startswith(b"-NOPERM"), good
    # The URL form the api and worker services use works, and the AOF is on.
    client = redis_sync.Redis.from_url(
        f"redis://kurz:{password}@127.0.0.1:{port}/0", socket_timeout=2
    )
    try:
        assert client.ping() is True
        persistence = cast("dict[str, Any]", client.info("persistence"))
        assert persistence["aof_enabled"] == 1
    finally:
        client.close()
    figures(
        "redis-auth",
        unauthenticated=anonymous[0].decode(),
        wrong_password=wrong[0].decode(),
        default_user=default[0].decode(),
        with_password=good[1].decode(),
    )


# --- SSRF: the API refuses every forbidden callback -----------------------------------------------


def test_ssrf_table_is_substantial_and_every_entry_is_refused_by_the_guard(
    figures: Figures,
) -> None:
    """The shared table has at least 30 forbidden callback URLs and the guard refuses each one."""
    assert len(FORBIDDEN) >= 30, len(FORBIDDEN)
    for template in FORBIDDEN:
        with pytest.raises(CallbackRefusedError):
            check_url(template.format(port=8080), AllowList())
    figures("ssrf-table", forbidden_urls=len(FORBIDDEN), refused_by_check_url=len(FORBIDDEN))


@pytest.mark.redis
async def test_api_refuses_every_forbidden_callback_before_queueing(
    redis: Redis,
    prefix: str,
    make_settings: Callable[..., Settings],
    figures: Figures,
    serve_app: AppServer,
) -> None:
    """POST /summarize with any URL of the SSRF table is 422 callback_url_refused, no job made."""
    # make_settings runs the test without the shell's KURZ_ variables (a developer's
    # KURZ_WEBHOOK_ALLOW_HOSTS, say).
    client = await serve_app(create_app(make_settings()))
    text = "Die Regierung hat am Montag in Berlin ein neues Gesetz zum Klimaschutz beschlossen."
    codes: dict[str, int] = {}
    for template in FORBIDDEN:
        url = template.format(port=8080)
        response = await client.post("/summarize", json={"text": text, "callback_url": url})
        assert response.status_code == 422, (url, response.text)
        body = response.json()
        codes[body["code"]] = codes.get(body["code"], 0) + 1
        assert body["code"] == "callback_url_refused", (url, body)
    leftovers = [key async for key in redis.scan_iter(match=f"saq:{prefix}:*", count=500)]
    assert leftovers == [], "a refused callback must not create a job"
    figures("ssrf-api", forbidden_urls=len(FORBIDDEN), answers=codes, jobs_created=0)
