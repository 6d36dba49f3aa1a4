"""The one HTTP receiver of the tests: webhook endpoints, SSRF canaries, and callback targets.

A :class:`Receiver` is a minimal HTTP/1.1 server on 127.0.0.1 (and, on request, the same port on
``::1``, plain or TLS) that records every request and answers from a script.  Tests with an event
loop start it there (the ``receivers`` fixture in ``tests/conftest.py``); tests of real processes,
which have no loop, run it on a thread of its own through :class:`ThreadedReceiver`.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

#: How long a connection may sit without sending a request head before it is closed.
IDLE_TIMEOUT_S = 2.0


@dataclass
class Received:
    """One request as it arrived: the raw head, its parts, and the body."""

    method: str
    path: str
    headers: dict[str, str]
    """Header names lower-cased; a repeated header keeps its last value."""
    body: bytes
    head: str
    """Request line and headers exactly as sent, up to the blank line."""


@dataclass
class Reply:
    """What to answer one request with."""

    status: int = 204
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    delay_s: float = 0.0
    #: Stream the body as ``chunks`` chunks of ``chunk_size`` bytes, ``chunk_interval_s`` apart.
    chunks: int = 0
    chunk_size: int = 0
    chunk_interval_s: float = 0.0


Script = Callable[[int], Reply]


def always_204(n: int) -> Reply:
    """The default script: every request gets an empty 204."""
    return Reply()


class Receiver:
    """An HTTP/1.1 server on loopback that records requests and answers from a script.

    ``script(n)`` gives the reply to the n-th request (0-based).  Every connection is closed after
    one reply unless ``keep_alive``, which serves any number of requests per connection, as real
    servers do.
    """

    def __init__(self, script: Script = always_204, *, keep_alive: bool = False) -> None:
        self.script = script
        self.keep_alive = keep_alive
        self.requests: list[Received] = []
        self.connections = 0
        self.bytes_streamed = 0
        self.port = 0
        self.scheme = "http"
        self._servers: list[asyncio.Server] = []
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def url(self) -> str:
        """The URL of ``/hook`` on this receiver."""
        return self.url_for("/hook")

    def url_for(self, path: str) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}{path}"

    async def start(
        self, *, ssl_context: ssl.SSLContext | None = None, ipv6: bool = False
    ) -> Receiver:
        """Listen on a free port of 127.0.0.1 and, with ``ipv6``, the same port of ``::1``."""
        server = await asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=ssl_context)
        self._servers.append(server)
        self.port = server.sockets[0].getsockname()[1]
        self.scheme = "http" if ssl_context is None else "https"
        if ipv6:  # where the host has IPv6, so IPv6 forms of loopback would be counted too
            with contextlib.suppress(OSError):
                self._servers.append(
                    await asyncio.start_server(self._handle, "::1", self.port, ssl=ssl_context)
                )
        return self

    async def close(self) -> None:
        for server in self._servers:
            server.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        try:
            while await self._serve_one(reader, writer) and self.keep_alive:
                pass
        except (asyncio.IncompleteReadError, TimeoutError, ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()
            # A receiver closed while the peer hangs up cancels this wait; the handler then ends
            # quietly (on Python 3.11 a handler that ends canceled is logged as an error).
            with contextlib.suppress(ConnectionError, ssl.SSLError, asyncio.CancelledError):
                await writer.wait_closed()
            self._tasks.discard(task)

    async def _serve_one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Read one request and answer it; False when the connection must close afterwards."""
        raw = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), IDLE_TIMEOUT_S)
        head = raw.decode("latin-1")
        request_line, *header_lines = head.split("\r\n")
        method, path, _ = request_line.split(" ", 2)
        headers = {}
        for line in header_lines:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        reply = self.script(len(self.requests))
        self.requests.append(Received(method, path, headers, body, head))
        await asyncio.sleep(reply.delay_s)
        reason = http.client.responses.get(reply.status, "Unknown")
        status_line = f"HTTP/1.1 {reply.status} {reason}\r\n"
        extra = "".join(f"{name}: {value}\r\n" for name, value in reply.headers.items())
        if reply.chunks:
            writer.write(f"{status_line}{extra}Transfer-Encoding: chunked\r\n\r\n".encode())
            chunk = b"x" * reply.chunk_size
            for _ in range(reply.chunks):  # until done or the client hangs up
                writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                await writer.drain()
                self.bytes_streamed += len(chunk)
                await asyncio.sleep(reply.chunk_interval_s)
            return False  # no last chunk: the body ends with the connection
        close = "" if self.keep_alive else "Connection: close\r\n"
        length = f"Content-Length: {len(reply.body)}\r\n{close}\r\n"
        writer.write(f"{status_line}{extra}{length}".encode() + reply.body)
        await writer.drain()
        return True


class ThreadedReceiver:
    """A :class:`Receiver` served by an event loop on a thread of its own, for tests of real
    processes that have no loop; it listens from construction until :meth:`close`."""

    def __init__(self, script: Script = always_204) -> None:
        self.receiver = Receiver(script)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="webhook-receiver", daemon=True
        )
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.receiver.start(), self._loop).result(timeout=10)

    @property
    def url(self) -> str:
        return self.receiver.url

    @property
    def requests(self) -> list[Received]:
        """Every request so far (appended to by the receiver's thread)."""
        return self.receiver.requests

    def close(self) -> None:
        try:
            asyncio.run_coroutine_threadsafe(self.receiver.close(), self._loop).result(timeout=10)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._loop.close()
