"""Webhook event bodies, and the ids that let receivers de-duplicate them.

A ``webhook-id`` names one event of one job to one endpoint and is reused by every retry.  The
notifier derives it from those three (``service.webhooks.notifier.message_id``), so a job that
ran twice after a crash announces itself with the same ids: receivers see at most a repeat,
never a new event.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Final, Literal

import msgspec

__all__ = ["MAX_EVENT_BYTES", "EventType", "build_event", "new_message_id", "now_iso"]

EventType = Literal["summary.succeeded", "summary.failed"]

#: Bodies above this carry a link to the job instead of the job: receivers (and proxies in front
#: of them) commonly refuse large request bodies, and a 100,000-character article's result with
#: its sentence alignment is several times this.
MAX_EVENT_BYTES: Final = 256 * 1024


def new_message_id() -> str:
    """A random ``webhook-id``, for a delivery made outside the notifier (tests, tools).

    The notifier never uses it: its ids are derived from the job, the event and the endpoint,
    so that a re-run of a job repeats them (see the module docstring).
    """
    return f"msg_{uuid.uuid4().hex}"


def now_iso() -> str:
    """The current UTC time as ISO 8601 with milliseconds, as events and records show it."""
    return dt.datetime.now(tz=dt.UTC).isoformat(timespec="milliseconds")


def build_event(
    event_type: EventType,
    data: object,
    *,
    link: str,
    max_bytes: int = MAX_EVENT_BYTES,
    now: dt.datetime | None = None,
) -> bytes:
    """The JSON body of one event: ``{"type", "timestamp", "data"}``.

    ``data`` is the job as the API shows it (a ``JobView`` or its dict).  When the body would be
    larger than ``max_bytes``, ``data`` shrinks to ``{"id", "status", "link", "truncated": true}``
    so the receiver fetches the full job from ``link`` (an absolute URL of ``GET /jobs/{id}``).
    """
    builtin = msgspec.to_builtins(data)
    timestamp = (
        (now or dt.datetime.now(tz=dt.UTC)).astimezone(dt.UTC).isoformat(timespec="milliseconds")
    )
    body = msgspec.json.encode({"type": event_type, "timestamp": timestamp, "data": builtin})
    if len(body) <= max_bytes:
        return body
    fields = builtin if isinstance(builtin, dict) else {}
    small = {
        "id": fields.get("id"),
        "status": fields.get("status"),
        "link": link,
        "truncated": True,
    }
    body = msgspec.json.encode({"type": event_type, "timestamp": timestamp, "data": small})
    if len(body) > max_bytes:
        raise ValueError(f"even the linked form of the event exceeds {max_bytes} bytes")
    return body
