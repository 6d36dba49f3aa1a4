"""The editor page in a real browser against a real API, worker and Redis on the tiny models."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from service.api.pages import EDITOR_CSP
from service.settings import ROOT
from tests.browser.conftest import API_KEY, MAX_TEXT_CHARS, Browser, Stack, describe

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.redis]

SEEDS = sorted((ROOT / "seeds").glob("*.txt"))
SEED_000 = SEEDS[0].read_text(encoding="utf-8")
ENGLISH = (
    "The city council met on Tuesday to discuss the new budget. The mayor said that the "
    "schools would get more money next year. Several members of the opposition disagreed."
)
#: Records every text the progress live region shows, for the tests to read back.
WATCH_STATUS = """() => {
  window.statusSeen = [];
  const region = document.getElementById('job-status');
  new MutationObserver(() => window.statusSeen.push(region.textContent))
    .observe(region, {childList: true, characterData: true, subtree: true});
}"""


def open_editor(browser: Browser, url: str, *, wait: bool = True) -> dict[str, str]:
    """Load the page and (with ``wait``) wait until its script has loaded the styles and any
    ``?job=``; returns the page's response headers."""
    response = browser.page.goto(url)
    assert response is not None and response.status == 200
    if wait:
        browser.page.wait_for_selector("body[data-ready='true']", state="attached")
    return dict(response.headers)


def submit(browser: Browser, text: str) -> None:
    browser.page.fill("#text", text)
    browser.page.click("#submit")


def job_id_of(browser: Browser) -> str:
    [job_id] = parse_qs(urlsplit(browser.page.url).query)["job"]
    return job_id


def test_the_empty_page_is_strict_accessible_and_self_contained(
    stack: Stack, browser: Browser
) -> None:
    """The page comes with its CSP, lists the server's styles, links the docs, loads nothing
    from another host and has no serious or critical accessibility violation."""
    headers = open_editor(browser, stack.base_url + "/")
    assert headers["content-security-policy"] == EDITOR_CSP
    assert "default-src 'self'" in headers["content-security-policy"]
    options = browser.page.locator("#style option").all_text_contents()
    assert "standard" in options and browser.page.input_value("#style") == "standard"
    assert browser.page.get_attribute("a[href='/schema/swagger']", "href")
    assert browser.page.is_hidden("#results") and browser.page.is_hidden("#key-panel")
    # The URL input appears only when the server's own API document accepts `url`.
    schema = httpx.get(f"{stack.base_url}/schema/openapi.json", timeout=10).json()
    accepts_url = "url" in schema["components"]["schemas"]["SummarizeRequest"]["properties"]
    browser.page.wait_for_load_state("networkidle")
    assert browser.page.is_visible("#url") == accepts_url
    browser.screenshot("empty")
    assert browser.axe_violations() == []
    assert browser.foreign_requests(stack.base_url) == []


def test_seed_000_from_paste_to_result_copy_download_and_reload(
    stack: Stack, browser: Browser, tmp_path: Path
) -> None:
    """Seed 000 pasted and submitted: progress reaches done, one aligned row per sentence, the
    copied summary is on the clipboard, the Markdown holds both texts, and a reload (or a
    ``?job=`` link) shows the same job again."""
    page = browser.page
    open_editor(browser, stack.base_url + "/")
    page.evaluate(WATCH_STATUS)
    page.fill("#title", "Seed 000")
    submit(browser, SEED_000)
    page.wait_for_function(
        "() => document.getElementById('job-status').textContent.startsWith('Done')"
    )
    seen = page.evaluate("window.statusSeen")
    assert seen[-1].startswith("Done"), seen
    job_id = job_id_of(browser)
    view = stack.job(job_id)
    assert view["status"] == "succeeded", describe(view)
    result = view["result"]
    rows = page.locator("#alignment tr.sentence")
    assert rows.count() == result["sentences_in"] == len(result["alignment"])
    paragraphs = {pair["paragraph"] for pair in result["alignment"]}
    assert page.locator("#alignment tbody").count() == len(paragraphs)
    assert page.text_content("#summary") == result["summary"]
    unsupported = [
        result["summary"][check["start"] : check["end"]]
        for check in result["checks"]
        if not check["supported"]
    ]
    assert page.locator("#summary mark.unsupported").all_text_contents() == unsupported
    assert page.text_content("#alignment tr.sentence td.de span") == result["alignment"][0]["de"]

    page.click("#copy-summary")
    page.wait_for_selector("#copy-note:has-text('Summary copied')")
    assert page.evaluate("navigator.clipboard.readText()") == result["summary"]
    page.click("#copy-translation")
    page.wait_for_selector("#copy-note:has-text('Translation copied')")
    assert page.evaluate("navigator.clipboard.readText()") == result["translation"]

    rows.nth(1).locator("td.en").hover()
    assert "partnered" in (rows.nth(1).get_attribute("class") or "")
    page.mouse.move(0, 0)
    assert "partnered" not in (rows.nth(1).get_attribute("class") or "")
    rows.nth(0).locator("td.de").focus()
    assert "partnered" in (rows.nth(0).get_attribute("class") or "")

    with page.expect_download() as download:
        page.click("#download")
    markdown = Path(download.value.path()).read_text(encoding="utf-8")
    assert "## Summary" in markdown and result["summary"] in markdown
    assert result["translation"] in markdown and result["alignment"][0]["de"] in markdown

    details = page.text_content("#details") or ""
    assert "German share" in details
    assert all(model["id"] in details for model in result["models"].values())
    browser.screenshot("done-full")
    page.evaluate("() => document.getElementById('job-panel').scrollIntoView()")
    browser.screenshot("done", full_page=False)
    page.evaluate("() => document.getElementById('translation-heading').scrollIntoView()")
    browser.screenshot("done-translation", full_page=False)
    assert browser.axe_violations() == []

    page.reload()
    page.wait_for_selector("#job-status:has-text('Done')")
    assert page.locator("#alignment tr.sentence").count() == result["sentences_in"]
    open_editor(browser, f"{stack.base_url}/?job={job_id}")
    page.wait_for_selector("#job-status:has-text('Done')")
    assert page.text_content("#summary") == result["summary"]
    assert browser.foreign_requests(stack.base_url) == []


