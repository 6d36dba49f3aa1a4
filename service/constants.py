"""Redis key builders, TTLs and queue timings, in one place.

Every key the service writes starts with the configured prefix (``KURZ_KEY_PREFIX``), so several
deployments or test runs can share one Redis without touching each other's data.
"""

from __future__ import annotations

import hashlib

#: Below this share of German sentences an article is refused (unless the caller allows it).
MIN_GERMAN_SHARE = 0.5

#: Name of the SAQ function that processes one article.
SUMMARIZE_TASK = "summarize_article"
#: Name of the SAQ function that translates texts on the translate lane (no summary).
TRANSLATE_TASK = "translate_texts"
#: A translate-lane job record (and so its result) is kept this long: identical texts asked
#: again within the hour are answered from it without a model call.
TRANSLATE_RECORD_TTL_S = 3600
#: Name of the SAQ function that makes one webhook delivery attempt.
DELIVER_TASK = "deliver_webhook"
#: A delivery attempt's job may run this much longer than the HTTP timeout (logging, Redis).
DELIVERY_JOB_SLACK_S = 30

#: A worker rewrites its heartbeat key this often, and the key lives this long: a worker is
#: "alive" for readiness while its key exists.
WORKER_HEARTBEAT_INTERVAL_S = 5
WORKER_HEARTBEAT_TTL_S = 15

#: A running job is touched this often; SAQ's sweep re-queues an active job not touched for
#: ``JOB_HEARTBEAT_S`` (its worker died), and sweeps run every ``SWEEP_INTERVAL_S``.  Together
#: they bound how long a SIGKILLed worker's job waits before another worker takes it (< 30 s).
JOB_TOUCH_INTERVAL_S = 3
JOB_HEARTBEAT_S = 15
SWEEP_INTERVAL_S = 5
#: How long the sweep waits for a stuck job's worker to confirm its abort before re-queueing
#: it (SAQ's default is 5 s per job, one job after another; a live worker confirms within ~1 s).
SWEEP_ABORT_WAIT_S = 2.0
#: A sweep keeps its lock this long past each stuck job it takes (so no other worker's sweep
#: takes the same jobs while it waits on them).
SWEEP_LOCK_HOLD_S = SWEEP_INTERVAL_S + 3

#: SAQ's default 10 s timeout would kill every real article.  A job may run this long plus
#: ``JOB_TIMEOUT_PER_CHAR_S`` per character (a 100,000-character article: about 70 minutes on a
#: slow CPU, which is well beyond what it needs).
JOB_TIMEOUT_BASE_S = 300
JOB_TIMEOUT_PER_CHAR_S = 0.04
#: Retry backoff: the first retry after about this long, doubling, capped.
JOB_RETRY_DELAY_S = 2.0
JOB_RETRY_BACKOFF_MAX_S = 60.0
#: How long SAQ keeps a finished job record (status, error) after it ends.
JOB_RECORD_TTL_S = 7 * 24 * 3600

#: A running job's translated paragraphs are kept at most this long (renewed on every write):
#: the worker deletes them when the job ends, so this only bounds what a crashed worker leaves.
PARTIAL_TTL_S = JOB_RECORD_TTL_S

#: How long an Idempotency-Key remembers its request.
IDEMPOTENCY_TTL_S = 24 * 3600

#: Error text SAQ records when a job is canceled by a client (vs. swept or failed).
CANCELED_BY_CLIENT = "canceled by client"


def job_timeout_s(text_chars: int) -> int:
    """The timeout for a job over an article of ``text_chars`` characters."""
    return int(JOB_TIMEOUT_BASE_S + JOB_TIMEOUT_PER_CHAR_S * text_chars)


