"""What clients send stays out of the logs, even at debug level.

The queue library logs whole jobs: when one is enqueued, taken and finished (at debug level with
every argument), and when its function raises.  Article text, callback URLs with their tokens,
metadata and webhook bodies (which carry the article's sentences) would all land in the log.
A real API and worker run at debug level here, with an article that succeeds but whose webhook
fails, and one whose page cannot be fetched (its job raises); their logs are then searched.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from service.webhooks import generate_secret
from tests.processes import free_port, service_stack

pytestmark = [pytest.mark.slow, pytest.mark.redis]

TOKEN = "tok-9f2c41d7e0b3"
MARKER = "Zebrastreifenkontrolle"
METADATA = "desk-geheim-4711"


def test_client_data_never_reaches_the_logs(tmp_path: Path, tiny_models_dir: Path) -> None:
    closed = free_port()  # nothing listens here: the webhook and the page fetch both fail
    text = (
        f"Die {MARKER} in Hamburg wurde am Montag eingeführt. Die Stadt will damit den "
        "Verkehr sicherer machen. Viele Bürger begrüßen die neue Regel."
    )
    with (
        service_stack(
            tmp_path,
            tiny_models_dir,
            KURZ_LOG_LEVEL="debug",
            KURZ_WEBHOOK_ALLOW_HOSTS="127.0.0.1",
            KURZ_FETCH_ALLOW_HOSTS="127.0.0.1",
            KURZ_WEBHOOK_RETRY_SCHEDULE="0,60",
            KURZ_WEBHOOK_SECRET=generate_secret(),
        ) as stack,
        httpx.Client(base_url=stack.base_url, timeout=30) as http,
    ):
        callback = f"http://127.0.0.1:{closed}/hook?token={TOKEN}"
        article = http.post(
            "/summarize?wait=60",
            json={"text": text, "callback_url": callback, "metadata": {"desk": METADATA}},
        )
        assert article.status_code == 200, article.text
        page = http.post(
            "/summarize",
            json={"url": f"http://127.0.0.1:{closed}/artikel.html?token={TOKEN}"},
        )
        assert page.status_code == 202, page.text
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            attempts = http.get(f"/jobs/{article.json()['id']}/deliveries").json()
            raised = "Error processing job" in (tmp_path / "worker.log").read_text(errors="replace")
            if attempts and raised:
                break
            time.sleep(0.5)
        else:
            pytest.fail(f"no failed delivery ({attempts}) or no job that raised ({raised})")
        time.sleep(1)  # the worker logs the attempt after recording it
    logs = {path.name: path.read_text(errors="replace") for path in tmp_path.glob("*.log")}
    worker = logs["worker.log"]
    assert "Processing Job<" in worker and "Error processing job" in worker, worker[-3000:]
    for name, content in logs.items():
        for secret in (TOKEN, MARKER, METADATA):
            assert secret not in content, f"{secret!r} is in {name}"
