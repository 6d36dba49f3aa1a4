"""The API does not serve everyone by accident: a reachable address without keys is refused
at start-up unless ``KURZ_ALLOW_OPEN_API`` says so."""

from __future__ import annotations

import subprocess
import sys

import pytest

from service.api.app import refuse_accidental_exposure
from service.errors import ConfigError
from service.settings import ROOT, Settings
from tests.processes import environ_without_kurz


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[arg-type, call-arg]


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "api.internal"])
def test_a_reachable_address_without_keys_is_refused(host: str) -> None:
    with pytest.raises(ConfigError, match="KURZ_ALLOW_OPEN_API"):
        refuse_accidental_exposure(settings(host=host))


@pytest.mark.parametrize(
    "values",
    [
        {"host": "127.0.0.1"},
        {"host": "localhost"},
        {"host": "::1"},
        {"host": "0.0.0.0", "api_keys": ["k" * 40]},
        {"host": "0.0.0.0", "allow_open_api": True},
    ],
    ids=["loopback", "localhost", "loopback-v6", "with-keys", "open-on-purpose"],
)
def test_loopback_keys_or_a_deliberate_choice_start(values: dict[str, object]) -> None:
    refuse_accidental_exposure(settings(**values))


def test_the_command_stops_with_one_clear_line() -> None:
    """``python -m service api`` on 0.0.0.0 without keys exits with status 2 and says what to
    set, before it listens on anything."""
    env = {**environ_without_kurz(), "KURZ_HOST": "0.0.0.0", "KURZ_PORT": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "service", "api"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert "KURZ_API_KEYS" in done.stderr and "KURZ_ALLOW_OPEN_API" in done.stderr


def test_short_api_keys_stop_the_api_at_start_up() -> None:
    """A key is a password scripts send: one shorter than 32 characters is refused, naming
    how many and how to make a good one (never the key itself)."""
    from service.api.keys import ApiKeys

    with pytest.raises(ConfigError, match="shorter than 32") as refused:
        ApiKeys(["k" * 40, "newsroom-2024"])
    assert "newsroom-2024" not in str(refused.value)
    ApiKeys(["k" * 32])
