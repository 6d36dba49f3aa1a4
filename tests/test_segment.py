"""Sentence segmentation: German sentence boundaries, layout bookkeeping and pathological input."""

from __future__ import annotations

import itertools
import re
import threading
import time
from pathlib import Path

import pytest
import somajo

from service.text import segment
from service.text.segment import (
    MAX_MERGE_CHARS,
    MAX_RUN_CHARS,
    Sentence,
    join_sentences,
    split_sentences,
)

SEEDS = sorted((Path(__file__).resolve().parent.parent / "seeds").glob("*.txt"))
MONTHS = "Januar|Februar|März|April|Mai|Juni|Juli|August|September|Oktober|November|Dezember"
DATE = re.compile(rf"\b\d{{1,2}}\. (?:bis \d{{1,2}}\. )?(?:{MONTHS})\b")


def seed_text(name_prefix: str) -> str:
    (path,) = (p for p in SEEDS if p.name.startswith(name_prefix))
    return path.read_text(encoding="utf-8")


def texts(sentences: list[Sentence]) -> list[str]:
    return [s.text for s in sentences]


def layout(text: str) -> str:
    """The input as join_sentences should rebuild it: blank lines collapsed, lines stripped."""
    blocks = re.split(r"\n\s*\n", text.replace("\r\n", "\n").strip())
    return "\n\n".join(
        "\n".join(line.strip() for line in block.split("\n") if line.strip()) for block in blocks
    )


def test_seeds_are_present() -> None:
    """The five seed articles the other tests rely on are in the repository."""
    assert len(SEEDS) == 5


@pytest.mark.parametrize("path", SEEDS, ids=lambda p: p.name)
def test_seed_layout_round_trips(path: Path) -> None:
    """Joining a seed's own sentences rebuilds its paragraphs and lines exactly."""
    text = path.read_text(encoding="utf-8")
    sentences = split_sentences(text)
    assert join_sentences(sentences, texts(sentences)) == layout(text)


@pytest.mark.parametrize("path", SEEDS, ids=lambda p: p.name)
def test_seed_indices_are_consecutive(path: Path) -> None:
    """Paragraph and line indices start at 0 and never skip, however many blank lines there are."""
    sentences = split_sentences(path.read_text(encoding="utf-8"))
    paragraphs = [s.paragraph for s in sentences]
    assert paragraphs[0] == 0
    assert all(b - a in (0, 1) for a, b in itertools.pairwise(paragraphs))
    for a, b in itertools.pairwise(sentences):
        if b.paragraph != a.paragraph:
            assert b.line == 0
        else:
            assert b.line - a.line in (0, 1)


@pytest.mark.parametrize("path", SEEDS, ids=lambda p: p.name)
def test_seed_sentences_are_verbatim(path: Path) -> None:
    """Every sentence is a stripped, unaltered piece of one line of the article."""
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")
    for sentence in split_sentences(text):
        assert sentence.text == sentence.text.strip()
        assert sentence.text
        assert any(sentence.text in line for line in lines)


def test_seed_dates_stay_inside_one_sentence() -> None:
    """Seed dates such as "22. Januar" or "4. bis 5. Februar" do not end a sentence."""
    found = []
    for path in SEEDS:
        text = path.read_text(encoding="utf-8")
        sentences = texts(split_sentences(text))
        for match in DATE.finditer(text):
            found.append(match.group())
            assert any(match.group() in s for s in sentences), match.group()
    assert {"22. Januar", "21. Januar", "23. Januar", "4. bis 5. Februar"} <= set(found)


def test_seed_am_22_januar_is_one_sentence() -> None:
    """The seed sentence with "am 22. Januar" in its middle comes out whole."""
    sentences = texts(split_sentences(seed_text("003")))
    matching = [s for s in sentences if "am 22. Januar" in s]
    assert len(matching) == 1
    assert matching[0].startswith("US-Präsident Donald Trumps Gesandte")
    assert matching[0].endswith("mit dem russischen Präsidenten Wladimir Putin.")


