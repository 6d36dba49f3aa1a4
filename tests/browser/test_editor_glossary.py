"""The editor page's glossary picker and report, in a real browser against a real API, worker
and Redis on the tiny models (with the repository's default glossary)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx
import pytest

from service.settings import ROOT
from service.text.glossary_files import load_default_glossary
from tests.browser.conftest import API_KEY, Browser, Stack, describe
from tests.browser.test_editor import SEED_000, job_id_of, open_editor, submit
from tests.processes import wait_until_ready

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.redis]

KINDS = ("applied", "fallback", "missed")
#: Entries of seed 000 (Moskau three times, Lawrow once) that the default glossary lacks or has.
DESK_ENTRIES = "Moskau\tMoscow\nLawrow\tLavrov"
#: Reads the glossary report's entries of one kind back as [source, target, count] triples.
READ_TERMS = """items => items.map(li => [
  li.querySelector('.source').textContent,
  li.querySelector('.target').textContent,
  Number(li.querySelector('.count').textContent.replace(/[^0-9]/g, '')),
])"""


def create_glossary(base_url: str, name: str, entries: str, key: str | None = None) -> str:
    """A glossary made through the DeepL-shaped API (as its owner's key, or on an open API)."""
    headers = {"Authorization": f"DeepL-Auth-Key {key}"} if key else {}
    response = httpx.post(
        f"{base_url}/v2/glossaries",
        json={"name": name, "source_lang": "de", "target_lang": "en", "entries": entries},
        headers=headers,
        timeout=10,
    )
    assert response.status_code == 201, response.text
    glossary_id: str = response.json()["glossary_id"]
    return glossary_id


def expected_terms(result: dict[str, Any], kind: str) -> list[list[Any]]:
    """What the report should list under ``kind``: each entry of the sentences' reports once,
    with how many sentences reported it."""
    counts = Counter(
        (term["source"], term["target"])
        for pair in result["alignment"]
        for term in (pair["glossary"] or {}).get(kind, [])
    )
    return sorted([source, target, count] for (source, target), count in counts.items())


def shown_terms(browser: Browser, kind: str) -> list[list[Any]]:
    selector = f"#glossary-panel [data-kind='{kind}'] li"
    terms: list[list[Any]] = browser.page.eval_on_selector_all(selector, READ_TERMS)
    return sorted(terms)


def post_bodies(browser: Browser) -> list[dict[str, Any]]:
    """Every JSON body the page POSTs from now on (appended as they are sent)."""
    bodies: list[dict[str, Any]] = []
    browser.page.on(
        "request",
        lambda request: bodies.append(request.post_data_json) if request.method == "POST" else None,
    )
    return bodies


def submit_and_wait(browser: Browser, stack: Stack, text: str) -> dict[str, Any]:
    """Submit ``text`` as it stands in the form and wait until a new job shows as done; its
    result as the API has it."""
    page = browser.page
    before = page.evaluate("new URL(location.href).searchParams.get('job')")
    submit(browser, text)
    page.wait_for_function(
        """previous => new URL(location.href).searchParams.get('job') !== previous
            && document.getElementById('job-status').textContent.startsWith('Done')""",
        arg=before,
        timeout=120_000,
    )
    view = stack.job(job_id_of(browser))
    assert view["status"] == "succeeded", describe(view)
    result: dict[str, Any] = view["result"]
    return result


def assert_report_matches(browser: Browser, result: dict[str, Any]) -> None:
    """The glossary section lists exactly the entries (and counts) the result reports, and the
    translation highlights a term in exactly the sentences that reached one."""
    page = browser.page
    for kind in KINDS:
        assert shown_terms(browser, kind) == expected_terms(result, kind), kind
    totals = page.text_content("#glossary-panel .glossary-totals") or ""
    report = result["glossary"]
    for kind, words in (("applied", "applied"), ("fallback", "needed a fallback")):
        assert f"{report[kind]} {words}" in totals, totals
    reached = sum(
        1
        for pair in result["alignment"]
        if pair["glossary"] and (pair["glossary"]["applied"] or pair["glossary"]["fallback"])
    )
    marked = page.locator("#alignment tr.sentence:has(td.en mark.glossary-term)").count()
    assert marked == reached


def test_default_none_and_an_own_glossary_each_change_the_report(
    stack: Stack, browser: Browser
) -> None:
    """Seed 000 with the server default shows Lawrow -> Lavrov in the report; with None the
    request says ``glossary_id: null`` and no report is shown; with an uploaded glossary its id
    is sent and its entries (Moskau -> Moscow), not the default's, are reported."""
    desk = create_glossary(stack.base_url, "desk", DESK_ENTRIES)
    page = browser.page
    bodies = post_bodies(browser)
    open_editor(browser, stack.base_url + "/")
    assert page.input_value("#glossary") == "default"

    with_default = submit_and_wait(browser, stack, SEED_000)
    assert "glossary_id" not in bodies[-1]
    assert with_default["glossary"]["glossary_id"] == "default", describe(with_default["glossary"])
    assert page.is_visible("#glossary-panel")
    assert_report_matches(browser, with_default)
    sources = {term[0] for kind in KINDS for term in shown_terms(browser, kind)}
    assert {"Lawrow", "Wladimir"} <= sources
    assert "server default" in (page.text_content("#glossary-panel .glossary-totals") or "")
    page.evaluate("() => document.getElementById('glossary-panel').scrollIntoView()")
    browser.screenshot("glossary-default", full_page=False)
    assert browser.axe_violations() == []

    page.select_option("#glossary", label="None")
    without = submit_and_wait(browser, stack, SEED_000)
    assert bodies[-1]["glossary_id"] is None
    assert without["glossary"] is None
    assert page.is_hidden("#glossary-panel")
    assert (
        page.locator("#alignment mark.glossary-term, #alignment mark.glossary-missed").count() == 0
    )

    page.select_option("#glossary", value=desk)
    assert "desk" in (page.text_content("#glossary-help") or "")
    own = submit_and_wait(browser, stack, SEED_000)
    assert bodies[-1]["glossary_id"] == desk
    assert own["glossary"]["glossary_id"] == desk
    assert page.is_visible("#glossary-panel")
    assert_report_matches(browser, own)
    sources = {term[0] for kind in KINDS for term in shown_terms(browser, kind)}
    assert sources == {"Moskau", "Lawrow"}
    assert "desk" in (page.text_content("#glossary-panel .glossary-totals") or "")


def test_the_picker_lists_the_keys_own_glossaries_and_no_default_when_there_is_none(
    stack: Stack, browser: Browser
) -> None:
    """With keys on, the picker offers the server default (with its size), None, and the
    glossaries of the page's key only; a server without a default offers None first."""
    wait_until_ready(stack.keyed_url)
    default = load_default_glossary(ROOT / "glossaries")
    assert default is not None
    create_glossary(stack.keyed_url, "newsroom", DESK_ENTRIES, key=API_KEY)
    create_glossary(stack.base_url, "open desk", "Peskow\tPeskov")
    page = browser.page
    page.add_init_script(f"sessionStorage.setItem('kurzgefasst.apiKey', {API_KEY!r})")
    open_editor(browser, stack.keyed_url + "/")
    labels = page.locator("#glossary option").all_text_contents()
    assert labels == [
        f"Server default ({len(default.entries)} entries)",
        "None",
        "newsroom (2 entries)",
    ]
    assert page.input_value("#glossary") == "default"
    assert page.is_hidden("#key-panel")

    page.route(
        "**/v2/glossaries/default",
        lambda route: route.fulfill(status=404, json={"message": "glossary not found"}),
    )
    open_editor(browser, stack.keyed_url + "/")
    assert page.locator("#glossary option").all_text_contents() == ["None", "newsroom (2 entries)"]
    assert page.input_value("#glossary") == ""
    assert "No glossary" in (page.text_content("#glossary-help") or "")


def test_a_glossary_deleted_after_the_page_loaded_is_refused_beside_the_picker(
    stack: Stack, browser: Browser
) -> None:
    """Submitting with a glossary that is gone shows the 404 ``glossary_not_found`` under the
    picker, which is marked invalid; no job is started."""
    gone = create_glossary(stack.base_url, "short-lived", "Kyjiw\tKyiv")
    page = browser.page
    open_editor(browser, stack.base_url + "/")
    page.select_option("#glossary", value=gone)
    deleted = httpx.delete(f"{stack.base_url}/v2/glossaries/{gone}", timeout=10)
    assert deleted.status_code == 204
    submit(browser, SEED_000)
    error = page.locator("#glossary-error")
    error.wait_for()
    assert "glossary_not_found" in (error.text_content() or "")
    assert page.get_attribute("#glossary", "aria-invalid") == "true"
    assert page.is_hidden("#job-panel")
