"""API keys: which are configured, and which one (if any) a request presents.

Keys come from ``KURZ_API_KEYS`` (each key its own desk) or from a keys file
(``KURZ_API_KEYS_FILE``, ``service.tenants``), which names each key's tenant and may give
it a rate limit of its own.  The keys of one tenant are one desk: they own the same jobs, so a key
can be rotated without losing them.  Only the sha256 of a key is kept (a keys file need hold
nothing else); a presented key is hashed and compared with every configured hash in constant
time, and only a short digest of a key ever reaches Redis or the logs.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from service.errors import ApiProblem, ConfigError
from service.tenants import MIN_KEY_CHARS, KeyEntry, short_key_message

__all__ = [
    "MIN_KEY_CHARS",
    "PUBLIC_CLIENT",
    "ApiKeys",
    "Caller",
    "KeyEntry",
    "key_digest",
    "presented_key",
]

#: Clients of an open API (no keys configured) share this identity for idempotency keys.
PUBLIC_CLIENT = "public"


def key_digest(api_key: str) -> str:
    """A short, stable, non-reversible name for an API key."""
    return hashlib.sha256(api_key.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated (or anonymous) caller.

    ``client`` owns jobs and namespaces idempotency keys (a tenant's keys share it);
    ``rate_subject`` is what the rate limit counts: the key when there is one, else the peer
    address; ``rate_limit`` is the key's own limit per minute (None: the server's).
    """

    client: str
    rate_subject: str
    rate_limit: int | None = None
    #: The desk whose jobs and caches are its own (keys file ``shares_cache = false``).
    cache_scope: str | None = None


class ApiKeys:
    """The configured API keys; none means the API is open."""

    def __init__(
        self,
        keys: Sequence[str],
        entries: Sequence[KeyEntry] = (),
        *,
        signing_desks: frozenset[str] = frozenset(),
    ) -> None:
        #: Desks with webhook secrets of their own (by owner name), whose callbacks are signed
        #: even where the server has no ``KURZ_WEBHOOK_SECRET``.
        self.signing_desks = signing_desks
        short = [key for key in keys if key and len(key) < MIN_KEY_CHARS]
        if short:
            raise ConfigError(short_key_message(len(short)))
        self._entries = [KeyEntry.from_key(key) for key in keys if key] + list(entries)
        digests = [entry.sha256 for entry in self._entries]
        if len(set(digests)) != len(digests):
            raise ConfigError("an API key is configured twice (in KURZ_API_KEYS or the keys file)")

    @property
    def enabled(self) -> bool:
        return bool(self._entries)

    def identify(self, headers: Mapping[str, str], peer: str | None) -> Caller:
        """The caller behind a request, or a 401 problem when a key is required but wrong."""
        if not self.enabled:
            return Caller(client=PUBLIC_CLIENT, rate_subject=f"ip:{peer or 'unknown'}")
        presented = presented_key(headers)
        if presented is None:
            raise _unauthorized("send an API key as 'Authorization: Bearer <key>' or 'X-API-Key'")
        entry = self._match(presented)
        if entry is None:
            raise _unauthorized("the API key is not valid")
        digest = key_digest(presented)
        return Caller(
            client=entry.client,
            rate_subject=f"key:{digest}",
            rate_limit=entry.rate_limit_per_minute,
            cache_scope=entry.cache_scope,
        )

    def _match(self, presented: str) -> KeyEntry | None:
        candidate = hashlib.sha256(presented.encode()).digest()
        # Compare against every key, without stopping at a match, so timing says nothing.
        found: KeyEntry | None = None
        for entry in self._entries:
            if hmac.compare_digest(candidate, entry.sha256):
                found = entry
        return found


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
