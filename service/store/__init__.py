"""Redis and the records in it, each with one owner: the connection factory, the result and
sentence caches, the worker registry (heartbeats and the models record), idempotency records,
the shared counters and the users' glossaries.  Queue state belongs to ``service.queue``;
delivery logs to ``service.webhooks.log``; rate-limit windows to ``service.api.ratelimit``.
Every key comes from ``service.constants.Keys``."""
