"""Input limits: what a hostile or careless client sends cannot exhaust the API or crash a worker.

* The API, run as a real process (``python -m service api`` under uvicorn, against a private
  ``redis-server``), refuses an 11 MiB body with 413 for under 1 s of its CPU, whether the size is
  announced (``Content-Length``) or streamed (chunked), and its resident memory grows < 50 MB.
* A compressed body is refused with 415 ``unsupported_content_encoding`` without being inflated:
  a ~1 MB gzip body that would inflate to ~1 GB, and a 2-layer one of a few KB that would inflate
  to 4 GiB, are answered in well under a second and the API's memory stays flat.
* A single letter under 100,000 combining accents (a 200 KB body) is answered for under 1 s of
  CPU: the language check once spent ~7 s of CPU on it, with the GIL held (CPython's NFC
  reordering is quadratic in one combining sequence).

"Fast" is the CPU time the API process spends on a request (``/proc``), not the time the client
waits: on a machine whose cores are shared the wait grows with everything else running, the CPU
a request costs does not.  The wall-clock times are reported as figures.
* Random articles (1,000 with ``KURZ_SOAK=1``, 100 by default): odd Unicode, no spaces, long
  single "words", lengths up to the character limit, run in-process through the pipeline on the
  tiny models, under each backend (ctranslate2, the default, and transformers).  Each either
  succeeds with every sentence translated or raises an ``InputError``; the translation model
  never reads more than its ``max_source_tokens``, nor the summarizer more than its
  ``max_input_tokens``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import math
import os
import random
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from service.errors import EmptyTextError, InputError, NotGermanError
from service.nlp.engine import SummaryEngine
from service.pipeline import ArticleRequest, Pipeline, build_pipeline
from service.presets import Generation
from service.settings import Settings
from tests.processes import RedisServer, ServiceProcess, free_port, service_env
from tests.reliability.conftest import cpu_seconds
from tests.test_pipeline import RecordingEngine

SOAK = os.environ.get("KURZ_SOAK", "") not in ("", "0")
MIB = 1024 * 1024
OVERSIZED_BYTES = 11 * MIB
BODY_LIMIT_BYTES = 1_000_000  # Settings.max_body_bytes, the default the process runs with
#: CPU seconds the API may spend refusing one hostile body (the bugs it guards against cost 7 s).
REFUSAL_CPU_S = 1.0
MAX_RSS_GROWTH_MB = 50.0
GERMAN = (
    "Die Bundesregierung hat am Montag in Berlin ein neues Gesetz zum Klimaschutz beschlossen. "
    "Kritiker sagten, die Maßnahmen gingen nicht weit genug."
)

_JSON = {"content-type": "application/json"}
_GZIP = {"content-encoding": "gzip"}

#: The ``figures`` fixture (tests/reliability/conftest.py) prints and records a test's figures.
Figures = Callable[..., None]


# --- the API as a real process --------------------------------------------------------------------


@dataclass
class Api:
    url: str
    process: ServiceProcess

    def rss_mb(self) -> float:
        """The API process's resident memory (VmRSS), in MB."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS line")


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """``python -m service api`` on a loopback port, over its own redis-server."""
    directory = tmp_path_factory.mktemp("inputs-api")
    redis = RedisServer(directory / "redis")
    process: ServiceProcess | None = None
    try:
        redis.start()
        port = free_port()
        env = service_env(
            redis.url,
            directory / "no-models",  # the API never loads a model
            KURZ_PORT=str(port),
            KURZ_HOST="127.0.0.1",
            KURZ_KEY_PREFIX=f"inputs-{uuid.uuid4().hex[:8]}",
        )
        process = ServiceProcess("api", env, directory / "api.log")
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/health/live", timeout=1).status_code == 200:
                    break
            if process.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the API did not start:\n{process.output()[-3000:]}")
            time.sleep(0.1)
        api = Api(url, process)
        with httpx.Client(base_url=url, timeout=10) as client:  # warm every code path once
            for _ in range(3):
                client.post("/summarize", json={"text": GERMAN})
                client.post("/summarize", content=b"x" * 2 * BODY_LIMIT_BYTES, headers=_JSON)
                client.post("/summarize", content=b"{}", headers={**_JSON, **_GZIP})
        yield api
    finally:
        if process is not None:
            process.stop()
        redis.stop()


