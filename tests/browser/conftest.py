"""A real browser (Debian's chromium, driven by Playwright) on the editor page of a real stack.

The tests skip, saying why, when Playwright or ``/usr/bin/chromium`` is missing: install them
with ``make install`` and ``apt-get install chromium`` (``.ci/run`` does the latter).  Playwright
never downloads a browser here (no ``playwright install``): it is pointed at the system one.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from service.settings import ROOT
from tests.processes import RedisServer, ServiceProcess, free_port, service_env, wait_until_ready

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Where the tests leave their screenshots (git-ignored; CI keeps them as artifacts).
SCREENSHOTS = ROOT / "var" / "screenshots"
AXE = Path(__file__).resolve().parent / "vendor" / "axe-core" / "axe.min.js"
#: The article limit of the test stack: above every seed, below what the 413 test sends.
MAX_TEXT_CHARS = 40_000
API_KEY = "editor-test-key-0123456789abcdef0123456789"


@dataclass
class Stack:
    """A private Redis, an API without keys, one worker, and an API with keys on."""

    base_url: str
    keyed_url: str
    logs: Path
    processes: list[ServiceProcess] = field(default_factory=list)

    def job(self, job_id: str) -> dict[str, Any]:
        view: dict[str, Any] = httpx.get(f"{self.base_url}/jobs/{job_id}", timeout=10).json()
        return view


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    """The system chromium, or a skip that says how to get it."""
    pytest.importorskip(
        "playwright.sync_api",
        reason="Playwright for Python is missing: `make install` (dev extra) installs it",
    )
    if not CHROMIUM.exists():
        pytest.skip(
            f"browser tests need Debian's chromium at {CHROMIUM}: `apt-get install chromium` "
            "(never `playwright install`)"
        )
    return CHROMIUM


@pytest.fixture(scope="module")
def stack(
    chromium_path: Path, tmp_path_factory: pytest.TempPathFactory, tiny_models_dir: Path
) -> Iterator[Stack]:
    """API + worker + Redis on the tiny models, and a second API over the same Redis that
    requires an API key."""
    logs = tmp_path_factory.mktemp("editor-stack")
    redis = RedisServer(logs / "redis")
    redis.start()
    port, keyed_port = free_port(), free_port()
    env = service_env(
        redis.url, tiny_models_dir, KURZ_PORT=str(port), KURZ_MAX_TEXT_CHARS=str(MAX_TEXT_CHARS)
    )
    keyed_env = {**env, "KURZ_PORT": str(keyed_port), "KURZ_API_KEYS": API_KEY}
    stack = Stack(f"http://127.0.0.1:{port}", f"http://127.0.0.1:{keyed_port}", logs)
    try:
        stack.processes.append(ServiceProcess("api", env, logs / "api.log"))
        stack.processes.append(ServiceProcess("worker", env, logs / "worker.log"))
        stack.processes.append(ServiceProcess("api", keyed_env, logs / "api-keyed.log"))
        wait_until_ready(stack.base_url)
        yield stack
    finally:
        for process in stack.processes:
            process.stop()
        redis.stop()


@dataclass
class Browser:
    """One page in a fresh chromium profile, and every URL it requested."""

    page: Any
    requests: list[str]

    def screenshot(self, name: str, *, full_page: bool = True) -> Path:
        """Save the page as ``var/screenshots/<name>.png`` (whole page, or the viewport)."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=full_page)
        return path

    def foreign_requests(self, base_url: str) -> list[str]:
        """Requests to anything but ``base_url``'s host (``blob:``/``data:`` stay in the page)."""
        host = urlsplit(base_url).netloc
        return [
            url
            for url in self.requests
            if urlsplit(url).scheme not in ("blob", "data") and urlsplit(url).netloc != host
        ]

    def axe_violations(self) -> list[dict[str, Any]]:
        """axe-core's serious and critical violations of the page as it is now."""
        self.page.evaluate(AXE.read_text(encoding="utf-8") + "\n;void 0")
        found: list[dict[str, Any]] = self.page.evaluate(
            "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
        )
        return [
            {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]]}
            for v in found
            if v["impact"] in ("serious", "critical")
        ]


@pytest.fixture
def browser(chromium_path: Path, tmp_path: Path) -> Iterator[Browser]:
    """Chromium with a fresh user-data dir, clipboard access granted, requests recorded."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=str(chromium_path),
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": 1280, "height": 900},
            permissions=["clipboard-read", "clipboard-write"],
        )
        try:
            page = context.pages[0] if context.pages else context.new_page()
            page.set_default_timeout(30_000)
            requests: list[str] = []
            page.on("request", lambda request: requests.append(request.url))
            yield Browser(page, requests)
        finally:
            context.close()


def describe(value: object) -> str:
    return json.dumps(value, indent=1, ensure_ascii=False)[:2000]
