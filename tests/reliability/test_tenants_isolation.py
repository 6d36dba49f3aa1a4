"""Two desks on one deployment, with real processes: nothing of one reaches the other.

The API and a worker run with a keys file of two desks (``sport``, with webhook secrets of its
own, and ``politik``, on the server's), over a private Redis; both send the same article with
callbacks to one receiver, and ``sport`` sends one more article alone.  Every job endpoint is
tried with the other desk's key, and every webhook is checked: whose data it carries, which
secret signed it.  A third desk, ``kultur``, keeps its caches to itself: the same article is a
job of its own, translated afresh, while ``sport`` gets it from the shared cache.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

import httpx
import pytest

from service.webhooks import generate_secret
from tests.reliability.conftest import Stack, StackFactory, article, verified

pytestmark = [pytest.mark.slow, pytest.mark.redis]

SPORT = "sport-" + "s" * 40
POLITIK = "politik-" + "p" * 40
KULTUR = "kultur-" + "k" * 40


def keys_file(stack: Stack, sport_secret: str) -> str:
    path = stack.root / "keys.toml"
    path.write_text(
        f"""
[[keys]]
tenant = "sport"
sha256 = "{hashlib.sha256(SPORT.encode()).hexdigest()}"

[[keys]]
tenant = "politik"
key = "{POLITIK}"

[[keys]]
tenant = "kultur"
key = "{KULTUR}"

[tenants.sport]
webhook_secrets = ["{sport_secret}"]

[tenants.kultur]
shares_cache = false
""",
        encoding="utf-8",
    )
    return str(path)


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_two_desks_share_an_article_and_see_only_their_own(
    stack_factory: StackFactory, seed_sentences: list[str]
) -> None:
    sport_secret = generate_secret()
    stack = stack_factory()
    stack.env["KURZ_API_KEYS_FILE"] = keys_file(stack, sport_secret)
    api = stack.start_api()
    stack.wait_api(api)
    worker = stack.start_worker("worker")
    stack.wait_worker(worker)
    shared = article(seed_sentences, 1, "desks")
    alone = article(seed_sentences, 2, "desks")
    with httpx.Client(base_url=api, timeout=30) as http:

        def submit(key: str, text: str, desk: str) -> str:
            body = {
                "text": text,
                "external_id": f"{desk}-1",
                "metadata": {"desk": desk},
                "callback_url": stack.receiver.receiver.url_for(f"/{desk}"),
            }
            answer = http.post("/summarize", json=body, headers=auth(key))
            assert answer.status_code == 202, answer.text
            return str(answer.json()["id"])

        job = submit(SPORT, shared, "sport")
        assert submit(POLITIK, shared, "politik") == job  # one job for both
        own = submit(SPORT, alone, "sport")
        records = stack.wait_finished([job, own], timeout_s=300)
        assert all(r and r["status"] == "complete" for r in records.values()), stack.logs()
        deadline = time.monotonic() + 120
        while len(stack.receiver.requests) < 3 and time.monotonic() < deadline:
            time.sleep(0.2)

        # The other desk cannot tell sport's own job from one that does not exist.
        for method, path in [
            ("GET", f"/jobs/{own}"),
            ("GET", f"/jobs/{own}/events"),
            ("GET", f"/jobs/{own}/deliveries"),
            ("POST", f"/jobs/{own}/deliveries/redeliver"),
            ("DELETE", f"/jobs/{own}"),
        ]:
            answer = http.request(method, path, headers=auth(POLITIK))
            assert answer.status_code == 404, (method, path, answer.text)
            assert answer.json()["code"] == "job_not_found"

        # Each desk's view of the shared job is its own.
        views = {
            desk: http.get(f"/jobs/{job}", headers=auth(key)).json()
            for desk, key in (("sport", SPORT), ("politik", POLITIK))
        }
        for desk, view in views.items():
            assert (view["external_id"], view["metadata"]) == (f"{desk}-1", {"desk": desk})

        # Each desk's webhooks: its own data and name, signed with its own secret.
        received: dict[str, list[dict[str, Any]]] = {"/sport": [], "/politik": []}
        ids: dict[str, set[str]] = {"/sport": set(), "/politik": set()}
        for request in stack.receiver.requests:
            secret = sport_secret if request.path == "/sport" else stack.secret
            event = verified(secret, request.headers, request.body)
            received[request.path].append(event["data"])
            ids[request.path].add(request.headers["webhook-id"])
        for desk in ("sport", "politik"):
            for data in received[f"/{desk}"]:
                assert data["submitted_by"] == desk
                assert (data["external_id"], data["metadata"]) == (f"{desk}-1", {"desk": desk})
        assert {d["id"] for d in received["/sport"]} == {job, own}
        assert {d["id"] for d in received["/politik"]} == {job}
        with pytest.raises(AssertionError):  # the server's secret did not sign sport's events
            first = next(r for r in stack.receiver.requests if r.path == "/sport")
            verified(stack.secret, first.headers, first.body)

        # Each desk lists (and may redeliver) only its own deliveries of the shared job.
        for desk, key in (("sport", SPORT), ("politik", POLITIK)):
            listed = http.get(f"/jobs/{job}/deliveries", headers=auth(key)).json()
            assert listed and {a["msg_id"] for a in listed} <= ids[f"/{desk}"]
            again = http.post(f"/jobs/{job}/deliveries/redeliver", headers=auth(key))
            assert again.status_code == 202 and again.json()["scheduled"] == 1

        # Sport's repeat is a cache hit; kultur, which does not share, gets a job of its own,
        # translated afresh (none of its sentences came from the others' cache).
        hit = http.post("/summarize", json={"text": shared}, headers=auth(SPORT))
        assert hit.status_code == 200 and hit.json()["result"]["cached"] is True
        private = http.post("/summarize", json={"text": shared}, headers=auth(KULTUR))
        assert private.status_code == 202, private.text
        private_job = private.json()["id"]
        assert private_job != job
        stack.wait_finished([private_job], timeout_s=300)
        result = http.get(f"/jobs/{private_job}", headers=auth(KULTUR)).json()["result"]
        assert result["cached"] is False
        assert result["sentences_from_cache"] == 0 < result["sentences_translated"]
