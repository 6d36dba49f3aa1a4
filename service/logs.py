"""structlog set-up shared by every process.  Article text is never logged, only its size.

The queue library logs jobs in full (``Error processing job Job<... kwargs: {...}>``): article
text, callback URLs with their tokens, metadata, webhook bodies.  :class:`RedactedJobs` replaces
every job in its log records with what identifies it and nothing a client sent.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

import structlog

from service.settings import Settings


def configure_logging(settings: Settings) -> None:
    """Route structlog and the standard library through one renderer on stderr."""
    level = getattr(logging, settings.log_level.upper())
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if settings.log_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(level=level, stream=sys.stderr, format="%(name)s %(levelname)s %(message)s")
    install_job_redaction()


def install_job_redaction() -> None:
    """Redact the jobs in the queue library's log records (once per process)."""
    saq_logger = logging.getLogger("saq")
    if not any(isinstance(f, RedactedJobs) for f in saq_logger.filters):
        saq_logger.addFilter(RedactedJobs())


class RedactedJobs(logging.Filter):
    """Rewrites the jobs in a log record's arguments (the job, or the library's ``job.info()``
    string of it) to ``Job<function, key, status, attempts>``: its kwargs (article text,
    callback URLs, metadata, webhook bodies) and its result stay out of the log."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_redacted(arg) for arg in record.args)
        return True


#: What identifies a job in the library's ``Job<field: value, ...>`` string.
_JOB_FIELD = re.compile(r"(?:^Job<|, )(function|key|attempts): ([^,>]*)")


def _redacted(value: object) -> object:
    """``value`` itself unless it is a job or the library's string of one."""
    if type(value).__name__ == "Job" and hasattr(value, "key") and hasattr(value, "function"):
        job: Any = value
        status = getattr(job.status, "name", str(job.status)).lower()
        return (
            f"Job<function: {job.function}, key: {job.key}, status: {status}, "
            f"attempts: {job.attempts}>"
        )
    if isinstance(value, str) and value.startswith("Job<"):
        # The fields come in a fixed order: function, kwargs (only in the full form), ..., key,
        # ..., attempts, ..., result, error, status.  Only what precedes the result is read, so
        # no text of a client's or a model's can be picked up.
        head = re.split(r", (?:result|error|status): ", value, maxsplit=1)[0]
        if "kwargs:" in head:
            return "Job<redacted>"
        return "Job<" + ", ".join(f"{k}: {v}" for k, v in _JOB_FIELD.findall(head)) + ">"
    return value


def redacted_url(url: str) -> str:
    """A connection URL without its credentials, for logs and the screen."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        rest = "***@" + rest.rsplit("@", 1)[1]
    return f"{scheme}{sep}{rest}"