def test_seed_dotted_names_and_numeric_dates_do_not_split() -> None:
    """Domain names and "03.12.2025, 11:00 Uhr" in the seeds stay inside their sentence."""
    sentences = texts(split_sentences(seed_text("000")) + split_sentences(seed_text("004")))
    assert "Kremlin.ru / Wiki Commons" in sentences
    assert "Quellen: Ziare.com, Eurasia Business News" in sentences
    assert "Stand: 03.12.2025, 11:00 Uhr" in sentences
    assert any("der washingtonpost.com: Holen Sie sich" in s for s in sentences)


def test_seed_handle_is_not_cut_at_its_dot() -> None:
    """ "@Presse.Online" in a seed, where SoMaJo sees a sentence end, stays one sentence."""
    sentences = texts(split_sentences(seed_text("001")))
    assert any(s.startswith("🔔 Folge @Presse.Online für fundierte Analysen") for s in sentences)


def test_sentences_not_separated_by_whitespace_are_merged() -> None:
    """Pieces that no whitespace separates stay together, so joining never inserts a space."""
    assert texts(split_sentences("Er kam.Sie ging. Dann war Ruhe.")) == [
        "Er kam.Sie ging.",
        "Dann war Ruhe.",
    ]


def test_seed_multi_sentence_quote_is_kept_together() -> None:
    """A quotation of several sentences in a seed is one sentence with its „ and “ balanced."""
    sentences = texts(split_sentences(seed_text("002")))
    quote = [s for s in sentences if "Im Moment haben wir keinen Deal." in s]
    assert len(quote) == 1
    assert quote[0].count("„") == quote[0].count("“") == 1
    assert quote[0].endswith("sehr gut verhalten“, fügte er hinzu.")


def test_seed_headlines_without_full_stop_are_their_own_sentence() -> None:
    """Headline lines without a full stop are separate sentences on their own line."""
    sentences = split_sentences(seed_text("001"))
    assert sentences[0] == Sentence("USA und Russland verhandeln ohne Durchbruch", 0, 0)
    headline = next(s for s in sentences if s.text.startswith("Hintergrund:"))
    assert headline.text == "Hintergrund: Moskaus Interesse an Sanktionserleichterungen"
    same_line = [
        s for s in sentences if (s.paragraph, s.line) == (headline.paragraph, headline.line)
    ]
    assert same_line == [headline]


def test_date_range_does_not_split() -> None:
    """ "4. bis 5. Februar" is not taken for two sentence ends."""
    assert texts(
        split_sentences("Die Gespräche sind für den 4. bis 5. Februar geplant. Ort ist Abu Dhabi.")
    ) == [
        "Die Gespräche sind für den 4. bis 5. Februar geplant.",
        "Ort ist Abu Dhabi.",
    ]


def test_abbreviations_do_not_split() -> None:
    """Abbreviations such as "z. B.", "u. a.", "Dr." and "Mio." do not end a sentence."""
    text = "Es gibt z. B. Äpfel. Dr. Müller nannte u. a. ca. 3 Mio. Euro. Danach ging er."
    assert texts(split_sentences(text)) == [
        "Es gibt z. B. Äpfel.",
        "Dr. Müller nannte u. a. ca. 3 Mio. Euro.",
        "Danach ging er.",
    ]


def test_exclamation_inside_quote_does_not_split() -> None:
    """„Halt!“ in the middle of a sentence does not end it."""
    assert texts(split_sentences("Er rief „Halt!“ und lief weg. Sie blieb.")) == [
        "Er rief „Halt!“ und lief weg.",
        "Sie blieb.",
    ]


