"""Settings, read from ``KURZ_*`` environment variables (and an optional ``.env`` file).

A ``Settings`` object is built once per process and passed explicitly to whatever needs it; there
is no cached global, so tests build their own with keyword arguments.  ``.env.example`` lists
every field with its default.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

#: The repository root, where ``prompts/`` and ``seeds/`` live in a checkout and in the image.
ROOT = Path(__file__).resolve().parent.parent

DeviceName = Literal["auto", "cpu", "cuda"]
BackendName = Literal["transformers", "ctranslate2"]
ComputeType = Literal["auto", "float32", "float16", "int8", "int8_float16"]


def _split_csv(value: object) -> object:
    """Accept comma-separated strings for list settings, as people write them in ``.env``."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    """Every knob of the service, grouped by concern."""

    model_config = SettingsConfigDict(
        env_prefix="KURZ_", env_file=".env", extra="ignore", frozen=True
    )

    # --- models -------------------------------------------------------------------------------
    translation_model: str = "Helsinki-NLP/opus-mt-de-en"
    """Hub id or local directory of the MarianMT German-to-English model."""
    summarization_model: str = "sshleifer/distilbart-cnn-12-6"
    """Hub id or local directory of the seq2seq summarizer (BART, PEGASUS, T5/FLAN-T5)."""
    models: Literal["hub", "tiny"] = "hub"
    """``tiny`` builds and uses the small offline models (for trying the stack without weights)."""
    tiny_models_dir: Path = ROOT / "var" / "tiny-models"
    """Where ``KURZ_MODELS=tiny`` builds its models."""
    device: DeviceName = "auto"
    """``auto`` picks CUDA when present (with fp16), else the CPU."""
    backend: BackendName = "ctranslate2"
    """Inference engine for both models: ``ctranslate2`` (converted once, int8 on a CPU: several
    times faster and half the memory) or ``transformers``."""
    compute_type: ComputeType = "auto"
    """``auto``: float16 on CUDA, float32 on the CPU for transformers, int8 for ctranslate2;
    ``int8_float16`` is ctranslate2 on CUDA only."""
    converted_models_dir: Path = ROOT / "var" / "ct2"
    """Where the ctranslate2 backend keeps converted models."""

    # --- pipeline -----------------------------------------------------------------------------
    batch_token_budget: int = Field(default=4096, ge=64)
    """Source tokens (padding included) per translation batch."""
    max_batch_sentences: int = Field(default=64, ge=1)
    """Upper bound on sentences per translation batch, whatever their length."""
    translation_beams: int = Field(default=1, ge=1, le=8)
    """Beam width for translation; greedy (1) is several times faster on a CPU."""
    translation_vocabulary_map: int = Field(default=0, ge=0)
    """CTranslate2 only: score just this many frequent English tokens plus the batch's own
    source pieces instead of the whole 58k-token output layer (a vocabulary map); faster, but
    a word outside that set can never be produced, so 0 (off) until checked on real text."""
    inference_threads: int = Field(default=0, ge=0)
    """Threads of one model call (CTranslate2 intra-op threads, or torch's with the transformers
    backend); 0 means the number of cores this process may use."""
    background_nice: int = Field(default=10, ge=0, le=19)
    """How far below the translate lane article translation and summarization run (Linux
    ``nice`` steps): a lane request gets the cores while articles are busy; 0 turns it off."""
    prompts_dir: Path = ROOT / "prompts"
    """Directory of ``<style>.toml`` presets."""
    default_style: str = "standard"
    glossaries_dir: Path = ROOT / "glossaries"
    """Directory of ``*.tsv`` files that together form the default glossary (checked at start-up;
    none there means no default)."""

    # --- service ------------------------------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    api_processes: int = Field(default=0, ge=0)
    """Processes ``python -m service api`` serves with (uvicorn workers sharing the port); 0: one
    per core this process may run on.  One Python process uses one core, so a single process
    caps cache hits at a core's worth however many the machine has."""
    models_refresh_s: float = Field(default=1.0, ge=0)
    """Seconds an API process reuses the models the workers announced before reading them from
    Redis again (0: read on every request).  A model upgrade reaches the cache keys within it."""
    access_log: bool = False
    """Log one line per HTTP request (uvicorn's access log).  Off by default: at thousands of
    cache hits a second the lines cost more CPU than the hits; ``/metrics`` counts requests."""
    redis_url: str = "redis://127.0.0.1:6379/0"
    """Redis for the queue, job state and caches; every API and worker process shares it."""
    cache_redis_url: str | None = None
    """A Redis of its own for the result and sentence caches (empty: ``KURZ_REDIS_URL``'s).
    Compose gives them one that evicts (``allkeys-lru``); the queue's never evicts."""
    redis_memory_high_water: float = Field(default=0.9, gt=0, le=1)
    """Share of the queue Redis's ``maxmemory`` above which new work is refused with 503
    ``storage_full``; the rest is left to the jobs already accepted."""
    key_prefix: str = "kurz"
    """Prefix of every Redis key, so one Redis can host several deployments or test runs."""
    max_text_chars: int = Field(default=100_000, ge=1)
    """Longest article accepted, in characters (413 above it)."""
    max_body_bytes: int = Field(default=1_000_000, ge=1024)
    """Largest request body accepted, in bytes (413 above it, before it is read whole)."""
    max_queue_depth: int = Field(default=1000, ge=1)
    """Queued jobs beyond which new work is refused with 429."""
    result_ttl_s: int = Field(default=30 * 24 * 3600, ge=60)
    """How long a finished summary stays in the result cache."""
    sentence_cache_ttl_s: int = Field(default=30 * 24 * 3600, ge=60)
    """How long one translated sentence stays in the sentence cache."""
    worker_concurrency: int = Field(default=8, ge=1)
    """Jobs one worker holds at once; their sentences are batched together."""
    job_retries: int = Field(default=3, ge=1)
    """Attempts per job before it is marked failed."""
    shutdown_grace_s: int = Field(default=600, ge=1)
    """On SIGTERM a worker finishes the jobs in hand for this long, then hands the rest back."""
    api_keys: Annotated[list[str], NoDecode] = []
    """Comma-separated API keys, each at least 32 characters; empty means the API is open."""
    api_keys_file: Path | None = None
    """A TOML file of keys by tenant (desk), as sha256 digests, with per-key rate limits (see
    the README); used together with ``KURZ_API_KEYS``."""
    rate_limit_per_minute: int = Field(default=0, ge=0)
    """Submissions and other requests per API key (or client address) per minute; 0: unlimited."""
    read_rate_limit_per_minute: int = Field(default=1200, ge=0)
    """Reads of jobs (status, events, deliveries) per key or address per minute, counted apart
    from submissions so that clients following their jobs are not refused; 0: unlimited."""
    auth_failures_per_minute: int = Field(default=20, ge=0)
    """Requests with a missing or wrong API key per client address per minute; past it, that
    address gets 429 for the rest of the minute, right key or not, so keys cannot be guessed
    at speed.  0: unlimited."""
    allow_open_api: bool = False
    """Serve on a non-loopback address without API keys.  Off, the API refuses to start that
    way: an address others can reach without keys is a decision, not a default."""
    trusted_proxies: str = ""
    """Addresses of reverse proxies whose X-Forwarded-For is believed (comma-separated, or
    ``*``); empty: the client address is the connection's, so behind a proxy everyone would
    share one rate-limit bucket."""

    # --- translate lane (LibreTranslate and DeepL dialects) ---------------------------------
    translate_wait_s: float = Field(default=60.0, gt=0)
    """Seconds /translate and /v2/translate wait for their job before answering 503."""
    translate_char_limit: int = Field(default=20_000, ge=1)
    """Characters one /translate or /v2/translate request may carry (all its texts together)."""
    translate_concurrency: int = Field(default=4, ge=1)
    """Translate-lane jobs one worker runs at once, beside its article jobs."""
    translate_monthly_char_limit: int = Field(default=0, ge=0)
    """Characters a key may have translated per calendar month on /v2/translate (DeepL's
    ``character_limit``, 456 once spent); 0: unlimited."""
    translate_allow_non_german: bool = False
    """Translate texts detected as another language than German when the client did not name
    the source language; otherwise DeepL's dialect answers 400 naming the language."""

    # --- webhooks -----------------------------------------------------------------------------
    webhook_secret: str = ""
    """``whsec_…`` secret(s), comma-separated for rotation; each signs every event."""
    webhook_endpoints: Annotated[list[str], NoDecode] = []
    """URLs that receive every event, comma-separated."""
    webhook_retry_schedule: Annotated[list[float], NoDecode] = [0, 5, 300, 1800, 7200, 18000, 36000]
    """Delays in seconds between delivery attempts."""
    webhook_allow_hosts: Annotated[list[str], NoDecode] = []
    """Hosts or networks callbacks may reach even though they are not public addresses (on any
    port), and ``host:port`` entries: callbacks use ports 80 and 443 only, others need such an
    entry."""
    max_callbacks_per_job: int = Field(default=5, ge=0)
    """Distinct callback URLs one key (or, without keys, everyone) may register for one job;
    each is another delivery of its event.  0: unlimited."""
    webhook_timeout_s: float = Field(default=15.0, gt=0)
    """Seconds one delivery attempt may take, connection to last byte."""
    delivery_concurrency: int = Field(default=8, ge=1)
    """Webhook deliveries one worker sends at once, from their own queue, beside its articles."""
    webhook_host_concurrency: int = Field(default=4, ge=1)
    """Deliveries one worker sends to any one host at once; more to that host are queued again
    a moment later, so one slow or flooded receiver cannot take every delivery slot."""
    public_url: str = "http://127.0.0.1:8000"
    """Base URL under which clients reach the API; webhook events link to jobs below it."""

    # --- article pages (HTML and URL inputs) ----------------------------------------------------
    fetch_allow_hosts: Annotated[list[str], NoDecode] = []
    """Hosts or networks article URLs may be fetched from although they are not public addresses
    (an intranet CMS, tests on loopback).  Separate from ``KURZ_WEBHOOK_ALLOW_HOSTS``: letting
    callbacks reach an internal receiver must not let every client read the intranet."""
    fetch_timeout_s: float = Field(default=15.0, gt=0)
    """Seconds one article fetch may take in all: every redirect, the headers and the body."""
    fetch_max_bytes: int = Field(default=5_000_000, ge=1024)
    """Bytes of a fetched page read at most; a longer page fails its job (``page_too_large``)."""
    extract_timeout_s: float = Field(default=10.0, gt=0)
    """Seconds extracting the article from one page may take; past it the extraction process is
    killed and the job fails (``extraction_timeout``)."""

    # --- logging ------------------------------------------------------------------------------
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_json: bool = False

    @field_validator("api_keys_file", "cache_redis_url", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        """An empty ``KURZ_API_KEYS_FILE=`` or ``KURZ_CACHE_REDIS_URL=`` (as in .env.example)
        means none: no keys file, no Redis of the caches' own."""
        return None if value == "" else value

    _csv = field_validator(
        "api_keys",
        "webhook_endpoints",
        "webhook_retry_schedule",
        "webhook_allow_hosts",
        "fetch_allow_hosts",
        mode="before",
    )(_split_csv)

    @property
    def api_process_count(self) -> int:
        """``api_processes``, with 0 resolved to the cores this process may run on."""
        return self.api_processes or len(os.sched_getaffinity(0))

    @property
    def translation_source(self) -> str:
        """The translation model to load, after ``KURZ_MODELS=tiny`` is applied."""
        if self.models == "tiny":
            return str(self.tiny_models_dir / "translation")
        return self.translation_model

    @property
    def summarization_source(self) -> str:
        """The summarization model to load, after ``KURZ_MODELS=tiny`` is applied."""
        if self.models == "tiny":
            return str(self.tiny_models_dir / "summarization")
        return self.summarization_model
