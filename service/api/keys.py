"""API keys: which are configured, and which one (if any) a request presents.

Keys are compared in constant time, and only a short digest of a key ever reaches Redis or the
logs.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from service.errors import ApiProblem, ConfigError

__all__ = ["PUBLIC_CLIENT", "ApiKeys", "Caller", "key_digest", "presented_key"]

#: Clients of an open API (no keys configured) share this identity for idempotency keys.
PUBLIC_CLIENT = "public"


def key_digest(api_key: str) -> str:
    """A short, stable, non-reversible name for an API key."""
    return hashlib.sha256(api_key.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated (or anonymous) caller.

    ``client`` namespaces idempotency keys; ``rate_subject`` is what the rate limit counts: the
    key when there is one, else the peer address.
    """

    client: str
    rate_subject: str


#: The shortest API key accepted: short keys can be guessed, even a few tries a minute.
MIN_KEY_CHARS = 32


class ApiKeys:
    """The configured API keys; none means the API is open."""

    def __init__(self, keys: Sequence[str]) -> None:
        short = [key for key in keys if key and len(key) < MIN_KEY_CHARS]
        if short:
            raise ConfigError(
                f"{len(short)} of KURZ_API_KEYS {'is' if len(short) == 1 else 'are'} shorter than "
                f"{MIN_KEY_CHARS} characters: a key is a password that scripts send, so make it "
                "long and random (python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
            )
        self._keys = [key.encode() for key in keys if key]

    @property
    def enabled(self) -> bool:
        return bool(self._keys)

    def identify(self, headers: Mapping[str, str], peer: str | None) -> Caller:
        """The caller behind a request, or a 401 problem when a key is required but wrong."""
        if not self.enabled:
            return Caller(client=PUBLIC_CLIENT, rate_subject=f"ip:{peer or 'unknown'}")
        presented = presented_key(headers)
        if presented is None:
            raise _unauthorized("send an API key as 'Authorization: Bearer <key>' or 'X-API-Key'")
        if not self._matches(presented):
            raise _unauthorized("the API key is not valid")
        digest = key_digest(presented)
        return Caller(client=f"key:{digest}", rate_subject=f"key:{digest}")

    def _matches(self, presented: str) -> bool:
        candidate = presented.encode()
        # Compare against every key, without stopping at a match, so timing says nothing.
        matches = [hmac.compare_digest(candidate, key) for key in self._keys]
        return any(matches)


#: ``Authorization`` schemes that carry a key: ours, and DeepL's (so its clients work unchanged).
KEY_SCHEMES = ("bearer", "deepl-auth-key")


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The key a request carries: ``Authorization: Bearer <key>`` (or DeepL's
    ``DeepL-Auth-Key <key>``), else ``X-API-Key``."""
    authorization = headers.get("authorization", "")
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() in KEY_SCHEMES and credentials.strip():
        return credentials.strip()
    api_key = headers.get("x-api-key", "").strip()
    return api_key or None


def _unauthorized(detail: str) -> ApiProblem:
    return ApiProblem(
        401, "unauthorized", detail, headers={"WWW-Authenticate": 'Bearer realm="kurzgefasst"'}
    )
