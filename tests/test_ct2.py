"""The ctranslate2 backend on the tiny models: parity with transformers, conversion cache, refs."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import ctranslate2
import pytest
import torch

from benchmarks.fixed_length import (
    FixedLengthCT2Summarizer,
    FixedLengthCT2Translator,
    FixedLengthTransformersSummarizer,
    FixedLengthTransformersTranslator,
)
from service.errors import ConfigError, ModelUnavailableError
from service.nlp import conversion, converter, ct2
from service.nlp.backends import load_engines
from service.nlp.batch_pool import plan_batches
from service.nlp.conversion import (
    DecoderStart,
    convert_model,
    converted_dir_name,
    decide_decoder_start,
    resolve_compute_type,
)
from service.nlp.ct2 import (
    CT2Model,
    CT2Summarizer,
    CT2Translator,
    decoding_lengths,
    load_ct2_model,
)
from service.nlp.loading import LoadedModel, load_seq2seq, resolve_model_dir
from service.nlp.priority import thread_nice
from service.nlp.transformers_engine import TransformersSummarizer, TransformersTranslator
from service.presets import Generation
from service.settings import Settings
from service.text.segment import split_sentences

CPU = torch.device("cpu")
#: The special tokens neither backend shows: transformers' decoder start and end, padding.
_FRAME_TOKENS = {"<pad>", "</s>"}
#: Greedy summary settings for the parity tests (beam search is not compared token for token).
GREEDY_SUMMARY = Generation(
    min_length=10, max_length=60, num_beams=1, length_penalty=1.0, no_repeat_ngram_size=3
)


# --- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def converted_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One conversion cache for the session's shared engines."""
    return tmp_path_factory.mktemp("ct2-converted")


@pytest.fixture(scope="session")
def seed_sentences(seed_texts: dict[str, str]) -> list[str]:
    """Every sentence of every seed article, as the pipeline segments them."""
    return [s.text for text in seed_texts.values() for s in split_sentences(text)]


@pytest.fixture(scope="session")
def seed_paragraphs(seed_texts: dict[str, str]) -> list[str]:
    """Seed paragraphs of a few sentences each (the summarizer reads at most 256 tokens)."""
    paragraphs: list[str] = []
    for text in seed_texts.values():
        sentences = [s.text for s in split_sentences(text)]
        paragraphs.extend(" ".join(sentences[i : i + 4]) for i in range(0, len(sentences), 4))
    return paragraphs


@pytest.fixture(scope="session")
def hf_translation(tiny_models_dir: Path) -> LoadedModel:
    """The tiny MarianMT under transformers in float32, the reference."""
    return load_seq2seq(str(tiny_models_dir / "translation"), device=CPU, compute_type="float32")


@pytest.fixture(scope="session")
def hf_summarization(tiny_models_dir: Path) -> LoadedModel:
    """The tiny BART under transformers in float32, the reference."""
    return load_seq2seq(str(tiny_models_dir / "summarization"), device=CPU, compute_type="float32")


def _ct2_model(directory: Path, root: Path, compute_type: str) -> CT2Model:
    return load_ct2_model(
        str(directory), device=CPU, compute_type=compute_type, out_root=root, threads=2
    )


@pytest.fixture(scope="session")
def ct2_translation_f32(tiny_models_dir: Path, converted_root: Path) -> CT2Model:
    return _ct2_model(tiny_models_dir / "translation", converted_root, "float32")


@pytest.fixture(scope="session")
def ct2_summarization_f32(tiny_models_dir: Path, converted_root: Path) -> CT2Model:
    return _ct2_model(tiny_models_dir / "summarization", converted_root, "float32")


@pytest.fixture(scope="session")
def ct2_translation_int8(tiny_models_dir: Path, converted_root: Path) -> CT2Model:
    return _ct2_model(tiny_models_dir / "translation", converted_root, "int8")


