"""Webhooks: telling the newsroom's systems when a summary is ready, signed and retried.

- ``signing``: Standard Webhooks secrets, signatures and verification;
- ``events``: event bodies and message ids;
- ``delivery``: one HTTP attempt, its outcome and the retry timing, over the guarded client;
- ``log``: the per-job delivery log and "endpoint gone" marks in Redis;
- ``notifier``: from a finished job to scheduled deliveries (each attempt a queue job);
- ``ssrf``: the guard that keeps every outgoing request off private and loopback addresses.

The names most callers need are re-exported here.
"""

from service.webhooks.delivery import (
    MAX_RESPONSE_BYTES,
    AttemptError,
    AttemptOutcome,
    AttemptRecord,
    Delivery,
    DeliveryStatus,
    Outcome,
    attempt_delivery,
    make_client,
    next_delay,
    parse_retry_after,
)
from service.webhooks.events import MAX_EVENT_BYTES, EventType, build_event, new_message_id
from service.webhooks.log import DeliveryLog
from service.webhooks.signing import WebhookSigner, WebhookVerificationError, generate_secret

__all__ = [
    "MAX_EVENT_BYTES",
    "MAX_RESPONSE_BYTES",
    "AttemptError",
    "AttemptOutcome",
    "AttemptRecord",
    "Delivery",
    "DeliveryLog",
    "DeliveryStatus",
    "EventType",
    "Outcome",
    "WebhookSigner",
    "WebhookVerificationError",
    "attempt_delivery",
    "build_event",
    "generate_secret",
    "make_client",
    "new_message_id",
    "next_delay",
    "parse_retry_after",
]
