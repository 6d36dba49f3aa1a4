"""The roots of the tree: every deliberate error, configuration errors, input errors, and the
API's own refusals.  See ``service.errors`` for the whole tree."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar


class KurzError(Exception):
    """Base of every deliberate error; ``code`` is stable across releases."""

    code: str = "internal"
    status: int = 500
    #: Response headers the error asks for (``Retry-After``, ``WWW-Authenticate``).
    headers: Mapping[str, str] = {}

    def extensions(self) -> dict[str, Any]:
        """Extra members of the problem document (the limit, the detected language, ...)."""
        return {}


class ConfigError(KurzError):
    """Settings or files that make the process unable to start."""

    code = "config"


class PresetError(ConfigError):
    """A style preset file is invalid; the message names the file and the field."""

    code = "preset"

    def __init__(self, path: str, field: str, problem: str) -> None:
        self.path = path
        self.field = field
        self.problem = problem
        super().__init__(f"{path}: field {field!r}: {problem}")


class AllowListError(ConfigError):
    """An entry of ``KURZ_WEBHOOK_ALLOW_HOSTS`` is neither a hostname nor an IP network."""

    code = "webhook_allow_hosts"


class WebhookConfigError(ConfigError):
    """Webhook settings that make deliveries impossible (no secret, a malformed secret)."""

    code = "webhook_config"


class ModelUnavailableError(KurzError):
    """A configured model cannot be loaded; the message says which and how to fetch it."""

    code = "model_unavailable"

    def __init__(self, model: str, reason: str) -> None:
        self.model = model
        message = (
            f"model {model!r} is not available: {reason}. "
            "Fetch it on a machine with internet with `python -m service download-models`, "
            "or point the setting at a local directory (KURZ_MODELS=tiny uses the offline models)."
        )
        super().__init__(message)


class InputError(KurzError):
    """The request is wrong; retrying it unchanged cannot succeed."""

    code = "invalid_input"
    status = 422


class LaneTimeoutError(KurzError):
    """A translate-lane job was not done within the synchronous endpoints' wait (the job goes
    on; asked again, the same texts join it)."""

    code = "translate_timeout"
    status = 503
    #: Seconds a client should wait before it asks again.
    retry_after_s: ClassVar[int] = 5

    def __init__(self, wait_s: float) -> None:
        self.wait_s = wait_s
        self.headers = {"Retry-After": str(self.retry_after_s)}
        super().__init__(f"the translation took longer than {wait_s:g} s; retry shortly")


class LaneFailedError(KurzError):
    """A translate-lane job failed for good (its worker's error, kept in the log)."""

    code = "translate_failed"
    status = 500


class ApiProblem(KurzError):  # noqa: N818 - it is raised, but it is a problem document
    """A refusal the API decides itself, with its own status and code (queue full, unknown job,
    bad key, conflicting Idempotency-Key, ...); keyword arguments become extension members."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        headers: Mapping[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.headers = dict(headers or {})
        self._extensions = extensions

    def extensions(self) -> dict[str, Any]:
        return dict(self._extensions)


class QueueFullError(ApiProblem):
    """``depth`` jobs are waiting already, at least the configured limit."""

    code = "queue_full"
    status = 429
    #: Seconds a refused client should wait before it submits again.
    retry_after_s: ClassVar[int] = 15

    def __init__(self, depth: int) -> None:
        super().__init__(
            self.status,
            self.code,
            f"{depth} articles are waiting; retry later",
            headers={"Retry-After": str(self.retry_after_s)},
            queue_depth=depth,
        )
        self.depth = depth


class StorageFullError(ApiProblem):
    """The queue's Redis holds nearly its ``maxmemory``: new work is refused before Redis
    itself refuses writes, so the jobs already accepted keep the room to finish."""

    code = "storage_full"
    status = 503
    #: Seconds a refused client should wait: finished jobs' records expire, workers drain.
    retry_after_s: ClassVar[int] = 30

    def __init__(self) -> None:
        super().__init__(
            self.status,
            self.code,
            "the job store is full; retry later",
            headers={"Retry-After": str(self.retry_after_s)},
        )