@pytest.mark.parametrize(
    "quoted",
    ["„Wir verhandeln. Wir sind bereit.“", "»Wir verhandeln. Wir sind bereit.«"],
)
def test_quotation_of_several_sentences_stays_together(quoted: str) -> None:
    """A German quotation of several sentences is not cut apart at its inner full stops."""
    assert texts(split_sentences(f"Er sagte: {quoted} Dann ging er.")) == [
        f"Er sagte: {quoted}",
        "Dann ging er.",
    ]


def test_unclosed_quote_does_not_glue_the_line_together() -> None:
    """A „ that is never closed on its line does not stop the line from being split."""
    assert texts(split_sentences("„Offen. Nie geschlossen. Hier.")) == [
        "„Offen.",
        "Nie geschlossen.",
        "Hier.",
    ]


def test_very_long_quotation_is_split_after_all() -> None:
    """A quotation longer than MAX_MERGE_CHARS is split so translation units stay bounded."""
    inner = " ".join(["Wir verhandeln weiter mit allen Seiten."] * 40)
    assert len(inner) > MAX_MERGE_CHARS
    sentences = texts(split_sentences(f"Er sagte: „{inner}“ Dann ging er."))
    assert len(sentences) > 2
    assert all(len(s) <= MAX_MERGE_CHARS for s in sentences)


def test_headline_line_then_paragraph() -> None:
    """A headline without a full stop stays apart from the paragraph that follows it."""
    text = "Gespräche ohne Durchbruch\n\nDie Delegation reiste ab. Ein Treffen ist nicht geplant."
    assert split_sentences(text) == [
        Sentence("Gespräche ohne Durchbruch", 0, 0),
        Sentence("Die Delegation reiste ab.", 1, 0),
        Sentence("Ein Treffen ist nicht geplant.", 1, 0),
    ]


def test_headline_directly_above_text_is_its_own_line() -> None:
    """A headline on the line directly above its text is not merged into the first sentence."""
    assert split_sentences("Titel ohne Punkt\nDer Text beginnt hier.") == [
        Sentence("Titel ohne Punkt", 0, 0),
        Sentence("Der Text beginnt hier.", 0, 1),
    ]


def test_blank_lines_with_whitespace_and_crlf_separate_paragraphs() -> None:
    """Whitespace-only lines and "\\r\\n" line ends separate paragraphs like plain blank lines."""
    text = "Erster Satz.\r\nZweite Zeile.\r\n \t \r\n\r\n\r\n  Zweiter Absatz.  \r\n"
    assert split_sentences(text) == [
        Sentence("Erster Satz.", 0, 0),
        Sentence("Zweite Zeile.", 0, 1),
        Sentence("Zweiter Absatz.", 1, 0),
    ]
    assert split_sentences(text) == split_sentences(text.replace("\r\n", "\n"))


def test_empty_and_blank_text_give_no_sentences() -> None:
    """Empty or whitespace-only text has no sentences."""
    assert split_sentences("") == []
    assert split_sentences(" \n\t\n\r\n  ") == []


def test_invisible_only_line_takes_no_index() -> None:
    """A line of nothing but zero-width spaces neither becomes a sentence nor leaves a gap."""
    assert split_sentences("\u200b\n\nErster.\n\u200b\u200b\nZweiter.") == [
        Sentence("Erster.", 0, 0),
        Sentence("Zweiter.", 0, 1),
    ]


def test_spacing_and_unnormalized_characters_are_kept() -> None:
    """Spaces inside a sentence and decomposed umlauts come back exactly as written."""
    text = "Die  Gespra\u0308che   laufen. Weiter."
    assert texts(split_sentences(text)) == ["Die  Gespra\u0308che   laufen.", "Weiter."]


