"""The API's request class: a JSON body nested too deeply is the client's error, not a 500.

msgspec (under Litestar) and the standard library's ``json`` parse nesting by recursion, and a
body of a few thousand ``[`` raises ``RecursionError``, which no handler expects.  Here it
becomes the same ``SerializationException`` as malformed JSON, so every endpoint answers 400
(``malformed_json``, or the dialect's own 400) for it.
"""

from __future__ import annotations

import json
from typing import Any

from litestar import Request
from litestar.exceptions import SerializationException

__all__ = ["TOO_DEEP", "KurzRequest", "decode_json_object"]

TOO_DEEP = "JSON is nested too deeply"


class KurzRequest(Request[Any, Any, Any]):
    """Litestar's request, with deep JSON answered as malformed JSON."""

    async def json(self) -> Any:
        try:
            return await super().json()
        except RecursionError:
            raise SerializationException(TOO_DEEP) from None


def decode_json_object(raw: bytes) -> Any:
    """``json.loads`` whose every failure, nesting included, is a ``ValueError``."""
    try:
        return json.loads(raw)
    except RecursionError:
        raise ValueError(TOO_DEEP) from None
