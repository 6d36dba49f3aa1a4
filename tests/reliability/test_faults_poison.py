"""Poison input: an article that makes the pipeline raise is retried a bounded number of times,
then failed and announced, and never takes other articles down with it.

The poison is real, not a test hook: a lone surrogate (``"\\ud800"``) that the API's validation
would refuse as JSON, put on the queue directly (as a bug in another producer, or a hand-edited
job, would).  In the worker the sentence cache cannot encode it (``UnicodeEncodeError``), which
is not an ``InputError``, so the job is retried like any unexpected failure.  Without the cache,
the tokenizer rejects it inside the translation scheduler; the in-process tests below pin that
down: the failure reaches the one article at once (it used to leave every article in that batch
waiting until its job timed out, five minutes or more) and no other article.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import defaultdict
from collections.abc import Sequence

import httpx
import pytest
from redis.asyncio import Redis

from service.constants import Keys
from service.errors import InputError
from service.nlp.batching import InferenceScheduler
from service.nlp.loading import ModelRef
from service.queue import JobPayload, JobQueue
from tests.reliability.conftest import PREFIX, Figures, StackFactory, article, describe, sized

POISON = (
    "Die Regierung hat am Montag in Berlin neue Pläne für den Haushalt vorgestellt.\n\n"
    "Ein Satz \ud800 hier, der nicht kodiert werden kann.\n\n"
    "Die Opposition kritisierte das Vorhaben am Dienstag scharf und kündigte Widerstand an."
)
RETRIES = 2


async def enqueue_directly(redis_url: str, text: str) -> str:
    """Put a job on the queue the way the API would, minus the API's validation."""
    key = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    client = Redis.from_url(redis_url)
    try:
        queue = JobQueue(client, Keys(PREFIX), retries=RETRIES)
        _, created = await queue.submit(key, JobPayload(text=text, external_id="poison"))
        assert created
    finally:
        await client.aclose()
    return key


@pytest.mark.slow
@pytest.mark.redis
def test_poison_article_is_retried_then_failed_and_announced_while_others_succeed(
    stack_factory: StackFactory, seed_sentences: list[str], figures: Figures
) -> None:
    """An article that makes the pipeline raise is tried KURZ_JOB_RETRIES times, then fails with
    one summary.failed webhook; the other articles of the same run all succeed."""
    others = sized(20, 100)
    stack = stack_factory(KURZ_JOB_RETRIES=str(RETRIES))
    api = stack.start_api()
    worker = stack.start_worker("worker", KURZ_WEBHOOK_ENDPOINTS=stack.receiver.url)
    stack.wait_api(api)
    stack.wait_worker(worker)
    started = time.monotonic()
    ids: list[str] = []
    with httpx.Client(base_url=api, timeout=10) as http:
        for index in range(others):
            if index == others // 2:
                poison = asyncio.run(enqueue_directly(stack.redis.url, POISON))
            response = http.post(
                "/summarize", json={"text": article(seed_sentences, index, "poison-run")}
            )
            assert response.status_code == 202, response.text
            ids.append(response.json()["id"])
    records = stack.wait_finished([poison, *ids], timeout_s=sized(90, 240))
    failed_after = time.monotonic() - started
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        announced = {event["data"]["id"] for _, event in stack.events()}
        if announced >= {poison, *ids}:
            break
        time.sleep(0.2)
    views = stack.views([poison, *ids])
    poisoned = views[poison]
    record = records[poison] or {}
    events: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for msg_id, event in stack.events():
        events[event["data"]["id"]].append((msg_id, event["type"]))
    poison_events = events[poison]
    not_ok = {
        j[:12]: v["status"] for j, v in views.items() if j != poison and v["status"] != "succeeded"
    }
    numbers = dict(
        retries=RETRIES,
        attempts=poisoned.get("attempts"),
        status=poisoned["status"],
        error=(poisoned.get("error") or {}).get("detail", "")[:80],
        poison_webhooks=len(poison_events),
        poison_webhook_ids=len({m for m, _ in poison_events}),
        others=others,
        others_succeeded=others - len(not_ok),
        seconds=round(failed_after, 1),
    )
    figures("poison input", **numbers)
    facts = describe(**numbers)
    assert poisoned["status"] == "failed", f"{facts}\n{stack.logs()}"
    assert poisoned["attempts"] == RETRIES, facts
    assert record.get("attempts") == RETRIES, facts
    # A crash of the pipeline, not a refusal of the input (those are not retried).
    assert poisoned["error"]["code"] == "job_failed", facts
    assert "UnicodeEncodeError" in poisoned["error"]["detail"], facts
    assert poison_events, f"{facts}; no summary.failed webhook"
    assert {t for _, t in poison_events} == {"summary.failed"}, f"{facts}; {poison_events}"
    assert len({m for m, _ in poison_events}) == 1, f"{facts}; {poison_events}"
    assert not not_ok, f"{facts}; {not_ok}\n{stack.logs()}"
    missing = [j[:12] for j in ids if {t for _, t in events[j]} != {"summary.succeeded"}]
    assert not missing, f"{facts}; other jobs without their one summary.succeeded: {missing}"


# --- the translation scheduler, in process ----------------------------------------------------


class FussyEngine:
    """A translation engine that cannot tokenize lone surrogates, and fails batches on demand."""

    ref = ModelRef("fussy", "test", "none", "none")
    max_source_tokens = 64

    def __init__(self) -> None:
        self.fail_batches = False

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        for text in texts:
            text.encode()  # raises UnicodeEncodeError on a lone surrogate, as tokenizers do
        return [len(text.split()) + 1 for text in texts]

    def translate_batch(self, texts: Sequence[str]) -> list[str]:
        if self.fail_batches:
            raise RuntimeError("device lost")
        return [f"EN {text}" for text in texts]


async def test_an_untokenizable_sentence_fails_its_own_article_at_once() -> None:
    """A sentence the tokenizer rejects fails its article within a second, and only that one:
    articles batched with it are translated."""
    scheduler = InferenceScheduler(FussyEngine())
    try:
        good = [f"Satz Nummer {i} ist ganz gewöhnlich." for i in range(5)]
        outcomes = await asyncio.wait_for(
            asyncio.gather(
                scheduler.translate(good[:3]),
                scheduler.translate(["Ein Satz \ud800 hier."]),
                scheduler.translate(good[3:]),
                return_exceptions=True,
            ),
            timeout=5,
        )
    finally:
        scheduler.close()
    first, poisoned, last = outcomes
    assert isinstance(poisoned, UnicodeEncodeError)
    assert not isinstance(poisoned, InputError)
    assert first == [f"EN {s}" for s in good[:3]]
    assert last == [f"EN {s}" for s in good[3:]]


async def test_a_failed_batch_fails_every_article_in_it_instead_of_hanging() -> None:
    """When the model itself fails a batch, every article waiting on that batch gets the error
    (and its job is retried) instead of waiting until the job timeout."""
    engine = FussyEngine()
    engine.fail_batches = True
    scheduler = InferenceScheduler(engine)
    try:
        outcomes = await asyncio.wait_for(
            asyncio.gather(
                *(scheduler.translate([f"Artikel {i} hat einen Satz."]) for i in range(4)),
                return_exceptions=True,
            ),
            timeout=5,
        )
        engine.fail_batches = False
        again = await asyncio.wait_for(scheduler.translate(["Danach geht es weiter."]), 5)
    finally:
        scheduler.close()
    assert all(isinstance(o, RuntimeError) for o in outcomes), outcomes
    assert again == ["EN Danach geht es weiter."]