def oversized_chunks(total: int, chunk: int = 64 * 1024) -> Iterator[bytes]:
    """A JSON body of ``total`` bytes, in chunks (so httpx streams it, chunked)."""
    head, tail = b'{"text": "', b'"}'
    yield head
    left = total - len(head) - len(tail)
    block = b"a" * chunk
    while left > 0:
        yield block[: min(chunk, left)]
        left -= chunk
    yield tail


@dataclass
class Cost:
    """What one request cost: the client's wait and the API process's CPU time, in seconds."""

    wall_s: float
    cpu_s: float

    def __str__(self) -> str:
        return f"{self.wall_s:.3f}s/{self.cpu_s:.3f}cpu"


def timed_post(
    api: Api, client: httpx.Client, content: Any, headers: dict[str, str]
) -> tuple[Cost, Any]:
    cpu_before = cpu_seconds(api.process.pid)
    started = time.perf_counter()
    response = client.post("/summarize", content=content, headers=headers)
    wall_s = time.perf_counter() - started
    return Cost(wall_s, cpu_seconds(api.process.pid) - cpu_before), response


@pytest.mark.slow
def test_oversized_body_is_refused_fast_and_costs_no_memory(api: Api, figures: Figures) -> None:
    """An 11 MiB body is 413 for under 1 s of CPU, streamed or announced, and the API grows
    < 50 MB."""
    before = api.rss_mb()
    timings: dict[str, list[Cost]] = {"streamed": [], "announced": []}
    announced = b'{"text": "' + b"a" * (OVERSIZED_BYTES - 12) + b'"}'
    with httpx.Client(base_url=api.url, timeout=30) as client:
        for _ in range(3):
            cost, response = timed_post(api, client, oversized_chunks(OVERSIZED_BYTES), _JSON)
            assert response.status_code == 413, response.text
            assert response.json()["code"] == "body_too_large"
            timings["streamed"].append(cost)
            cost, response = timed_post(api, client, announced, _JSON)
            assert response.status_code == 413, response.text
            assert response.json()["code"] == "body_too_large"
            timings["announced"].append(cost)
        assert client.get("/health/live").status_code == 200
    growth = api.rss_mb() - before
    worst_cpu_s = max(cost.cpu_s for values in timings.values() for cost in values)
    figures(
        "oversized-body",
        body_mib=OVERSIZED_BYTES / MIB,
        streamed=[str(cost) for cost in timings["streamed"]],
        announced=[str(cost) for cost in timings["announced"]],
        rss_before_mb=round(before, 1),
        rss_growth_mb=round(growth, 1),
    )
    assert worst_cpu_s < REFUSAL_CPU_S
    assert growth < MAX_RSS_GROWTH_MB


def gzip_bomb(limit: int) -> tuple[bytes, int]:
    """Concatenated gzip members just under ``limit`` bytes; (body, size once inflated).

    Gzip allows members back to back; a decoder inflates them all, one after another.
    """
    head, tail = gzip.compress(b'{"text": "', 9), gzip.compress(b'"}', 9)
    member = gzip.compress(b"a" * 8 * MIB, 9)
    count = (limit - len(head) - len(tail) - 1024) // len(member)
    return head + member * count + tail, 10 + count * 8 * MIB + 2


def nested_gzip_bomb() -> tuple[bytes, int]:
    """``gzip, gzip``: a few KB that inflate to 4 GiB in two rounds."""
    inner = gzip.compress(b"a" * 8 * MIB, 9) * 512
    return gzip.compress(inner, 9), 512 * 8 * MIB