def _batches(engine: CT2Translator, sentences: Sequence[str]) -> list[list[str]]:
    """The batches the worker would cut (sorted by length, default token budget)."""
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    plan = plan_batches(
        engine.count_tokens(sentences),
        token_budget=settings.batch_token_budget,
        max_sentences=settings.max_batch_sentences,
    )
    return [[sentences[i] for i in batch] for batch in plan]


@torch.inference_mode()
def _hf_tokens(loaded: LoadedModel, texts: Sequence[str], **generate: Any) -> list[list[str]]:
    """transformers' output tokens for one batch, without decoder start, end and padding."""
    batch = loaded.tokenizer(list(texts), return_tensors="pt", padding=True)
    output = loaded.model.generate(**batch, do_sample=False, **generate)
    rows = [loaded.tokenizer.convert_ids_to_tokens(row) for row in output.tolist()]
    return [[t for t in row[1:] if t not in _FRAME_TOKENS] for row in rows]


def _agreement(reference: Sequence[str], other: Sequence[str]) -> float:
    """Share of positions where two token sequences agree (over the longer one)."""
    longest = max(len(reference), len(other), 1)
    return sum(a == b for a, b in zip(reference, other, strict=False)) / longest


# --- parity -------------------------------------------------------------------------------------


@pytest.mark.slow
def test_float32_greedy_translation_equals_transformers_token_for_token(
    hf_translation: LoadedModel, ct2_translation_f32: CT2Model, seed_sentences: list[str]
) -> None:
    """Switching to ctranslate2 in float32 gives the same translation of every seed sentence."""
    reference = TransformersTranslator(hf_translation)
    engine = CT2Translator(ct2_translation_f32)
    assert engine.max_source_tokens == reference.max_source_tokens
    assert engine.count_tokens(seed_sentences) == reference.count_tokens(seed_sentences)
    compared = 0
    for batch in _batches(engine, seed_sentences):
        longest = max(engine.count_tokens(batch))
        expected = _hf_tokens(
            hf_translation, batch, max_new_tokens=reference.max_new_tokens(longest), num_beams=1
        )
        assert engine.translate_tokens(batch) == expected
        assert engine.translate_batch(batch) == reference.translate_batch(batch)
        compared += len(batch)
    assert compared == len(seed_sentences) > 100


def test_fixed_length_translation_generates_as_many_tokens_as_transformers(
    hf_translation: LoadedModel, ct2_translation_f32: CT2Model, seed_sentences: list[str]
) -> None:
    """Benchmarks' fixed output length means the same number of tokens on both backends."""
    reference = FixedLengthTransformersTranslator(hf_translation, length_factor=1.1)
    engine = FixedLengthCT2Translator(ct2_translation_f32, length_factor=1.1)
    batch = seed_sentences[:12]
    longest = max(engine.count_tokens(batch))
    new_tokens = reference.max_new_tokens(longest)
    expected = _hf_tokens(
        hf_translation,
        batch,
        max_new_tokens=new_tokens,
        min_new_tokens=new_tokens,
        num_beams=1,
    )
    got = engine.translate_tokens(batch)
    assert got == expected
    # transformers spends the last of its new tokens on the forced end token.
    assert {len(tokens) for tokens in got} == {new_tokens - 1}


@torch.inference_mode()
def test_converted_marian_scores_every_step_like_transformers(
    hf_translation: LoadedModel, ct2_translation_f32: CT2Model, seed_sentences: list[str]
) -> None:
    """The converted model predicts the same distribution at every step, the first included.

    A wrong decoder start token (``</s>`` where transformers starts from ``<pad>``) shows up
    here even when the greedy tokens happen to agree.
    """
    tokenizer = hf_translation.tokenizer
    model = hf_translation.model
    pad = tokenizer.pad_token_id
    for sentence in seed_sentences[:6]:
        source = tokenizer([sentence], return_tensors="pt")
        output = model.generate(**source, max_new_tokens=40, num_beams=1, do_sample=False)[0]
        logits = model(**source, decoder_input_ids=output[None, :-1]).logits[0]
        logits[:, pad] = -torch.inf  # <pad> is never generated (bad_words_ids) nor converted
        expected = torch.log_softmax(logits, dim=-1).gather(1, output[1:, None])[:, 0]

        source_tokens = tokenizer.convert_ids_to_tokens(source["input_ids"][0].tolist())
        target_tokens = tokenizer.convert_ids_to_tokens(output[1:-1].tolist())
        scored = ct2_translation_f32.translator.score_batch([source_tokens], [target_tokens])
        got = torch.tensor(scored[0].log_probs)
        assert got.shape == expected.shape
        torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)


