"""The keys file (``KURZ_API_KEYS_FILE``): each desk's keys, by tenant, with their own limits.

A TOML file with one ``[[keys]]`` table per key::

    [[keys]]
    tenant = "sport"                 # the desk; its keys own the same jobs
    sha256 = "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8"
    rate_limit_per_minute = 120      # optional: this key's own limit (0: none)

    [[keys]]
    tenant = "politik"
    key = "a-long-random-key-of-at-least-32-characters"   # plaintext: accepted, with a warning

``sha256`` is the hex digest of the key (``printf %s "$KEY" | sha256sum``), so the file reveals
no key; ``key`` (the key itself) is accepted for trying things out, and start-up warns about it.
A wrong file stops start-up with a message naming the entry: a typo must not leave a desk open
or locked out.  Unknown fields are refused rather than ignored, for the same reason.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import structlog

from service.api.keys import KeyEntry
from service.errors import ConfigError

__all__ = ["load_keys_file"]

log = structlog.get_logger(__name__)

_FIELDS = {"tenant", "sha256", "key", "rate_limit_per_minute"}
_TENANT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")


def load_keys_file(path: Path) -> list[KeyEntry]:
    """The keys a keys file configures; ``ConfigError`` saying what is wrong otherwise."""
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"KURZ_API_KEYS_FILE {path} cannot be read ({error.strerror})") from error
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"KURZ_API_KEYS_FILE {path} is not valid TOML ({error})") from error
    unknown_top = set(document) - {"keys"}
    if unknown_top:
        raise ConfigError(f"{path}: unknown table or field {sorted(unknown_top)[0]!r}")
    tables = document.get("keys", [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise ConfigError(f"{path}: write each key as a [[keys]] table")
    entries = [_entry(path, number, table) for number, table in enumerate(tables, start=1)]
    plaintext = sum("key" in table for table in tables)
    if plaintext:
        log.warning(
            "the keys file holds keys in plaintext: store their sha256 instead",
            file=str(path),
            plaintext_keys=plaintext,
        )
    return entries


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
