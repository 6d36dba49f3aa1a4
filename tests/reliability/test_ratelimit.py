"""Per-key rate limits hold across API replicas: two API processes share one Redis counter."""

from __future__ import annotations

import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
import pytest

from service.api.ratelimit import WINDOW_S
from tests.reliability.conftest import Figures, StackFactory, describe, sized

pytestmark = [pytest.mark.slow, pytest.mark.redis]

KEY = "k1" * 20
LIMIT = 50
TOLERANCE = 1.05
#: A burst must fit in one window; closer than this to a window's end, wait for the next one.
BURST_ROOM_S = 5


@dataclass
class Answer:
    api: int
    status: int
    code: str | None
    retry_after: str | None
    sent_at: float


def test_one_key_gets_its_limit_across_two_api_processes(
    stack_factory: StackFactory, figures: Figures
) -> None:
    """A key limited to 50 requests a minute gets at most 50 (+5 %) through two API processes
    together; the rest are refused with 429 rate_limited and a Retry-After to the window's end."""
    requests = sized(200, 1000)
    stack = stack_factory(KURZ_API_KEYS=KEY, KURZ_RATE_LIMIT_PER_MINUTE=str(LIMIT))
    apis = [stack.start_api("api-1"), stack.start_api("api-2")]
    for api in apis:
        stack.wait_api(api)
    # /styles is behind the same guard as every article endpoint: no key, no answer.
    anonymous = [httpx.get(f"{api}/styles", timeout=5).status_code for api in apis]
    assert anonymous == [401, 401], anonymous

    into_window = time.time() % WINDOW_S
    if into_window > WINDOW_S - BURST_ROOM_S:
        time.sleep(WINDOW_S - into_window + 0.05)
    local = threading.local()
    clients: list[httpx.Client] = []
    lock = threading.Lock()

    def send(index: int) -> Answer:
        http = getattr(local, "http", None)
        if http is None:
            http = local.http = httpx.Client(timeout=10, headers={"Authorization": f"Bearer {KEY}"})
            with lock:
                clients.append(http)
        which = index % len(apis)
        sent_at = time.time()
        response = http.get(f"{apis[which]}/styles")
        code = response.json().get("code") if response.status_code != 200 else None
        return Answer(
            which, response.status_code, code, response.headers.get("retry-after"), sent_at
        )

    started = time.time()
    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            answers = list(pool.map(send, range(requests)))
    finally:
        for http in clients:
            http.close()
    finished = time.time()
    windows = int(finished // WINDOW_S) - int(started // WINDOW_S) + 1
    admitted = [a for a in answers if a.status == 200]
    refused = [a for a in answers if a.status == 429]
    other = [a for a in answers if a.status not in (200, 429)]
    wrong_code = [a for a in refused if a.code != "rate_limited"]
    # Retry-After counts the seconds to the end of the window the request was counted in.
    bad_retry_after = [
        a
        for a in refused
        if a.retry_after is None
        or not 1 <= int(a.retry_after) <= WINDOW_S
        or abs(int(a.retry_after) - math.ceil(WINDOW_S - a.sent_at % WINDOW_S)) > 2
    ]
    per_api = [sum(1 for a in admitted if a.api == i) for i in range(len(apis))]
    numbers = dict(
        requests=requests,
        api_processes=len(apis),
        limit_per_minute=LIMIT,
        windows=windows,
        admitted=len(admitted),
        admitted_per_api=per_api,
        refused_429=len(refused),
        other=len(other),
        seconds=round(finished - started, 2),
    )
    figures("rate limit", **numbers)
    facts = describe(**numbers)
    assert not other, f"{facts}; {other[:5]}"
    assert len(admitted) <= LIMIT * TOLERANCE * windows, facts
    assert len(admitted) >= LIMIT, f"{facts}; fewer requests admitted than the limit"
    assert all(n > 0 for n in per_api), f"{facts}; one API process admitted nothing"
    assert not wrong_code, f"{facts}; {wrong_code[:3]}"
    assert not bad_retry_after, f"{facts}; {bad_retry_after[:3]}"
