"""`python -m service summarize --html FILE`: a saved news page summarized on the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from service.text.segment import split_sentences
from tests.pages import BOILERPLATE_LINES, news_page, read_seed
from tests.test_cli import cli

pytestmark = pytest.mark.slow


def test_summarize_html_extracts_the_article_and_takes_the_page_title(
    tiny_models_dir: Path, seed_texts: dict[str, str], tmp_path: Path
) -> None:
    """A news page is reduced to its article: every body sentence is translated, no boilerplate
    is, and the page's headline becomes the translated title."""
    article = read_seed(seed_texts["003_39b3fe82e26bd2c3.txt"])
    page = tmp_path / "artikel.html"
    page.write_text(news_page(article), encoding="utf-8")
    done = cli(["summarize", "--html", str(page), "--json"], tiny_models_dir)
    assert done.returncode == 0, done.stderr
    [result] = [json.loads(line) for line in done.stdout.splitlines()]
    german = [pair["de"] for pair in result["alignment"]]
    body = [s.text for paragraph in article.body for s in split_sentences(paragraph)]
    assert set(body) <= set(german)
    assert not [line for line in BOILERPLATE_LINES if any(line in de for de in german)]
    assert result["title_en"]
    assert article.title not in german


def test_summarize_html_reports_a_file_that_is_no_page(
    tiny_models_dir: Path, tmp_path: Path
) -> None:
    """A plain-text file given with --html fails with the not-HTML reason; exit status is 1."""
    plain = tmp_path / "notiz.txt"
    plain.write_text("Nur ein Satz ohne jede Auszeichnung.", encoding="utf-8")
    done = cli(["summarize", "--html", str(plain)], tiny_models_dir)
    assert done.returncode == 1
    assert "not an HTML page" in done.stderr and "notiz.txt" in done.stderr
    assert "Traceback" not in done.stderr
