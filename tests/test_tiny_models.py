"""The tiny offline models: deterministic, cached, loadable offline, with the real limits."""

from __future__ import annotations

import json
import re
import socket
import unicodedata
from pathlib import Path
from typing import Any

import huggingface_hub.constants
import pytest
import torch
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer, GenerationConfig

from service.dev.tiny import (
    DEFAULT_SEEDS_DIR,
    MARKER_NAME,
    SUMMARIZATION_MAX_TOKENS,
    TRANSLATION_MAX_TOKENS,
    TinyModelPaths,
    make_tiny_models,
)

# MarianTokenizer warns on every construction when the optional sacremoses package is missing;
# that says nothing about the tiny build, so only this one warning is let through here.
pytestmark = pytest.mark.filterwarnings("ignore:Recommended. pip install sacremoses:UserWarning")

# Every file the build writes, compared byte for byte between builds.
BUILT_FILES = [
    "translation/model.safetensors",
    "translation/source.spm",
    "translation/target.spm",
    "translation/vocab.json",
    "summarization/model.safetensors",
    "summarization/tokenizer.json",
]


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyModelPaths:
    """One seed-0 build shared by the read-only tests."""
    return make_tiny_models(tmp_path_factory.mktemp("tiny-models"), seed=0)


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Hub offline mode plus a socket guard; returns the connection attempts the guard saw.

    huggingface_hub reads HF_HUB_OFFLINE once, at import, so the environment variable alone
    would not take effect in an already-running session: the constant is patched as well, and
    any socket connection is refused and recorded so that the test can assert there was none.
    """
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    attempts: list[Any] = []

    def refuse(_sock: socket.socket, address: Any) -> None:
        attempts.append(address)
        raise OSError("network access is disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    return attempts


def _first_seed_sentence() -> str:
    """A full German sentence from the seeds: the text the tokenizer was trained on."""
    text = sorted(DEFAULT_SEEDS_DIR.glob("*.txt"))[0].read_text(encoding="utf-8")
    sentences = re.findall(r"[A-ZÄÖÜ][^.!?\n]{40,}[.!?]", text)
    assert sentences, "the first seed article has no sentence of 40+ characters"
    return str(sentences[0])


def _normalized(text: str) -> str:
    """What SentencePiece's nmt_nfkc normalizer leaves of ``text``: NFKC, single spaces."""
    return " ".join(unicodedata.normalize("NFKC", text).split())


def test_build_writes_both_model_directories(tiny: TinyModelPaths) -> None:
    """The build puts weights, configs and tokenizer files under translation/ and summarization/."""
    root = tiny.translation.parent
    assert tiny.translation == root / "translation"
    assert tiny.summarization == root / "summarization"
    for relative in [*BUILT_FILES, "translation/config.json", "summarization/config.json"]:
        assert (root / relative).is_file(), relative
    marker = json.loads((root / MARKER_NAME).read_text(encoding="utf-8"))
    assert marker["seed"] == 0


def test_same_seed_gives_byte_identical_files(tiny: TinyModelPaths, tmp_path: Path) -> None:
    """Two builds with the same seed write byte-identical weights and tokenizer files."""
    again = make_tiny_models(tmp_path / "again", seed=0)
    for relative in BUILT_FILES:
        first = (tiny.translation.parent / relative).read_bytes()
        second = (again.translation.parent / relative).read_bytes()
        assert first == second, relative


def test_different_seed_gives_different_weights(tiny: TinyModelPaths, tmp_path: Path) -> None:
    """Another seed changes the weights of both models (the tokenizers stay the same)."""
    other = make_tiny_models(tmp_path / "other", seed=1)
    for name in ("translation", "summarization"):
        first = (tiny.translation.parent / name / "model.safetensors").read_bytes()
        second = (other.translation.parent / name / "model.safetensors").read_bytes()
        assert first != second, name
    assert (tiny.translation / "vocab.json").read_bytes() == (
        other.translation / "vocab.json"
    ).read_bytes()


def test_build_leaves_the_callers_random_state_alone(tmp_path: Path) -> None:
    """Seeding the models does not reseed the caller's torch random stream."""
    torch.manual_seed(1234)
    expected = torch.rand(4)
    torch.manual_seed(1234)
    make_tiny_models(tmp_path / "models", seed=0)
    assert torch.equal(torch.rand(4), expected)


