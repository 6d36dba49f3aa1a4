"""Standard Webhooks signing: ``whsec_`` secrets, the three signature headers, verification.

Signing follows Standard Webhooks (https://www.standardwebhooks.com/): the ``webhook-id`` stays
the same across retries of one event so receivers can de-duplicate, while the timestamp and
signature are made fresh for every attempt, because receivers refuse timestamps older than five
minutes and retries come hours later.
"""

from __future__ import annotations

import base64
import datetime as dt
import secrets as secrets_module
from collections.abc import Mapping, Sequence
from typing import Any, Final

import msgspec
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from service.errors import WebhookConfigError

__all__ = ["MIN_SECRET_BYTES", "WebhookSigner", "WebhookVerificationError", "generate_secret"]

#: Standard Webhooks recommends secrets of 24 to 64 random bytes; shorter ones are refused.
MIN_SECRET_BYTES: Final = 24
_SECRET_PREFIX: Final = "whsec_"  # noqa: S105 (the format prefix, not a secret)


def generate_secret() -> str:
    """A fresh ``whsec_`` secret (32 random bytes), for ``KURZ_WEBHOOK_SECRET``."""
    return _SECRET_PREFIX + base64.b64encode(secrets_module.token_bytes(32)).decode("ascii")


def _check_secret(secret: str, position: int) -> str:
    """Refuse a secret that is not ``whsec_`` + base64 of enough bytes; never echo the secret."""
    where = f"KURZ_WEBHOOK_SECRET entry {position}"
    if not secret.startswith(_SECRET_PREFIX):
        raise WebhookConfigError(f"{where} does not start with {_SECRET_PREFIX!r}")
    encoded = secret.removeprefix(_SECRET_PREFIX)
    try:
        raw = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except ValueError as exc:
        raise WebhookConfigError(f"{where} is not valid base64 after {_SECRET_PREFIX!r}") from exc
    if len(raw) < MIN_SECRET_BYTES:
        raise WebhookConfigError(
            f"{where} holds {len(raw)} bytes; at least {MIN_SECRET_BYTES} random bytes are needed"
        )
    return secret


class WebhookSigner:
    """Signs outgoing events with every secret (one signature each) and verifies against any.

    Several secrets exist for rotation: add the new secret, let receivers switch over (each
    event carries a signature by the old secret and one by the new), then remove the old.  An
    empty secret list is refused rather than replaced by a generated secret: a secret nobody
    configured is one no receiver can verify, and unsigned deliveries would teach receivers to
    skip verification.
    """

    def __init__(self, secrets: Sequence[str]) -> None:
        cleaned = [secret.strip() for secret in secrets if secret.strip()]
        if not cleaned:
            raise WebhookConfigError(
                "KURZ_WEBHOOK_SECRET is empty, so webhook deliveries are refused: every event is "
                'signed. Generate a secret with `python -c "from service.webhooks import '
                'generate_secret; print(generate_secret())"` and give it to your receivers.'
            )
        self._webhooks = [
            Webhook(_check_secret(secret, position))
            for position, secret in enumerate(cleaned, start=1)
        ]

    @classmethod
    def from_setting(cls, value: str) -> WebhookSigner:
        """Build from ``KURZ_WEBHOOK_SECRET``: comma-separated, the first one signs."""
        return cls(value.split(","))

    def sign(self, msg_id: str, timestamp: int | dt.datetime, body: bytes) -> dict[str, str]:
        """The three Standard Webhooks headers for ``body`` (UTF-8, as JSON always is)."""
        when = (
            timestamp
            if isinstance(timestamp, dt.datetime)
            else dt.datetime.fromtimestamp(timestamp, tz=dt.UTC)
        )
        if when.tzinfo is None:
            raise ValueError("the timestamp must be timezone-aware")
        when = when.astimezone(dt.UTC)
        # One signature per secret, space-separated as the spec allows: during a rotation a
        # receiver that knows either secret verifies the event.
        signature = " ".join(
            str(webhook.sign(msg_id=msg_id, timestamp=when, data=body.decode("utf-8")))
            for webhook in self._webhooks
        )
        return {
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(when.timestamp())),
            "webhook-signature": signature,
        }

    def verify(self, body: bytes, headers: Mapping[str, str]) -> Any:
        """The decoded JSON body if any configured secret signed it within the last 5 minutes.

        Raises ``WebhookVerificationError`` otherwise (also for malformed signature headers).
        """
        plain = {key.lower(): value for key, value in headers.items()}
        failure: WebhookVerificationError | None = None
        for webhook in self._webhooks:
            try:
                webhook.verify(body, plain, json_parse=False)
            except WebhookVerificationError as exc:
                failure = exc
            except ValueError as exc:  # a signature without "v1,", bad base64, a non-UTF-8 body
                failure = WebhookVerificationError(f"malformed webhook: {exc}")
            else:
                return msgspec.json.decode(body)
        assert failure is not None
        raise failure
