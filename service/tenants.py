"""Tenants (desks) and their keys, from the keys file (``KURZ_API_KEYS_FILE``).

A TOML file with one ``[[keys]]`` table per key, and optionally a ``[tenants.NAME]`` table per
desk for what belongs to the desk rather than to one key::

    [[keys]]
    tenant = "sport"                 # the desk; its keys own the same jobs
    sha256 = "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8"
    rate_limit_per_minute = 120      # optional: this key's own limit (0: none)

    [[keys]]
    tenant = "politik"
    key = "a-long-random-key-of-at-least-32-characters"   # plaintext: accepted, with a warning

    [tenants.sport]
    webhook_secrets = ["whsec_..."]  # sign sport's callbacks with these, not KURZ_WEBHOOK_SECRET

    [tenants.politik]
    shares_cache = false             # politik's jobs, results and cached sentences are its own

``sha256`` is the hex digest of the key (``printf %s "$KEY" | sha256sum``), so the file reveals
no key; ``key`` (the key itself) is accepted for trying things out, and start-up warns about it.
A desk's ``webhook_secrets`` sign the events of its callbacks (Standard Webhooks asks for one
secret per endpoint), every one of them during a rotation; workers read the file for them, the
API for the keys.  A wrong file stops start-up with a message naming the entry: a typo must not
leave a desk open or locked out.  Unknown fields are refused rather than ignored, for the same
reason.  Nothing here imports the API: workers load the same file.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import structlog

from service.errors import ConfigError, WebhookConfigError
from service.webhooks.signing import WebhookSigner

__all__ = ["MIN_KEY_CHARS", "KeyEntry", "KeysFile", "load_keys_file", "short_key_message"]

log = structlog.get_logger(__name__)

#: The shortest API key accepted: short keys can be guessed, even a few tries a minute.
MIN_KEY_CHARS = 32

_FIELDS = {"tenant", "sha256", "key", "rate_limit_per_minute"}
_TENANT_FIELDS = {"webhook_secrets", "shares_cache"}
_TENANT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")


def short_key_message(count: int) -> str:
    return (
        f"{count} of the API keys {'is' if count == 1 else 'are'} shorter than "
        f"{MIN_KEY_CHARS} characters: a key is a password that scripts send, so make it "
        "long and random (python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
    )


@dataclass(frozen=True, slots=True)
class KeyEntry:
    """One configured key: its sha256, whose desk it is, and its own limits."""

    sha256: bytes
    """The key's sha256 digest (32 bytes)."""
    tenant: str | None = None
    """The tenant (desk) the key belongs to; None: a key of ``KURZ_API_KEYS``, its own desk."""
    rate_limit_per_minute: int | None = None
    """Submissions and other requests per minute for this key; None: ``KURZ_RATE_LIMIT_...``."""
    cache_scope: str | None = None
    """Its desk's name when the desk keeps its results to itself (``shares_cache = false``)."""

    @classmethod
    def from_key(
        cls, key: str, *, tenant: str | None = None, rate_limit_per_minute: int | None = None
    ) -> KeyEntry:
        if len(key) < MIN_KEY_CHARS:
            raise ConfigError(short_key_message(1))
        digest = hashlib.sha256(key.encode()).digest()
        return cls(digest, tenant=tenant, rate_limit_per_minute=rate_limit_per_minute)

    @property
    def client(self) -> str:
        """Who owns what this key makes: its desk (``tenant:NAME``) or, for a key of its own,
        a short digest of it (``key:...``)."""
        digest = self.sha256.hex()[:16]
        return f"tenant:{self.tenant}" if self.tenant is not None else f"key:{digest}"


@dataclass(frozen=True, slots=True)
class KeysFile:
    """What a keys file configures."""

    keys: list[KeyEntry]
    webhook_secrets: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Each desk's own webhook secrets, by tenant name."""

    def signers(self) -> dict[str, WebhookSigner]:
        """A signer per desk with secrets, by the owner name its deliveries carry."""
        return {
            f"tenant:{tenant}": WebhookSigner(secrets)
            for tenant, secrets in self.webhook_secrets.items()
        }