@pytest.mark.slow
def test_int8_translation_agreement_is_reported(
    hf_translation: LoadedModel,
    ct2_translation_int8: CT2Model,
    seed_sentences: list[str],
    record_property: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """int8 changes some tokens; how many is measured and shown, not hidden."""
    reference = TransformersTranslator(hf_translation)
    engine = CT2Translator(ct2_translation_int8)
    assert engine.ref.compute_type.startswith("int8")
    shares: list[float] = []
    identical = 0
    for batch in _batches(engine, seed_sentences):
        longest = max(engine.count_tokens(batch))
        expected = _hf_tokens(
            hf_translation, batch, max_new_tokens=reference.max_new_tokens(longest), num_beams=1
        )
        for want, got in zip(expected, engine.translate_tokens(batch), strict=True):
            shares.append(_agreement(want, got))
            identical += want == got
    share = sum(shares) / len(shares)
    record_property("int8_token_agreement", round(share, 4))
    record_property("int8_identical_sentences", f"{identical}/{len(shares)}")
    with capsys.disabled():
        print(  # noqa: T201 - the figure is the point of this test
            f"\nctranslate2 int8 vs transformers float32 (tiny MarianMT, greedy): "
            f"token agreement {share:.1%}, identical sentences {identical}/{len(shares)}"
        )
    assert share > 0


def test_float32_greedy_summary_equals_transformers_token_for_token(
    hf_summarization: LoadedModel, ct2_summarization_f32: CT2Model, seed_paragraphs: list[str]
) -> None:
    """Switching to ctranslate2 in float32 gives the same greedy summary of seed paragraphs."""
    reference = TransformersSummarizer(hf_summarization)
    engine = CT2Summarizer(ct2_summarization_f32)
    assert engine.max_input_tokens == reference.max_input_tokens == 256
    assert engine.follows_instructions is reference.follows_instructions is False
    paragraphs = [
        p
        for p, n in zip(seed_paragraphs, engine.count_tokens(seed_paragraphs), strict=True)
        if n <= engine.max_input_tokens
    ][:10]
    assert len(paragraphs) >= 6
    for batch in (paragraphs[:4], paragraphs[4:]):
        expected = _hf_tokens(
            hf_summarization,
            batch,
            max_new_tokens=GREEDY_SUMMARY.max_length,
            min_new_tokens=GREEDY_SUMMARY.min_length,
            num_beams=1,
            no_repeat_ngram_size=GREEDY_SUMMARY.no_repeat_ngram_size,
        )
        assert engine.summarize_tokens(batch, GREEDY_SUMMARY) == expected
        assert engine.summarize_batch(batch, GREEDY_SUMMARY) == reference.summarize_batch(
            batch, GREEDY_SUMMARY
        )


def test_fixed_summary_length_matches_transformers(
    hf_summarization: LoadedModel, ct2_summarization_f32: CT2Model, seed_paragraphs: list[str]
) -> None:
    """A fixed summary length (benchmarks) yields the same summary on both backends."""
    reference = FixedLengthTransformersSummarizer(hf_summarization, summary_tokens=30)
    engine = FixedLengthCT2Summarizer(ct2_summarization_f32, summary_tokens=30)
    batch = seed_paragraphs[:2]
    got = engine.summarize_tokens(batch, GREEDY_SUMMARY)
    assert engine.summarize_batch(batch, GREEDY_SUMMARY) == reference.summarize_batch(
        batch, GREEDY_SUMMARY
    )
    assert {len(tokens) for tokens in got} == {29}  # <s> + 28 tokens + the forced </s>


# --- results and settings -----------------------------------------------------------------------


def test_results_name_ctranslate2_and_the_compute_type_that_ran(
    tiny_models_dir: Path, tmp_path: Path
) -> None:
    """A result says it came from ctranslate2 and in which precision (int8 on a CPU by default)."""
    settings = Settings(
        models="tiny",
        tiny_models_dir=tiny_models_dir,
        device="cpu",
        backend="ctranslate2",
        compute_type="auto",
        converted_models_dir=tmp_path / "converted",
        inference_threads=2,
        _env_file=None,  # type: ignore[call-arg]
    )
    engines = load_engines(settings)
    for engine, source in (
        (engines.translation, settings.translation_source),
        (engines.summarization, settings.summarization_source),
    ):
        assert engine.ref.backend == "ctranslate2"
        assert engine.ref.compute_type == "int8_float32"  # int8 weights, float32 activations
        assert engine.ref.id == source
        assert engine.ref.revision == resolve_model_dir(source)[1]
    [english] = engines.translation.translate_batch(["Die Gespräche gehen weiter."])
    assert isinstance(english, str)
    [summary] = engines.summarization.summarize_batch(["Die Gespräche gehen weiter."], Generation())
    assert isinstance(summary, str)


def test_threads_come_from_the_settings_and_inter_threads_stay_one(
    tiny_models_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each model runs KURZ_INFERENCE_THREADS intra-op threads and one batch at a time; the
    article side's models are made on a thread KURZ_BACKGROUND_NICE steps lower (their worker
    threads inherit it), the translate lane's copy at the worker's own priority."""
    seen: list[dict[str, Any]] = []
    real = ctranslate2.Translator

    def recording(path: str, **kwargs: Any) -> Any:
        seen.append({**kwargs, "nice": thread_nice(threading.get_native_id())})
        return real(path, **kwargs)

    monkeypatch.setattr(ctranslate2, "Translator", recording)
    settings = Settings(
        models="tiny",
        tiny_models_dir=tiny_models_dir,
        device="cpu",
        backend="ctranslate2",
        compute_type="int8",
        converted_models_dir=tmp_path,
        inference_threads=1,
        background_nice=3,
        _env_file=None,  # type: ignore[call-arg]
    )
    own = thread_nice(threading.get_native_id())
    lowered = min(19, own + 3)
    engines = ct2.load_ct2_engines(settings, device=CPU)
    assert [(k["intra_threads"], k["inter_threads"], k["device"], k["nice"]) for k in seen] == [
        (1, 1, "cpu", lowered),  # translation, for articles
        (1, 1, "cpu", lowered),  # summarization
        (1, 1, "cpu", own),  # translation, for the lane
    ]
    assert engines.urgent_translation is not None
    assert engines.urgent_translation is not engines.translation
    assert thread_nice(threading.get_native_id()) == own  # the caller's priority is untouched


def test_compute_type_auto_is_int8_on_cpu_and_float16_on_cuda() -> None:
    """KURZ_COMPUTE_TYPE=auto picks the fast precision for the device; explicit values stay."""
    assert resolve_compute_type("auto", torch.device("cpu")) == "int8"
    assert resolve_compute_type("auto", torch.device("cuda")) == "float16"
    assert resolve_compute_type("float32", torch.device("cpu")) == "float32"
    assert resolve_compute_type("int8", torch.device("cuda")) == "int8"
    with pytest.raises(ConfigError, match="float16 needs CUDA"):
        resolve_compute_type("float16", torch.device("cpu"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_runs_float16_by_default(tiny_models_dir: Path, tmp_path: Path) -> None:
    """On a GPU the ctranslate2 backend computes in float16 unless told otherwise."""
    model = load_ct2_model(
        str(tiny_models_dir / "translation"),
        device=torch.device("cuda"),
        compute_type="auto",
        out_root=tmp_path,
        threads=1,
    )
    assert model.ref.compute_type == "float16"
    assert CT2Translator(model).translate_batch(["Die Gespräche gehen weiter."])


# --- the conversion cache -----------------------------------------------------------------------


def test_converted_copy_is_reused_on_the_next_start(
    tiny_models_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second start loads the converted copy instead of converting again."""
    first = _ct2_model(tiny_models_dir / "translation", tmp_path, "int8")
    model_bin = first.directory / "model.bin"
    stamp = model_bin.stat().st_mtime_ns

    def no_conversion(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("converted again")

    monkeypatch.setattr(converter.CheckedConverter, "convert", no_conversion)
    second = _ct2_model(tiny_models_dir / "translation", tmp_path, "int8")
    assert second.directory == first.directory
    assert model_bin.stat().st_mtime_ns == stamp
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith(".")] == [
        first.directory.name
    ]


def test_cache_key_holds_model_revision_and_compute_type(
    tiny_models_dir: Path, tmp_path: Path
) -> None:
    """A new model revision or another compute type gets its own converted copy."""
    source = tmp_path / "marian"
    shutil.copytree(tiny_models_dir / "translation", source)
    root = tmp_path / "converted"
    _, revision = resolve_model_dir(str(source))
    int8 = convert_model(source, revision, str(source), "int8", root)
    float32 = convert_model(source, revision, str(source), "float32", root)
    assert int8 != float32
    assert int8.name == converted_dir_name(str(source), revision, "int8")
    assert revision in int8.name and int8.name.endswith("-int8")

    config = json.loads((source / "config.json").read_text(encoding="utf-8"))
    config["kurz_test_note"] = "a new revision"
    (source / "config.json").write_text(json.dumps(config), encoding="utf-8")
    _, new_revision = resolve_model_dir(str(source))
    assert new_revision != revision
    updated = convert_model(source, new_revision, str(source), "int8", root)
    assert updated not in (int8, float32)
    marker = json.loads((updated / conversion.MARKER_NAME).read_text(encoding="utf-8"))
    assert (marker["revision"], marker["quantization"]) == (new_revision, "int8")
    assert converted_dir_name("Helsinki-NLP/opus-mt-de-en", "abc123", "int8") == (
        "Helsinki-NLP--opus-mt-de-en-abc123-int8"
    )


def test_two_workers_starting_together_convert_once(
    tiny_models_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Workers that start at the same moment share one conversion and both load it."""
    conversions = 0
    real = converter.CheckedConverter.convert

    def counting(self: Any, *args: Any, **kwargs: Any) -> Any:
        nonlocal conversions
        conversions += 1
        return real(self, *args, **kwargs)

    monkeypatch.setattr(converter.CheckedConverter, "convert", counting)
    source = tiny_models_dir / "summarization"
    _, revision = resolve_model_dir(str(source))
    results: list[Path] = []
    errors: list[BaseException] = []

    def start() -> None:
        try:
            results.append(convert_model(source, revision, str(source), "int8", tmp_path))
        except BaseException as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(error)

    workers = [threading.Thread(target=start) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert not errors
    assert conversions == 1
    assert len(set(results)) == 1
    assert not [p for p in tmp_path.iterdir() if ".staging-" in p.name]


# --- the decoder start check --------------------------------------------------------------------


def test_marian_conversion_records_its_zero_embedding_start(
    ct2_translation_f32: CT2Model, ct2_summarization_f32: CT2Model
) -> None:
    """Marian's converted start (a zero vector) is checked against transformers' <pad> start."""
    marian = json.loads((ct2_translation_f32.directory / conversion.MARKER_NAME).read_text())
    assert marian["decoder_start"] == {
        "transformers": "<pad>",
        "converted": "</s>",
        "written": "</s>",
        "zero_embedding": True,
    }
    bart = json.loads((ct2_summarization_f32.directory / "config.json").read_text())
    assert bart["decoder_start_token"] == "</s>"  # BART starts from </s> in transformers too


def test_decoder_start_mismatch_is_corrected_or_refused() -> None:
    """A converted model never silently starts decoding from another token than transformers."""
    vocabulary = {"<pad>", "</s>", "<s>", "a"}

    def start(configured: str, *, zero: bool = False, row_zero: bool = False) -> DecoderStart:
        return DecoderStart("<pad>", configured, zero, row_zero)

    assert decide_decoder_start(start("<pad>"), vocabulary) is None
    assert decide_decoder_start(start("</s>", zero=True, row_zero=True), vocabulary) is None
    assert decide_decoder_start(start("</s>"), vocabulary) == "<pad>"
    with pytest.raises(ValueError, match="not in the converted vocabulary"):
        decide_decoder_start(start("</s>"), vocabulary - {"<pad>"})
    with pytest.raises(ValueError, match="not zero"):
        decide_decoder_start(start("</s>", zero=True, row_zero=False), vocabulary)


def test_marian_whose_start_embedding_is_not_zero_is_refused(
    tiny_models_dir: Path, tmp_path: Path
) -> None:
    """A Marian model ctranslate2 would start differently is refused, not served different text."""
    from transformers import AutoModelForSeq2SeqLM

    source = tmp_path / "marian"
    shutil.copytree(tiny_models_dir / "translation", source)
    model = AutoModelForSeq2SeqLM.from_pretrained(str(source))
    with torch.no_grad():
        model.get_decoder().embed_tokens.weight[model.config.decoder_start_token_id] = 0.5
    model.save_pretrained(str(source))
    _, revision = resolve_model_dir(str(source))
    with pytest.raises(ModelUnavailableError, match="not zero"):
        convert_model(source, revision, str(source), "float32", tmp_path / "converted")
    assert not [p for p in (tmp_path / "converted").iterdir() if not p.name.startswith(".")]


def test_unwritable_conversion_directory_is_a_config_error(
    tiny_models_dir: Path, tmp_path: Path
) -> None:
    """A conversion cache that cannot be written stops start-up with the setting to fix."""
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("", encoding="utf-8")
    with pytest.raises(ConfigError, match="KURZ_CONVERTED_MODELS_DIR"):
        _ct2_model(tiny_models_dir / "translation", blocker / "converted", "int8")


def test_decoding_lengths_count_the_end_token_like_transformers() -> None:
    """transformers' max_new_tokens includes the forced end token; ctranslate2's bound does not."""
    assert decoding_lengths(20, 0, forced_eos=True) == (19, 0)
    assert decoding_lengths(20, 20, forced_eos=True) == (19, 19)
    assert decoding_lengths(20, 5, forced_eos=False) == (20, 5)
    assert decoding_lengths(1, 1, forced_eos=True) == (1, 1)


# --- n-best ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["transformers", "ctranslate2"])
def test_nbest_gives_n_ranked_translations_and_its_best_is_the_beam_search_result(
    backend: str,
    hf_translation: LoadedModel,
    ct2_translation_f32: CT2Model,
    seed_sentences: list[str],
) -> None:
    """``translate_nbest`` returns ``n`` translations per sentence, best first; the first is
    what a plain beam search of as many beams finds, on both backends."""
    n = 3
    sentences = seed_sentences[:4]
    if backend == "transformers":
        nbest_engine: TransformersTranslator | CT2Translator = TransformersTranslator(
            hf_translation
        )
        beam_engine: TransformersTranslator | CT2Translator = TransformersTranslator(
            hf_translation, num_beams=n
        )
    else:
        nbest_engine = CT2Translator(ct2_translation_f32)
        beam_engine = CT2Translator(ct2_translation_f32, num_beams=n)
    nbest = nbest_engine.translate_nbest(sentences, n)
    assert [len(options) for options in nbest] == [n] * len(sentences)
    assert [options[0] for options in nbest] == beam_engine.translate_batch(sentences)
    with pytest.raises(ValueError, match="n >= 1"):
        nbest_engine.translate_nbest(sentences, 0)
