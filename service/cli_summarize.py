"""``python -m service summarize FILE...``: the pipeline without the service, for one-off use.

Progress (articles, and sentences of the current article) goes to stderr when it is a terminal;
results go to stdout, as text or as one JSON object per line with ``--json``.  With ``--html``
the files are HTML pages (a saved page or a CMS body) and the article is extracted from each first.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

import msgspec
from tqdm import tqdm

from service.errors import KurzError
from service.pipeline import ArticleRequest, Pipeline, build_pipeline
from service.schemas import Result
from service.settings import Settings
from service.sources.extract import Extractor


def read_article(name: str) -> str:
    """The text of a file, or of standard input for ``-``."""
    if name == "-":
        return sys.stdin.read()
    return Path(name).read_text(encoding="utf-8")


def summarize_files(
    settings: Settings,
    files: Sequence[str],
    *,
    style: str,
    title: str | None,
    as_json: bool,
    allow_non_german: bool,
    html: bool = False,
) -> int:
    """Summarize each file in turn; returns 0, or 1 if any file failed (the others still run).

    With ``html`` the files are HTML pages and the article is extracted from each first; the
    page's title is used when ``title`` is None.
    """
    pipeline = build_pipeline(settings)
    pipeline.presets.get(style)  # an unknown style fails before any model work
    extractor = Extractor() if html else None
    try:
        return asyncio.run(
            _summarize_all(pipeline, files, style, title, as_json, allow_non_german, extractor)
        )
    finally:
        pipeline.close()
        if extractor is not None:
            extractor.close()


async def _summarize_all(
    pipeline: Pipeline,
    files: Sequence[str],
    style: str,
    title: str | None,
    as_json: bool,
    allow_non_german: bool,
    extractor: Extractor | None = None,
) -> int:
    show = sys.stderr.isatty()
    failures = 0
    articles = tqdm(files, desc="articles", unit="article", disable=not show, position=0)
    for name in articles:
        sentences = tqdm(desc="sentences", unit="sent", disable=not show, position=1, leave=False)

        def on_progress(stage: str, done: int, total: int, bar: tqdm = sentences) -> None:
            if stage == "translate":
                bar.total = total
                bar.n = done
                bar.refresh()

        try:
            text, article_title = read_article(name), title
            if extractor is not None:
                page = await extractor.extract(text)
                text, article_title = page.text, title if title is not None else page.title
                if page.short_text_warning:
                    tqdm.write(f"warning: {name}: {page.short_text_warning}", file=sys.stderr)
            result = await pipeline.run(
                ArticleRequest(
                    text=text, title=article_title, style=style, allow_non_german=allow_non_german
                ),
                on_progress=on_progress,
            )
        except (KurzError, OSError, UnicodeDecodeError) as error:
            failures += 1
            tqdm.write(f"error: {name}: {error}", file=sys.stderr)
            continue
        finally:
            sentences.close()
        _emit(name, result, as_json)
    articles.close()
    return 1 if failures else 0


def _emit(name: str, result: Result, as_json: bool) -> None:
    if as_json:
        payload = msgspec.to_builtins(result)
        payload["file"] = name
        sys.stdout.write(msgspec.json.encode(payload).decode() + "\n")
    else:
        heading = result.title_en or name
        sys.stdout.write(f"# {heading}\n\n{result.summary}\n\n")
        if result.summary_flags:
            # One line an editor (or a grep) finds: the facts the article does not support.
            sys.stdout.write("FLAGGED: " + "; ".join(result.summary_flags) + "\n\n")
    sys.stdout.flush()