@pytest.mark.parametrize("name", ["translation", "summarization"])
def test_models_load_offline_and_generate(
    tiny: TinyModelPaths, offline: list[Any], name: str
) -> None:
    """Both directories load offline with the Auto classes and generate decodable text."""
    directory = getattr(tiny, name)
    tokenizer = AutoTokenizer.from_pretrained(directory)
    model = AutoModelForSeq2SeqLM.from_pretrained(directory)
    inputs = tokenizer(["Ein kurzer Satz."], return_tensors="pt")
    output = model.generate(**inputs, max_new_tokens=8)
    assert 1 < output.shape[1] <= 1 + 8
    (decoded,) = tokenizer.batch_decode(output, skip_special_tokens=True)
    assert isinstance(decoded, str)
    assert offline == []


def test_marian_tokenizer_round_trips_a_seed_sentence(tiny: TinyModelPaths) -> None:
    """A German seed sentence encodes without <unk>, ends in </s> and decodes back to itself."""
    tokenizer = AutoTokenizer.from_pretrained(tiny.translation)
    sentence = _first_seed_sentence()
    ids = tokenizer(sentence)["input_ids"]
    assert tokenizer.unk_token_id not in ids
    assert ids[-1] == tokenizer.eos_token_id
    decoded = tokenizer.decode(ids, skip_special_tokens=True)
    assert isinstance(decoded, str)
    assert _normalized(decoded) == _normalized(sentence)


def test_bart_tokenizer_round_trips_a_seed_sentence(tiny: TinyModelPaths) -> None:
    """The byte-level summarization tokenizer wraps text in <s>...</s> and decodes it exactly."""
    tokenizer = AutoTokenizer.from_pretrained(tiny.summarization)
    sentence = _first_seed_sentence()
    ids = tokenizer(sentence)["input_ids"]
    assert ids[0] == tokenizer.bos_token_id == 0
    assert ids[-1] == tokenizer.eos_token_id == 2
    assert tokenizer.unk_token_id not in ids
    assert tokenizer.decode(ids, skip_special_tokens=True) == sentence


@pytest.mark.parametrize(
    ("name", "limit"),
    [("translation", TRANSLATION_MAX_TOKENS), ("summarization", SUMMARIZATION_MAX_TOKENS)],
)
def test_length_limits_are_as_declared(tiny: TinyModelPaths, name: str, limit: int) -> None:
    """Translation takes 512 tokens and summarization 256, in the config and the tokenizer alike."""
    directory = getattr(tiny, name)
    tokenizer = AutoTokenizer.from_pretrained(directory)
    model = AutoModelForSeq2SeqLM.from_pretrained(directory)
    assert model.config.max_position_embeddings == limit
    assert tokenizer.model_max_length == limit

    # Truncation stops at the limit, and the encoder accepts a full window.
    long_text = " ".join([_first_seed_sentence()] * 200)
    inputs = tokenizer([long_text], truncation=True, return_tensors="pt")
    assert inputs["input_ids"].shape == (1, limit)
    with torch.no_grad():
        encoded = model.get_encoder()(**inputs).last_hidden_state
    assert encoded.shape[:2] == (1, limit)


def test_translation_special_ids_follow_opus_mt(tiny: TinyModelPaths) -> None:
    """</s>=0, <unk>=1, <pad> last; decoding starts from <pad>, which may never be generated."""
    tokenizer = AutoTokenizer.from_pretrained(tiny.translation)
    model = AutoModelForSeq2SeqLM.from_pretrained(tiny.translation)
    generation = GenerationConfig.from_pretrained(tiny.translation)
    pad = tokenizer.pad_token_id
    assert (tokenizer.eos_token_id, tokenizer.unk_token_id) == (0, 1)
    assert pad == model.config.vocab_size - 1 == len(tokenizer) - 1
    assert model.config.decoder_start_token_id == pad == model.config.pad_token_id
    assert generation.decoder_start_token_id == pad
    assert generation.bad_words_ids == [[pad]]
    assert generation.max_length == TRANSLATION_MAX_TOKENS
    assert generation.num_beams == 1


