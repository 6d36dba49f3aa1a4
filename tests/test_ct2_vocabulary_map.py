"""The opt-in vocabulary map (KURZ_TRANSLATION_VOCABULARY_MAP) on the tiny models, real CT2."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from service.nlp import ct2
from service.nlp.ct2 import CT2Translator, load_ct2_model
from service.nlp.vocabulary_map import VMAP_FILE, vocabulary_map_text
from service.settings import Settings

CPU = torch.device("cpu")
SENTENCES = [
    "Die Gespräche finden in Washington statt.",
    "Der Bundestag hat am Donnerstag über den Haushalt 2025 abgestimmt.",
    "Berlin",
]


def _translator(tiny_models_dir: Path, root: Path, vocabulary_map: int = 0) -> CT2Translator:
    model = load_ct2_model(
        str(tiny_models_dir / "translation"),
        device=CPU,
        compute_type="int8",
        out_root=root,
        threads=1,
        vocabulary_map=vocabulary_map,
    )
    return CT2Translator(model)


def test_the_map_lists_frequent_tokens_always_and_every_other_token_for_itself() -> None:
    """First line: the frequent tokens after a tab; then one identity rule per other token."""
    text = vocabulary_map_text(
        ["</s>", "▁the", "▁Berlin", "a b", "▁of"], ["▁of", "▁the"], frequent=1
    )
    assert text.splitlines() == ["\t▁of", "</s>\t</s>", "▁the\t▁the", "▁Berlin\t▁Berlin"]


def test_the_setting_is_off_by_default() -> None:
    """Without the variable no map is written or used."""
    assert Settings(_env_file=None).translation_vocabulary_map == 0  # type: ignore[call-arg]


def test_with_the_setting_on_the_map_is_written_and_restricts_the_output(
    tiny_models_dir: Path, tmp_path: Path
) -> None:
    """vmap.txt lands in the converted copy, decoding uses it, and with one frequent token every
    output token is that token, a source piece of the batch, or a special token."""
    translator = _translator(tiny_models_dir, tmp_path, vocabulary_map=1)
    model = translator.model
    assert model.use_vmap
    lines = (model.directory / VMAP_FILE).read_text(encoding="utf-8").splitlines()
    always = lines[0].removeprefix("\t").split(" ")
    assert lines[0].startswith("\t") and len(always) == 1
    outputs = translator.translate_tokens(SENTENCES)
    assert len(outputs) == len(SENTENCES) and all(outputs)
    source = {
        t
        for text in SENTENCES
        for t in ct2._source_tokens(model, [text], translator.tokenizer_lock)[0]
    }
    allowed = source | set(always) | {"<unk>", "</s>", "<s>"}
    assert {t for row in outputs for t in row} <= allowed
    assert all(isinstance(text, str) for text in translator.translate_batch(SENTENCES))


def test_a_larger_map_still_translates_every_sentence(
    tiny_models_dir: Path, tmp_path: Path
) -> None:
    """With the whole tiny vocabulary frequent, the map changes nothing the tiny model can say."""
    full = _translator(tiny_models_dir, tmp_path / "plain")
    mapped = _translator(tiny_models_dir, tmp_path / "mapped", vocabulary_map=100_000)
    assert mapped.translate_tokens(SENTENCES) == full.translate_tokens(SENTENCES)


def test_with_the_setting_off_a_map_left_in_the_copy_changes_nothing(
    tiny_models_dir: Path, tmp_path: Path
) -> None:
    """A converted copy that holds a vmap.txt from an earlier start decodes exactly as a copy that
    never had one when the setting is off (ctranslate2 reads the file, use_vmap stays False)."""
    _translator(tiny_models_dir, tmp_path / "shared", vocabulary_map=1)
    off = _translator(tiny_models_dir, tmp_path / "shared")
    fresh = _translator(tiny_models_dir, tmp_path / "fresh")
    assert not off.model.use_vmap
    assert not (fresh.model.directory / VMAP_FILE).exists()
    assert off.translate_tokens(SENTENCES) == fresh.translate_tokens(SENTENCES)


def test_the_engines_pass_the_setting_to_both_translation_copies_only(
    tiny_models_dir: Path, tmp_path: Path
) -> None:
    """The article translator and the lane's copy use the map; the summarizer never does."""
    settings = Settings(
        models="tiny",
        tiny_models_dir=tiny_models_dir,
        device="cpu",
        backend="ctranslate2",
        compute_type="int8",
        converted_models_dir=tmp_path,
        inference_threads=1,
        translation_vocabulary_map=50,
        _env_file=None,  # type: ignore[call-arg]
    )
    engines = ct2.load_ct2_engines(settings, device=CPU)
    assert isinstance(engines.translation, CT2Translator)
    assert isinstance(engines.urgent_translation, CT2Translator)
    assert engines.translation.model.use_vmap and engines.urgent_translation.model.use_vmap
    assert not engines.summarization.model.use_vmap  # type: ignore[attr-defined]
    assert engines.translation.translate_batch(SENTENCES[:1])[0] is not None


@pytest.mark.parametrize("compute_type", ["float16", "int8_float16"])
def test_gpu_compute_types_are_refused_on_a_cpu(compute_type: str) -> None:
    """float16 and int8_float16 need CUDA: a CPU start fails with the settings that work."""
    from service.errors import ConfigError
    from service.nlp.conversion import resolve_compute_type

    with pytest.raises(ConfigError, match=compute_type):
        resolve_compute_type(compute_type, CPU)
