"""The HTTP API process: Litestar handlers over Redis; never imports torch or the models.

- ``app``: ``create_app`` and ``serve``; ``openapi``: the OpenAPI document;
- ``articles``, ``jobs``, ``health``: the handlers, one module per group of endpoints;
- ``submission``: validation, idempotency, shared jobs and waiting (no Litestar in it);
- ``schemas``: request and response bodies; ``services`` and ``deps``: what handlers share;
- ``auth``, ``keys``, ``ratelimit``: who calls and how often; ``problems``: errors as RFC 9457;
- ``metrics``: Prometheus series of this process and of the deployment.
"""