def test_summarization_special_ids_follow_bart(tiny: TinyModelPaths) -> None:
    """<s> <pad> </s> <unk> <mask> are 0..4; decoding starts from </s> and forces <s> first."""
    tokenizer = AutoTokenizer.from_pretrained(tiny.summarization)
    model = AutoModelForSeq2SeqLM.from_pretrained(tiny.summarization)
    generation = GenerationConfig.from_pretrained(tiny.summarization)
    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    assert tokenizer.convert_tokens_to_ids(specials) == [0, 1, 2, 3, 4]
    assert model.config.vocab_size == len(tokenizer)
    assert model.config.decoder_start_token_id == generation.decoder_start_token_id == 2
    assert generation.forced_bos_token_id == 0
    assert generation.forced_eos_token_id == generation.eos_token_id == 2
    assert (generation.num_beams, generation.min_length, generation.max_length) == (1, 0, 64)
    assert generation.no_repeat_ngram_size == 3


def test_second_call_with_same_seed_reuses_the_build(tmp_path: Path) -> None:
    """A repeat call with the same seed rewrites nothing; force=True rebuilds."""
    paths = make_tiny_models(tmp_path, seed=0)
    weights = paths.translation / "model.safetensors"
    before = weights.stat().st_mtime_ns
    sentinel = paths.translation / "sentinel"
    sentinel.touch()

    assert make_tiny_models(tmp_path, seed=0) == paths
    assert weights.stat().st_mtime_ns == before
    assert sentinel.exists()

    make_tiny_models(tmp_path, seed=0, force=True)
    assert not sentinel.exists()


def test_changed_seed_rebuilds_in_place(tmp_path: Path) -> None:
    """Asking an existing build for another seed replaces it with that seed's weights."""
    paths = make_tiny_models(tmp_path, seed=0)
    seed0 = (paths.summarization / "model.safetensors").read_bytes()
    make_tiny_models(tmp_path, seed=1)
    assert (paths.summarization / "model.safetensors").read_bytes() != seed0
    assert json.loads((tmp_path / MARKER_NAME).read_text(encoding="utf-8"))["seed"] == 1


def test_incomplete_build_is_rebuilt(tmp_path: Path) -> None:
    """A build missing a file (an interrupted or damaged one) is rebuilt, not reused."""
    paths = make_tiny_models(tmp_path, seed=0)
    weights = paths.summarization / "model.safetensors"
    expected = weights.read_bytes()
    weights.unlink()
    make_tiny_models(tmp_path, seed=0)
    assert weights.read_bytes() == expected


def test_changed_seed_texts_rebuild(tmp_path: Path) -> None:
    """Edited seed articles give a new tokenizer, even with the same seed and directory."""
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    article = seeds / "article.txt"
    article.write_text(_first_seed_sentence() + "\n", encoding="utf-8")
    out = tmp_path / "models"
    paths = make_tiny_models(out, seeds_dir=seeds)
    vocab_before = (paths.translation / "vocab.json").read_bytes()
    article.write_text(
        _first_seed_sentence()
        + "\nZwölf Boxkämpfer jagen Viktor quer über den großen Sylter Deich.\n",
        encoding="utf-8",
    )
    make_tiny_models(out, seeds_dir=seeds)
    assert (paths.translation / "vocab.json").read_bytes() != vocab_before


def test_small_seed_texts_still_build(tmp_path: Path, offline: list[Any]) -> None:
    """A single short article is enough: the vocabularies shrink instead of the build failing."""
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "article.txt").write_text(_first_seed_sentence() + "\n", encoding="utf-8")
    paths = make_tiny_models(tmp_path / "models", seeds_dir=seeds)
    tokenizer = AutoTokenizer.from_pretrained(paths.translation)
    model = AutoModelForSeq2SeqLM.from_pretrained(paths.translation)
    assert model.config.vocab_size == len(tokenizer) < 1000
    output = model.generate(
        **tokenizer(["Ein kurzer Satz."], return_tensors="pt"), max_new_tokens=4
    )
    assert output.shape[1] > 1


def test_missing_seed_texts_are_reported(tmp_path: Path) -> None:
    """A seeds directory without *.txt files fails with a message naming it."""
    with pytest.raises(FileNotFoundError, match="no seed articles"):
        make_tiny_models(tmp_path / "models", seeds_dir=tmp_path)