@pytest.mark.slow
def test_compressed_bodies_are_refused_without_inflating(api: Api, figures: Figures) -> None:
    """A gzip bomb is 415 unsupported_content_encoding at once, and memory stays flat."""
    bomb, inflated = gzip_bomb(BODY_LIMIT_BYTES)
    nested, nested_inflated = nested_gzip_bomb()
    assert len(bomb) < BODY_LIMIT_BYTES, "the bomb must not be stopped by the byte limit"
    cases: list[tuple[str, bytes, str]] = [
        ("gzip", bomb, "gzip"),
        ("gzip-streamed", bomb, "gzip"),
        ("gzip,gzip", nested, "gzip, gzip"),
        ("x-gzip", nested, "x-gzip"),
        ("deflate", nested, "deflate"),
        ("br", nested, "br"),
        ("zstd", nested, "zstd"),
        ("identity,gzip", nested, "identity, gzip"),
        ("GZIP", nested, "GZIP"),
    ]
    before = api.rss_mb()
    costs: dict[str, Cost] = {}
    with httpx.Client(base_url=api.url, timeout=30) as client:
        for name, body, coding in cases:
            headers = {**_JSON, "content-encoding": coding}
            content: Any = iter([body[i : i + 65536] for i in range(0, len(body), 65536)])
            cost, response = timed_post(
                api, client, content if name.endswith("streamed") else body, headers
            )
            assert response.status_code == 415, (name, response.text)
            problem = response.json()
            assert problem["code"] == "unsupported_content_encoding", problem
            assert response.headers["content-type"].startswith("application/problem+json")
            assert response.headers.get("accept-encoding") == "identity"
            costs[name] = cost
        # The absence of a coding, or "identity", is an ordinary uncompressed body.
        plain = {"text": GERMAN, "allow_non_german": True}
        for coding in ("identity", "Identity", ""):
            response = client.post("/summarize", json=plain, headers={"content-encoding": coding})
            assert response.status_code in (200, 202), (coding, response.text)
    growth = api.rss_mb() - before
    figures(
        "compressed-body",
        gzip_body_kb=len(bomb) // 1024,
        gzip_inflates_to_mib=inflated // MIB,
        nested_body_kb=round(len(nested) / 1024, 1),
        nested_inflates_to_mib=nested_inflated // MIB,
        costs={name: str(cost) for name, cost in costs.items()},
        rss_growth_mb=round(growth, 1),
    )
    assert max(cost.cpu_s for cost in costs.values()) < REFUSAL_CPU_S
    assert growth < MAX_RSS_GROWTH_MB