def load_keys_file(path: Path) -> KeysFile:
    """The keys and desks a keys file configures; ``ConfigError`` saying what is wrong."""
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"KURZ_API_KEYS_FILE {path} cannot be read ({error.strerror})") from error
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"KURZ_API_KEYS_FILE {path} is not valid TOML ({error})") from error
    unknown_top = set(document) - {"keys", "tenants"}
    if unknown_top:
        raise ConfigError(f"{path}: unknown table or field {sorted(unknown_top)[0]!r}")
    tables = document.get("keys", [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise ConfigError(f"{path}: write each key as a [[keys]] table")
    entries = [_entry(path, number, table) for number, table in enumerate(tables, start=1)]
    tenants = document.get("tenants", {})
    secrets = _tenant_secrets(path, tenants, {e.tenant for e in entries})
    private = {name for name, table in tenants.items() if table.get("shares_cache") is False}
    entries = [
        replace(entry, cache_scope=entry.tenant) if entry.tenant in private else entry
        for entry in entries
    ]
    plaintext = sum("key" in table for table in tables)
    if plaintext:
        log.warning(
            "the keys file holds keys in plaintext: store their sha256 instead",
            file=str(path),
            plaintext_keys=plaintext,
        )
    return KeysFile(entries, secrets)


def _tenant_secrets(
    path: Path, tenants: object, known: set[str | None]
) -> dict[str, tuple[str, ...]]:
    if not isinstance(tenants, dict):
        raise ConfigError(f"{path}: write each desk's settings as a [tenants.NAME] table")
    secrets: dict[str, tuple[str, ...]] = {}
    for tenant, table in tenants.items():
        where = f"{path}: tenants.{tenant}"
        if tenant not in known:
            raise ConfigError(f"{where}: no [[keys]] entry names this tenant")
        if not isinstance(table, dict):
            raise ConfigError(f"{where} must be a table")
        unknown = set(table) - _TENANT_FIELDS
        if unknown:
            raise ConfigError(f"{where}: unknown field {sorted(unknown)[0]!r}")
        if not isinstance(table.get("shares_cache", True), bool):
            raise ConfigError(f"{where}: 'shares_cache' must be true or false")
        if "webhook_secrets" not in table:
            continue
        values = table["webhook_secrets"]
        if (
            not isinstance(values, list)
            or not all(isinstance(v, str) for v in values)
            or not values
        ):
            raise ConfigError(f"{where}: 'webhook_secrets' must be a list of whsec_ secrets")
        try:
            WebhookSigner(values)  # the same checks as KURZ_WEBHOOK_SECRET's
        except WebhookConfigError as error:
            message = str(error).replace("KURZ_WEBHOOK_SECRET", "webhook_secrets")
            raise ConfigError(f"{where}: {message}") from None
        secrets[tenant] = tuple(values)
    return secrets


def _entry(path: Path, number: int, table: dict[str, Any]) -> KeyEntry:
    where = f"{path}: key {number}"
    unknown = set(table) - _FIELDS
    if unknown:
        raise ConfigError(
            f"{where}: unknown field {sorted(unknown)[0]!r} "
            f"(a key has {', '.join(sorted(_FIELDS))})"
        )
    tenant = table.get("tenant")
    if not isinstance(tenant, str) or not _TENANT.fullmatch(tenant):
        raise ConfigError(
            f"{where}: 'tenant' must name the desk: letters, digits, '.', '_' or '-', "
            "up to 64 characters"
        )
    limit = table.get("rate_limit_per_minute")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise ConfigError(f"{where}: 'rate_limit_per_minute' must be a whole number, 0 or more")
    if ("sha256" in table) == ("key" in table):
        raise ConfigError(f"{where}: give either 'sha256' (the key's hex digest) or 'key'")
    if "sha256" in table:
        digest = table["sha256"]
        if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
            raise ConfigError(f"{where}: 'sha256' must be 64 hex digits")
        return KeyEntry(bytes.fromhex(digest), tenant=tenant, rate_limit_per_minute=limit)
    key = table["key"]
    if not isinstance(key, str):
        raise ConfigError(f"{where}: 'key' must be a string")
    try:
        return KeyEntry.from_key(key, tenant=tenant, rate_limit_per_minute=limit)
    except ConfigError as error:
        raise ConfigError(f"{where}: {error}") from None