def test_the_translation_fills_in_before_the_summary_exists(stack: Stack, browser: Browser) -> None:
    """The seeds twice over as one article: translated paragraphs appear while the job is still
    running and has no summary (as the job's ``partial`` has them), come back at once after a
    reload, and give way to the whole result when it is done."""
    page = browser.page
    article = "\n\n".join(seed.read_text(encoding="utf-8") for seed in reversed(SEEDS * 2))
    assert len(article) <= MAX_TEXT_CHARS
    open_editor(browser, stack.base_url + "/")
    submit(browser, article)
    partial_rows = "#results[data-state='partial'] #alignment tr.sentence"
    page.wait_for_selector(partial_rows, state="attached")
    page.reload()  # a page opened late gets the paragraphs done so far at once
    page.wait_for_selector(partial_rows, state="attached")
    view = stack.job(job_id_of(browser))
    assert view["status"] == "running" and "result" not in view, describe(view)
    shown = {
        int(number)
        for number in page.eval_on_selector_all(
            "#alignment tbody", "bodies => bodies.map(b => b.dataset.paragraph)"
        )
    }
    partial = {p["paragraph"]: p for p in view["partial"]}
    assert shown <= set(partial), (shown, sorted(partial))
    first = min(shown)
    first_english = page.text_content(
        f"#alignment tbody[data-paragraph='{first}'] tr.sentence td.en span"
    )
    assert first_english == partial[first]["sentences"][0]["en"]
    assert page.is_visible(partial_rows)
    assert page.text_content("#summary") == ""
    assert page.is_visible("#summary-pending") and page.is_hidden("#copy-summary")
    browser.screenshot("partial")
    assert browser.axe_violations() == []

    page.wait_for_function(
        "() => document.getElementById('job-status').textContent.startsWith('Done')",
        timeout=300_000,
    )
    result = stack.job(job_id_of(browser))["result"]
    assert page.get_attribute("#results", "data-state") is None
    assert page.locator("#alignment tr.sentence").count() == result["sentences_in"]
    assert page.text_content("#summary") == result["summary"]
    assert page.is_hidden("#summary-pending") and page.is_visible("#copy-summary")


def test_a_running_job_shows_progress_and_can_be_canceled(stack: Stack, browser: Browser) -> None:
    """A long article shows sentences done of total in the live region; Cancel stops it."""
    page = browser.page
    parts: list[str] = []
    while sum(len(part) for part in parts) < 30_000:
        parts.extend(seed.read_text(encoding="utf-8") for seed in SEEDS[1:])
    open_editor(browser, stack.base_url + "/")
    submit(browser, "\n\n".join(parts))
    page.wait_for_selector("#cancel:visible")
    page.wait_for_function(
        "() => / of \\d+ sentences/.test(document.getElementById('job-status').textContent)"
    )
    # The viewport only: a whole-page capture of a 30,000-character article, its English
    # streaming in, kept a loaded machine's chromium busy for tens of seconds.
    browser.screenshot("running", full_page=False)
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

    job_id = job_id_of(browser)
    page.click("#cancel")
    try:
        # The DELETE's answer says canceled at once; a busy machine may take a while to run it.
        page.wait_for_selector("#job-status:has-text('Canceled')", timeout=90_000)
    except PlaywrightTimeoutError:
        facts = f"job: {describe(stack.job(job_id))}"  # first, from Redis: the page may hang
        try:
            browser.page.set_default_timeout(5_000)
            facts += f"; page: {page.text_content('#job-status')!r}"
            browser.screenshot("cancel-timeout", full_page=False)
        except PlaywrightError as error:
            facts += f"; the page did not answer either ({type(error).__name__})"
        raise AssertionError(facts) from None
    assert stack.job(job_id)["status"] == "canceled"
    assert page.is_hidden("#cancel") and page.is_hidden("#results")


