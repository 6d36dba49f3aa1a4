"""One article's translation as it arrives, paragraph by paragraph, for ``service.pipeline``.

The pipeline asks the scheduler for every sentence at once, but a listener (the worker's
paragraph preview) wants each paragraph the moment it is complete and settled against the
glossary.  That bookkeeping (which paragraphs are complete, their settling, what is published,
and how long the article's opening is) lives here, apart from the pipeline's own steps.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from service.glossary_steps import GlossaryRun, NbestTranslator
from service.schemas import AlignedSentence, TranslatedParagraph
from service.text.glossary_report import SentenceGlossaryReport
from service.text.segment import Sentence

ParagraphSink = Callable[[list[TranslatedParagraph]], None]
"""Called with the paragraphs whose every sentence is translated (with a glossary: settled) as
they finish, in paragraph order within one call, each paragraph once; must not block."""

TranslatedSink = Callable[[list[tuple[int, str]], bool], None]
"""Called with ``(index, translation)`` of texts now translated, and whether from the cache."""

Translate = Callable[[list[str], TranslatedSink], Awaitable[tuple[list[str], list[bool]]]]
"""``Pipeline._translate`` with its cache and progress bound: texts in, English and cache flags
out, each text handed to the sink as soon as it is done."""


#: With a listener for paragraphs, the article's opening paragraphs (whole paragraphs, at least
#: the first, up to this many sentences) are translated in a request of their own before the
#: rest.  Batches are cut by sentence length across the article, so otherwise a seed article is
#: one batch and its first paragraph comes with its last; split, the top of the article arrives
#: after one small batch.  The price is that batch, about one more per article.
LEAD_SENTENCES = 8


def lead_length(sentences: Sequence[Sentence], limit: int = LEAD_SENTENCES) -> int:
    """How many sentences the article's opening paragraphs hold: whole paragraphs, at least the
    first, at most ``limit`` sentences unless the first paragraph alone is longer."""
    count = 0
    index = 0
    while index < len(sentences):
        paragraph = sentences[index].paragraph
        end = index
        while end < len(sentences) and sentences[end].paragraph == paragraph:
            end += 1
        if count and end > limit:
            break
        count = end
        index = end
    return count


class ArticleTranslation:
    """One article's translation as it comes in: which paragraphs are complete, their glossary
    settling, and what ``on_paragraphs`` is told.

    Paragraphs complete out of order (batches are cut by sentence length, across the article
    and across jobs), so each sentence done counts its paragraph down; a paragraph at zero is
    settled against the glossary (if any, n-best fallback included) and then published.  What is
    published is final: the result is assembled from the same settled sentences.  Texts past the
    article's sentences (the title) belong to no paragraph and are settled at the end.
    """

    def __init__(
        self,
        sentences: Sequence[Sentence],
        texts: Sequence[str],
        glossary: GlossaryRun | None,
        sink: ParagraphSink | None,
        on_settled: Callable[[], None] | None = None,
    ) -> None:
        self.sentences = sentences
        #: Told (no arguments, must not block) whenever more sentences are settled; the summary's
        #: early map step reads :meth:`settled_prefix` then.
        self.on_settled = on_settled
        self.texts = list(texts)
        self.glossary = glossary
        self.sink = sink
        self.cached = [False] * len(texts)
        self._raw: list[str | None] = [None] * len(texts)
        self._final: list[str | None] = [None] * len(texts)
        self._reports: list[SentenceGlossaryReport | None] = [None] * len(texts)
        self._members: dict[int, list[int]] = {}
        for index, sentence in enumerate(sentences):
            self._members.setdefault(sentence.paragraph, []).append(index)
        self._left = {paragraph: len(members) for paragraph, members in self._members.items()}
        self._settling: list[asyncio.Task[None]] = []
        self._nbest: NbestTranslator | None = None

    async def run(self, translate: Translate, nbest: NbestTranslator) -> None:
        """Translate every text, settling and publishing paragraphs as they complete."""
        self._nbest = nbest
        sources = self.glossary.sources if self.glossary else self.texts
        try:
            english, self.cached = await translate(sources, self._on_translated)
            if self._settling:
                await asyncio.gather(*self._settling)
        finally:
            for task in self._settling:
                task.cancel()
        self._raw = list(english)
        await self._settle([i for i, text in enumerate(self._final) if text is None])

    def english(self) -> list[str]:
        """Every text's settled English, in order (after :meth:`run`)."""
        return [text or "" for text in self._final]

    def settled_prefix(self) -> list[str]:
        """The settled English of the article's leading sentences, up to the first not yet
        settled (the title is no sentence): final, as :meth:`english` will return them.

        Without a glossary a sentence is settled as soon as it is translated (its paragraph
        need not be complete: one paragraph can be most of an article); with one, when its
        paragraph has been settled against the glossary."""
        prefix: list[str] = []
        for final, raw in zip(self._final[: len(self.sentences)], self._raw, strict=False):
            text = final if final is not None or self.glossary is not None else raw
            if text is None:
                break
            prefix.append(text)
        return prefix

    def reports(self) -> list[SentenceGlossaryReport]:
        """Every text's glossary report, in order; empty without a glossary."""
        return [r for r in self._reports if r is not None] if self.glossary else []

    def aligned(self, index: int) -> AlignedSentence:
        """Sentence ``index`` as the result's ``alignment`` (and a published paragraph) has it."""
        sentence = self.sentences[index]
        return AlignedSentence(
            de=sentence.text,
            en=self._final[index] or "",
            paragraph=sentence.paragraph,
            cached=self.cached[index],
            glossary=self._reports[index],
        )

    def _on_translated(self, pairs: list[tuple[int, str]], cached: bool) -> None:
        complete: list[int] = []
        for index, english in pairs:
            self._raw[index] = english
            self.cached[index] = cached
            if index < len(self.sentences):
                paragraph = self.sentences[index].paragraph
                self._left[paragraph] -= 1
                if self._left[paragraph] == 0:
                    complete.append(paragraph)
        if self.glossary is None:
            self._tell_settled()
        if not complete:
            return
        if self.glossary is None:
            for paragraph in complete:
                for index in self._members[paragraph]:
                    self._final[index] = self._raw[index]
            self._publish(complete)
        else:
            self._settling.append(asyncio.create_task(self._settle_and_publish(complete)))

    async def _settle_and_publish(self, paragraphs: list[int]) -> None:
        await self._settle([i for p in paragraphs for i in self._members[p]])
        self._publish(paragraphs)
        self._tell_settled()

    def _tell_settled(self) -> None:
        if self.on_settled is not None:
            self.on_settled()

    async def _settle(self, indices: list[int]) -> None:
        """Fix the English of ``indices``: as translated, or settled against the glossary."""
        if not indices:
            return
        raw = [self._raw[i] or "" for i in indices]
        if self.glossary is None or self._nbest is None:
            for index, english in zip(indices, raw, strict=True):
                self._final[index] = english
            return
        settled, reports = await self.glossary.settle_some(indices, raw, self._nbest)
        for index, english, report in zip(indices, settled, reports, strict=True):
            self._final[index] = english
            self._reports[index] = report

    def _publish(self, paragraphs: list[int]) -> None:
        if self.sink is None:
            return
        self.sink(
            [
                TranslatedParagraph(
                    paragraph=paragraph,
                    first_sentence=self._members[paragraph][0],
                    sentences=[self.aligned(i) for i in self._members[paragraph]],
                )
                for paragraph in sorted(paragraphs)
            ]
        )
