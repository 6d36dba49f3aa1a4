"""A closed-loop HTTP/1.1 load generator: ``python -m benchmarks.loadgen URL BODY_FILE ...``.

Why its own process: the server under test must not share an event loop (or a GIL) with the
client that measures it.  Why not httpx: on a 2-core machine the generator and the server share
the cores, and httpx spends several times more CPU per request than the server's own HTTP layer,
so it would cap the bare endpoint's rate and flatter every ratio against it.  This client writes
pre-built requests on keep-alive connections and parses only the status line and the body
length, so nearly all the CPU left goes to the server.

Each of ``--connections`` tasks sends one request, waits for the whole response, and sends the
next (closed loop).  Requests finishing in the first ``--warmup`` seconds are not counted;
after ``--seconds`` more, no new request starts.  ``--max-requests`` bounds the total.  Only
loopback addresses are accepted.  Prints one JSON object: counts, requests/s, latency
percentiles (ms), status codes, response sizes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import math
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

__all__ = ["LoadResult", "percentile", "run_load"]

#: Consecutive failures after which a connection gives up (the server is gone).
MAX_CONSECUTIVE_ERRORS = 20


@dataclass
class LoadResult:
    """What the measured window saw."""

    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    response_bytes: int = 0
    errors: int = 0
    started: int = 0
    window_s: float = 0.0

    def summary(self) -> dict[str, object]:
        done = len(self.latencies_ms)
        ordered = sorted(self.latencies_ms)
        return {
            "requests": done,
            "requests_started": self.started,
            "errors": self.errors,
            "window_s": round(self.window_s, 3),
            "requests_per_s": round(done / self.window_s, 1) if self.window_s > 0 else 0.0,
            "p50_ms": round(percentile(ordered, 0.50), 2),
            "p90_ms": round(percentile(ordered, 0.90), 2),
            "p99_ms": round(percentile(ordered, 0.99), 2),
            "max_ms": round(ordered[-1], 2) if ordered else 0.0,
            "statuses": {str(code): count for code, count in sorted(self.statuses.items())},
            "response_bytes_mean": round(self.response_bytes / done, 1) if done else 0.0,
        }


def percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (0.0 for an empty one)."""
    if not ordered:
        return 0.0
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def _loopback_target(url: str) -> tuple[str, int, str]:
    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname is None:
        raise ValueError(f"only plain http URLs are supported, not {url!r}")
    if not ipaddress.ip_address(parts.hostname).is_loopback:
        raise ValueError(f"refusing to send load anywhere but loopback, not {parts.hostname}")
    return parts.hostname, parts.port or 80, parts.path or "/"


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, int, bool]:
    """Status code, body size, and whether the server will close the connection."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name:
            headers[name.strip().lower()] = value.strip()
    closing = headers.get("connection", "").lower() == "close"
    if headers.get("transfer-encoding", "").lower() == "chunked":
        size = 0
        while True:
            chunk_size = int((await reader.readline()).split(b";")[0].strip(), 16)
            if chunk_size == 0:
                await reader.readuntil(b"\r\n")
                return status, size, closing
            await reader.readexactly(chunk_size + 2)
            size += chunk_size
    length = int(headers.get("content-length", "0"))
    if length:
        await reader.readexactly(length)
    return status, length, closing


async def run_load(
    url: str,
    body: bytes,
    *,
    connections: int,
    seconds: float,
    warmup_s: float,
    max_requests: int,
) -> LoadResult:
    """Hold ``connections`` keep-alive connections busy with POSTs of ``body`` to ``url``."""
    host, port, path = _loopback_target(url)
    request = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Accept: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode("latin-1") + body
    result = LoadResult()
    # perf_counter, not loop.time(): uvloop's clock only has millisecond resolution.
    clock = time.perf_counter
    window_start = clock() + warmup_s
    window_end = window_start + seconds

    async def connection() -> None:
        reader: asyncio.StreamReader | None = None
        writer: asyncio.StreamWriter | None = None
        failures = 0
        try:
            while clock() < window_end and result.started < max_requests:
                if writer is None or reader is None:
                    reader, writer = await asyncio.open_connection(host, port)
                result.started += 1
                sent = clock()
                try:
                    writer.write(request)
                    status, size, closing = await _read_response(reader)
                except (OSError, asyncio.IncompleteReadError, ValueError):
                    result.errors += 1
                    failures += 1
                    writer.close()
                    reader = writer = None
                    if failures >= MAX_CONSECUTIVE_ERRORS:
                        return
                    continue
                failures = 0
                finished = clock()
                if window_start <= sent and finished <= window_end:
                    result.latencies_ms.append((finished - sent) * 1000)
                    result.statuses[status] += 1
                    result.response_bytes += size
                if closing:
                    writer.close()
                    reader = writer = None
        finally:
            if writer is not None:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()

    await asyncio.gather(*(connection() for _ in range(connections)))
    result.window_s = min(clock(), window_end) - window_start
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.loadgen", description=__doc__)
    parser.add_argument("url", help="http://127.0.0.1:PORT/PATH")
    parser.add_argument("body", type=Path, help="file holding the JSON request body")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=5.0, help="measured window")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds not counted first")
    parser.add_argument("--max-requests", type=int, default=200_000)
    parser.add_argument(
        "--samples", type=Path, default=None, help="also write every latency (ms), one a line"
    )
    args = parser.parse_args(argv)
    load = run_load(
        args.url,
        args.body.read_bytes(),
        connections=args.connections,
        seconds=args.seconds,
        warmup_s=args.warmup,
        max_requests=args.max_requests,
    )
    try:
        import uvloop
    except ImportError:  # the plain loop only makes the generator a little heavier
        result = asyncio.run(load)
    else:
        result = uvloop.run(load)
    if args.samples is not None:
        args.samples.write_text(
            "".join(f"{latency:.4f}\n" for latency in result.latencies_ms), encoding="utf-8"
        )
    print(json.dumps(result.summary()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
