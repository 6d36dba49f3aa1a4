"""A webhook receiver for the checked compose stack: it runs in a container of its own (the
service's image, Python's standard library only) and keeps every request it gets.

``POST`` to any path is recorded and answered 204; ``GET /received`` returns the requests so far
as JSON (path, headers with lower-case names, body as text).  The check verifies the signatures
itself, with the stack's secret, so a receiver that accepted anything would not hide a bad one.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_received: list[dict[str, object]] = []
_lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    """Records POSTs, lists them on GET /received."""

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length)
        with _lock:
            _received.append(
                {
                    "path": self.path,
                    "headers": {name.lower(): value for name, value in self.headers.items()},
                    "body": body.decode("utf-8", "replace"),
                }
            )
        self.send_response(204)
        self.end_headers()

    def do_GET(self) -> None:
        if self.path != "/received":
            self.send_error(404)
            return
        with _lock:
            body = json.dumps(_received).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the check reads /received instead."""


if __name__ == "__main__":
    # Every address of its container: the worker reaches it over the stack's network.
    ThreadingHTTPServer(("0.0.0.0", 8080), Handler).serve_forever()