class Keys:
    """Builds every Redis key from one prefix: ``<prefix>:<kind>:<id>``."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def result(self, cache_key: str) -> str:
        return f"{self.prefix}:result:{cache_key}"

    def sentence(self, model_digest: str, sentence_digest: str) -> str:
        return f"{self.prefix}:sentence:{model_digest}:{sentence_digest}"

    def idempotency(self, client: str, key: str) -> str:
        return f"{self.prefix}:idempotency:{client}:{key}"

    def worker(self, worker_id: str) -> str:
        return f"{self.prefix}:worker:{worker_id}"

    def workers_alive(self) -> str:
        """The live workers: a sorted set of worker ids scored by when their heartbeat runs
        out, so readiness and metrics ask one ZRANGE/ZCOUNT instead of SCANning the keyspace
        (which a month of sentence cache makes tens of thousands of round trips)."""
        return f"{self.prefix}:workers"

    def worker_host(self, hostname: str) -> str:
        """A host's heartbeat, renewed with its workers' own, for the container's liveness probe
        (one EXISTS, where finding ``worker(<hostname>-<pid>-<suffix>)`` would take a SCAN).
        Its kind is ``worker-host``, not ``worker:``: it is no worker's record."""
        return f"{self.prefix}:worker-host:{hostname}"

    def job_input(self, job_id: str, queued_ms: int) -> str:
        """An article job's text or HTML, kept apart from the job (``service.queue.jobs``); one
        per enqueued instance of the job, so that a job enqueued again under the same id (after
        it failed) never loses its article to the end of the one before."""
        return f"{self.prefix}:job-input:{job_id}:{queued_ms}"

    @property
    def pending_input_bytes(self) -> str:
        """Bytes of articles stored for jobs that have not ended (``job_input`` keys): what
        their results will still add to Redis (``service.store.memory``); no TTL."""
        return f"{self.prefix}:memory:pending-input-bytes"

    @property
    def result_growth(self) -> str:
        """A hash of two sums over the article jobs that succeeded: their stored articles'
        bytes (``input``) and their finished records' with the paragraphs they held while
        running (``record``); no TTL."""
        return f"{self.prefix}:memory:result-growth"

    def submitters(self, job_id: str) -> str:
        """Who submitted a job, with what each attached (``service.store.submitters``)."""
        return f"{self.prefix}:submitters:{job_id}"

    def models(self) -> str:
        """What the workers run: model ids and revisions, which the API folds into cache keys."""
        return f"{self.prefix}:models"

    def summarizer(self) -> str:
        """What the workers' summarizer can do (whether it follows a style's instruction)."""
        return f"{self.prefix}:summarizer"

    def callbacks(self, job_key: str) -> str:
        """The per-request callback URLs of everyone waiting on one (shared) job."""
        return f"{self.prefix}:callbacks:{job_key}"

    def callbacks_of(self, job_key: str, owner: str) -> str:
        """The callback URLs one caller registered for a job (counted against its limit)."""
        return f"{self.prefix}:callbacks-of:{job_key}:{owner}"

    def partial(self, job_key: str) -> str:
        """A running job's translated paragraphs: a hash by paragraph index, not the job
        record's meta, which SAQ rewrites whole on every progress touch (twice a second)."""
        return f"{self.prefix}:partial:{job_key}"

    def deliveries_state(self, job_key: str) -> str:
        """A hash of the job's deliveries (state and body), so they can be sent again."""
        return f"{self.prefix}:delivery-state:{job_key}"

    def deliveries(self, job_key: str) -> str:
        """The job's delivery log: every attempt, oldest first."""
        return f"{self.prefix}:deliveries:{job_key}"

    def webhook_gone(self, url: str) -> str:
        """A mark that ``url`` answered 410 Gone (by the URL's digest: URLs can be long)."""
        digest = hashlib.sha256(url.encode("utf-8")).hexdigest()
        return f"{self.prefix}:webhook-gone:{digest}"

    def stats(self) -> str:
        """A hash of counters the workers increment and the API's /metrics reports."""
        return f"{self.prefix}:stats"

    def glossary(self, glossary_id: str) -> str:
        """A user glossary (owner, metadata, entries); no TTL: glossaries live until deleted."""
        return f"{self.prefix}:glossary:{glossary_id}"

    def glossaries(self, owner: str) -> str:
        """The ids of one owner's glossaries, scored by creation time."""
        return f"{self.prefix}:glossaries:{owner}"

    def rate(self, client: str, window: int) -> str:
        return f"{self.prefix}:rate:{client}:{window}"

    @property
    def queue_name(self) -> str:
        """SAQ namespaces its own keys by queue name (``saq:<name>:…``)."""
        return self.prefix

    @property
    def delivery_queue_name(self) -> str:
        """Webhook deliveries' own SAQ queue: a backlog of them (a storm of redeliveries, a
        receiver that is down) never holds back or takes the slots of an article."""
        return f"{self.prefix}:deliveries"

    @property
    def translate_queue_name(self) -> str:
        """The translate lane's own SAQ queue, so short requests never wait behind articles."""
        return f"{self.prefix}:translate"

    def usage(self, subject: str, period: str) -> str:
        """Characters a key (or client) had translated in one period (``YYYY-MM``)."""
        return f"{self.prefix}:usage:{subject}:{period}"