@pytest.mark.slow
def test_one_letter_under_100k_accents_is_answered_fast(api: Api, figures: Figures) -> None:
    """A 100,000-character combining sequence (200 KB) is judged and refused for under 1 s of
    CPU."""
    text = "a" + "\u0301\u0308\u0323" * 33_333
    body = msgspec.json.encode({"text": text})
    with httpx.Client(base_url=api.url, timeout=30) as client:
        cost, response = timed_post(api, client, body, _JSON)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "not_german"
    figures("combining-sequence", chars=len(text), body_kb=len(body) // 1024, cost=str(cost))
    assert cost.cpu_s < REFUSAL_CPU_S


# --- random articles through the pipeline ---------------------------------------------------------

ARTICLES = 1_000 if SOAK else 100
#: Most articles are at most this long ...
USUAL_CHARS = 5_000 if SOAK else 1_500
#: ... and one in ten up to this: the API's own limit (100,000) under soak, modest by default.
MAX_CHARS = 100_000 if SOAK else 1_500
#: The one monstrous whitespace-free "word" every run includes.
LONG_WORD_CHARS = 100_000 if SOAK else 4_000
#: Articles run this many at once, as a worker runs several jobs (their sentences share batches).
CONCURRENCY = 8
SEED = int(os.environ.get("KURZ_FUZZ_SEED", "20251121"))

_ODD = (
    # combining marks, ZWJ / ZWNJ / ZW space, BOM, soft hyphen, bidi controls
    "\u0301\u0308\u0323\u20dd\u200d\u200c\u200b\ufeff\u00ad\u202e\u202c\u200f\u200e\u2066\u2069"
    # emoji with modifiers and ZWJ pieces
    "👨👩👧🏳️🌈👍🏽🤷\u2642\ufe0f"
    # RTL, CJK, Devanagari, Thai, Cyrillic, Greek
    "שלוםمرحبا太阳月solнцеήλιοςसूर्यดวงอาทิตย์"
    # punctuation German text uses, and some it does not
    "„“‚‘»«›‹–—…·•§¶†‰′″"
    # controls and odd spaces
    "\x00\x07\x1b\x7f\u0085\u2028\u2029\u00a0\u2009\u3000\t\v\f\r"
)
_PUNCT = ".,;:!?…-–()[]{}\"'„“»«/\\@#%&*+=<>|~^_"
_LETTERS = "abcdefghijklmnopqrstuvwxyzäöüßABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÜ"


def random_length(rng: random.Random) -> int:
    """Log-uniform in 1..USUAL_CHARS, or one time in ten in 1..MAX_CHARS."""
    limit = MAX_CHARS if rng.random() < 0.1 else USUAL_CHARS
    return max(1, min(limit, int(math.exp(rng.uniform(0, math.log(limit))))))


def german_text(rng: random.Random, sentences: Sequence[str], length: int) -> str:
    parts: list[str] = []
    size = 0
    while size < length:
        sentence = rng.choice(sentences)
        parts.append(sentence)
        parts.append(rng.choice([" ", " ", " ", "\n", "\n\n", "  ", "\r\n"]))
        size += len(sentence) + 1
    return "".join(parts)[:length]


def odd_text(rng: random.Random, length: int, alphabet: str, space_share: float) -> str:
    return "".join(
        " " if rng.random() < space_share else rng.choice(alphabet) for _ in range(length)
    )


def random_article(rng: random.Random, sentences: Sequence[str]) -> tuple[str, str]:
    """(kind, text) of one random article."""
    length = random_length(rng)
    kind = rng.choice(
        [
            "german",
            "german",
            "german+odd",
            "odd-unicode",
            "no-spaces",
            "punctuation",
            "long-word",
            "short-lines",
            "whitespace",
        ]
    )
    if kind == "german":
        text = german_text(rng, sentences, length)
    elif kind == "german+odd":
        german = german_text(rng, sentences, length)
        cuts = sorted(rng.sample(range(len(german) + 1), min(len(german) + 1, 20)))
        pieces = [german[a:b] for a, b in zip([0, *cuts], [*cuts, len(german)], strict=True)]
        text = "".join(p + odd_text(rng, rng.randint(1, 30), _ODD, 0.1) for p in pieces)
        text = text[:length]
    elif kind == "odd-unicode":
        text = odd_text(rng, length, _ODD + _LETTERS + _PUNCT, rng.choice([0.0, 0.05, 0.2]))
    elif kind == "no-spaces":
        text = odd_text(rng, length, _LETTERS + _PUNCT + "0123456789", 0.0)
    elif kind == "punctuation":
        text = odd_text(rng, length, _PUNCT + "…" * 5 + "." * 10, rng.choice([0.0, 0.3]))
    elif kind == "long-word":
        text = "".join(rng.choice(_LETTERS) for _ in range(length))
    elif kind == "short-lines":
        text = "\n".join(rng.choice(["a.", "Ja!", "„", "1.", "–", "Wort"]) for _ in range(length))
        text = text[:length]
    else:
        text = odd_text(rng, length, " \t\n\r\u200b\ufeff\u00ad\u2028\u3000", 0.0)
    return kind, text


@dataclass
class RecordingSummarizer:
    """Wraps the summarization engine and remembers the longest input it was given."""

    inner: SummaryEngine
    longest_input: int = 0
    ref: Any = field(init=False)
    max_input_tokens: int = field(init=False)
    follows_instructions: bool = field(init=False)

    def __post_init__(self) -> None:
        self.ref = self.inner.ref
        self.max_input_tokens = self.inner.max_input_tokens
        self.follows_instructions = self.inner.follows_instructions

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return self.inner.count_tokens(texts)

    def summarize_batch(self, texts: Sequence[str], generation: Generation) -> list[str]:
        self.longest_input = max([self.longest_input, *self.inner.count_tokens(texts)])
        return self.inner.summarize_batch(texts, generation)


@pytest.fixture(scope="module", params=["transformers", "ctranslate2"])
def recording_pipeline(
    request: pytest.FixtureRequest,
    tiny_settings: Settings,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Pipeline]:
    """The pipeline on the tiny models under each backend, its two engines recording inputs."""
    settings = tiny_settings.model_copy(
        update={
            "backend": request.param,
            "compute_type": "auto",  # ctranslate2: int8 on the CPU, as deployed
            "converted_models_dir": tmp_path_factory.mktemp("ct2"),
        }
    )
    built = build_pipeline(settings)
    built.scheduler.engine = RecordingEngine(built.scheduler.engine)
    built.summarizer = RecordingSummarizer(built.summarizer)
    try:
        yield built
    finally:
        built.close()


@dataclass
class Outcome:
    kind: str
    chars: int
    result: str
    seconds: float


@pytest.mark.slow
async def test_random_articles_never_crash_and_never_overfeed_the_model(
    recording_pipeline: Pipeline, seed_texts: dict[str, str], figures: Figures
) -> None:
    """Random hostile articles end in a full result or an InputError, never an over-long input."""
    rng = random.Random(SEED)
    sentences = [line.strip() for text in seed_texts.values() for line in text.splitlines()]
    sentences = [s for s in sentences if len(s) > 20]
    styles = sorted(recording_pipeline.presets.names)
    articles = [random_article(rng, sentences) for _ in range(ARTICLES - 1)]
    articles.append(("long-word", "".join(rng.choice(_LETTERS) for _ in range(LONG_WORD_CHARS))))
    requests = [
        ArticleRequest(
            text=text,
            title=rng.choice([None, None, "Eine Überschrift", text[:80], "\u202e\u0301" * 40]),
            style=rng.choice(styles),
            allow_non_german=rng.random() < 0.85,
        )
        for _, text in articles
    ]
    engine = recording_pipeline.scheduler.engine
    summarizer = recording_pipeline.summarizer
    assert isinstance(engine, RecordingEngine) and isinstance(summarizer, RecordingSummarizer)
    outcomes: list[Outcome] = []
    crashes: list[str] = []

    async def run_one(index: int) -> None:
        kind, text = articles[index]
        request = requests[index]
        started = time.perf_counter()
        try:
            result = await recording_pipeline.run(request)
        except (EmptyTextError, NotGermanError) as error:
            outcome = type(error).__name__
        except InputError as error:  # any other input error is acceptable too, but named
            outcome = f"other input error: {type(error).__name__}"
        except Exception:  # noqa: BLE001 - a crash is what this test looks for
            crashes.append(
                f"#{index} seed={SEED} kind={kind} chars={len(text)} text={text[:120]!r}\n"
                + traceback.format_exc(limit=6)
            )
            outcome = "CRASH"
        else:
            if result.sentences_translated != result.sentences_in:
                crashes.append(
                    f"#{index} {kind}: {result.sentences_in} in, {result.sentences_translated} out"
                )
            if len(result.alignment) != result.sentences_in or result.sentences_in == 0:
                crashes.append(f"#{index} {kind}: alignment of {len(result.alignment)}")
            outcome = "ok"
        outcomes.append(Outcome(kind, len(text), outcome, time.perf_counter() - started))

    started = time.perf_counter()
    for first in range(0, len(articles), CONCURRENCY):
        batch = range(first, min(first + CONCURRENCY, len(articles)))
        await asyncio.gather(*(run_one(index) for index in batch))
    elapsed = time.perf_counter() - started

    by_result: dict[str, int] = {}
    by_kind: dict[str, int] = {}
    for outcome in outcomes:
        by_result[outcome.result] = by_result.get(outcome.result, 0) + 1
        by_kind[outcome.kind] = by_kind.get(outcome.kind, 0) + 1
    figures(
        f"random-articles:{engine.ref.backend}",
        articles=len(outcomes),
        seed=SEED,
        max_chars=max(o.chars for o in outcomes),
        total_chars=sum(o.chars for o in outcomes),
        results=by_result,
        kinds=by_kind,
        longest_translation_input=engine.longest_input,
        max_source_tokens=engine.max_source_tokens,
        longest_summary_input=summarizer.longest_input,
        max_input_tokens=summarizer.max_input_tokens,
        slowest_s=round(max(o.seconds for o in outcomes), 2),
        total_s=round(elapsed, 1),
    )
    assert not crashes, "\n".join(crashes[:5])
    assert len(outcomes) == ARTICLES
    assert 0 < engine.longest_input <= engine.max_source_tokens
    assert 0 < summarizer.longest_input <= summarizer.max_input_tokens
    assert by_result.get("ok", 0) > ARTICLES // 2