def test_long_url_still_ends_its_sentence() -> None:
    """A whitespace-free run longer than MAX_RUN_CHARS keeps its final full stop as a boundary."""
    url = "https://example.com/" + "a1.b-" * (MAX_RUN_CHARS // 5 + 10)
    sentences = texts(split_sentences(f"Quelle: {url}. Danach kommt ein Satz."))
    assert sentences == [f"Quelle: {url}.", "Danach kommt ein Satz."]


def test_join_uses_the_layout_of_the_sentences() -> None:
    """Replacement texts are joined by spaces within a line, newlines and blank lines between."""
    sentences = split_sentences("Titel\n\nEins. Zwei.\nDrei.\n\n\nVier.")
    joined = join_sentences(sentences, ["Title", "One.", " Two. ", "Three.", "Four."])
    assert joined == "Title\n\nOne. Two.\nThree.\n\nFour."


def test_join_leaves_out_empty_texts() -> None:
    """Empty replacement texts leave no stray spaces or blank lines behind."""
    sentences = split_sentences("Titel\n\nEins. Zwei.\nDrei.")
    assert join_sentences(sentences, ["", "One.", "", "  "]) == "One."


def test_join_rejects_mismatched_lengths() -> None:
    """join_sentences refuses texts that do not correspond one to one to the sentences."""
    sentences = split_sentences("Eins. Zwei.")
    with pytest.raises(ValueError, match="2 sentences but 1 texts"):
        join_sentences(sentences, ["One."])


def test_join_of_nothing_is_empty() -> None:
    """Joining no sentences gives the empty string."""
    assert join_sentences([], []) == ""


@pytest.mark.timeout(30)
def test_100k_character_word_without_spaces_terminates() -> None:
    """A 100,000-character line without spaces is split quickly and no character is lost."""
    word = ("Vorschlag.Putin/Trump-" * 5000)[:100_000]
    sentences = split_sentences(word)
    assert "".join(texts(sentences)) == word


def test_100k_character_article_is_segmented_in_linear_time() -> None:
    """A 100,000-character article costs about ten times a 10,000-character one, not a hundred
    (measured side by side, so a busy machine slows both alike), and keeps its layout."""
    article = "\n\n".join(p.read_text(encoding="utf-8") for p in SEEDS * 6)[:100_000]
    tenth = article[:10_000]
    split_sentences(tenth)  # SoMaJo's start-up is not the article's cost

    def seconds(text: str) -> float:
        started = time.perf_counter()
        split_sentences(text)
        return time.perf_counter() - started

    small = min(seconds(tenth) for _ in range(3))
    large = min(seconds(article) for _ in range(2))  # the least disturbed of two runs
    sentences = split_sentences(article)
    assert join_sentences(sentences, texts(sentences)) == layout(article)
    # Linear is 10x; quadratic would be 100x.  The margin covers cache effects and noise.
    assert large < 25 * small, (large, small)


def test_concurrent_calls_agree_with_sequential_ones() -> None:
    """Splitting from several threads at once gives the same sentences as one after another."""
    articles = [p.read_text(encoding="utf-8") for p in SEEDS]
    expected = [split_sentences(a) for a in articles]
    results: dict[int, list[list[Sentence]]] = {}
    barrier = threading.Barrier(len(articles))

    def work(index: int) -> None:
        barrier.wait()
        results[index] = [split_sentences(articles[index]) for _ in range(3)]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(articles))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for index, runs in results.items():
        assert runs == [expected[index]] * 3
    assert len(results) == len(articles)


def test_splitter_is_built_once_under_contention(monkeypatch: pytest.MonkeyPatch) -> None:
    """Many threads splitting their first text at once build the costly SoMaJo only once."""
    built: list[int] = []
    original = somajo.SoMaJo

    class CountingSoMaJo(original):  # type: ignore[misc, valid-type]
        def __init__(self, *args: object, **kwargs: object) -> None:
            built.append(1)
            time.sleep(0.05)  # widen the window in which a second thread could slip in
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(somajo, "SoMaJo", CountingSoMaJo)
    monkeypatch.setattr(segment, "_splitter", None)
    barrier = threading.Barrier(8)

    def work() -> None:
        barrier.wait()
        split_sentences("Eins. Zwei.")

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert built == [1]