def test_english_text_is_refused_beside_the_text_with_its_language(
    stack: Stack, browser: Browser
) -> None:
    """A 422 ``not_german`` shows under the text box, naming the language found."""
    open_editor(browser, stack.base_url + "/")
    submit(browser, ENGLISH)
    error = browser.page.locator("#text-error")
    error.wait_for()
    assert "English" in error.text_content() and "not_german" in error.text_content()
    assert browser.page.get_attribute("#text", "aria-invalid") == "true"
    assert browser.page.is_hidden("#job-panel")


def test_an_over_long_article_is_refused_with_the_limit(stack: Stack, browser: Browser) -> None:
    """A 413 ``text_too_long`` shows under the text box and says the limit."""
    open_editor(browser, stack.base_url + "/")
    sentence = "Der Gemeinderat hat am Dienstag über den neuen Haushalt beraten. "
    submit(browser, sentence * (MAX_TEXT_CHARS // len(sentence) + 10))
    error = browser.page.locator("#text-error")
    error.wait_for()
    assert f"{MAX_TEXT_CHARS:,}" in error.text_content()
    assert "text_too_long" in error.text_content()


def test_with_api_keys_the_page_asks_once_and_keeps_the_key_out_of_urls(
    stack: Stack, browser: Browser
) -> None:
    """With keys on, the page asks for one, says when it is wrong, keeps the right one in the
    tab's session storage, sends it as a header, and never in a URL."""
    page = browser.page
    sent_keys: list[str | None] = []
    page.on("request", lambda request: sent_keys.append(request.headers.get("x-api-key")))
    open_editor(browser, stack.keyed_url + "/", wait=False)
    page.wait_for_selector("#key-panel:visible")
    page.fill("#api-key", "not-the-key")
    page.click("#key-form button")
    page.wait_for_selector("#api-key-error:has-text('not valid')")
    page.fill("#api-key", API_KEY)
    page.click("#key-form button")
    page.wait_for_selector("#style option[value='standard']", state="attached")
    assert page.is_hidden("#key-panel")
    assert page.evaluate("sessionStorage.getItem('kurzgefasst.apiKey')") == API_KEY
    submit(browser, SEED_000)
    page.wait_for_selector("#job-status:has-text('Done')")
    page.reload()
    page.wait_for_selector("#job-status:has-text('Done')")
    assert page.is_hidden("#key-panel")
    assert API_KEY in sent_keys
    assert not [url for url in browser.requests if API_KEY in url]
    assert browser.foreign_requests(stack.keyed_url) == []


def test_url_and_html_inputs_send_their_own_fields_and_show_a_refusal(
    stack: Stack, browser: Browser, tmp_path: Path
) -> None:
    """Told by the API document that `url` and `html` are accepted, the page sends
    ``{"url": ...}`` or ``{"html": ...}``; a refusal shows beside the field that was used."""
    page = browser.page

    def accepting_url_and_html(route: Any) -> None:
        document = route.fetch().json()
        properties = document["components"]["schemas"]["SummarizeRequest"]["properties"]
        properties.setdefault("url", {"type": "string"})
        properties.setdefault("html", {"type": "string"})
        route.fulfill(json=document)

    page.route("**/schema/openapi.json", accepting_url_and_html)
    bodies: list[dict[str, Any]] = []
    page.on(
        "request",
        lambda request: bodies.append(request.post_data_json) if request.method == "POST" else None,
    )
    open_editor(browser, stack.base_url + "/")
    page.wait_for_selector("#url:visible")
    # A loopback address: refused by a server that takes URLs (SSRF guard) and by one that does
    # not (unknown field) alike.
    page.fill("#url", "http://127.0.0.1:9/article")
    page.click("#submit")
    page.wait_for_selector("#url-error:has-text('code:')")
    assert bodies[-1]["url"] == "http://127.0.0.1:9/article" and "text" not in bodies[-1]
    assert page.get_attribute("#url", "aria-invalid") == "true"

    page.fill("#url", "")
    html_file = tmp_path / "article.html"
    html_file.write_text(f"<html><body><p>{SEED_000[:2000]}</p></body></html>", encoding="utf-8")
    page.set_input_files("#file", str(html_file))
    page.wait_for_selector("#file-help:has-text('article.html')")
    page.click("#submit")
    page.wait_for_function(
        "() => document.getElementById('file-error').textContent"
        " || !document.getElementById('job-panel').hidden"
    )
    assert bodies[-1]["html"].startswith("<html>") and "text" not in bodies[-1]
