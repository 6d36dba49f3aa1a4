"""Tiny random-weight stand-ins for the real translation and summarization models.

The real models (opus-mt-de-en, distilbart) are hundreds of megabytes and come from the Hugging Face
hub, which tests, CI and air-gapped trial runs cannot reach.  ``make_tiny_models`` builds two models
of the same *architectures* with the same *interfaces* (tokenizer classes, special-token ids,
``decoder_start_token_id``, length limits, generation defaults), entirely from the German seed
articles in ``seeds/``, in a few seconds and without network access.  Their output is gibberish,
but every code path that the real models exercise (tokenization, the 512-token translation limit,
map-reduce summarization over a small 256-token window, ``generate``) runs for real.

The build is deterministic: the same seed and seed texts give byte-identical weight and tokenizer
files, so a build can be cached on disk and reused (see ``tiny-build.json``).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sentencepiece
from transformers import (
    GenerationConfig,
    MarianConfig,
    MarianMTModel,
    MarianTokenizer,
)
from transformers.utils import logging as hf_logging

from service.dev.tiny_bart import SUMMARIZATION_MAX_TOKENS, build_summarization
from service.dev.tiny_parts import DIMENSIONS, seeded
from service.nlp.loading import exclusive_lock

__all__ = [
    "BUILD_FORMAT_VERSION",
    "DEFAULT_SEEDS_DIR",
    "MARKER_NAME",
    "SUMMARIZATION_MAX_TOKENS",
    "TRANSLATION_MAX_TOKENS",
    "TinyModelPaths",
    "make_tiny_models",
]

#: Bumped whenever a change to this module alters what a build contains, so that a cached build
#: made by older code is rebuilt instead of reused.
BUILD_FORMAT_VERSION = 2

#: Written last into ``out_dir``; its presence (with matching contents) marks a complete build.
MARKER_NAME = "tiny-build.json"

#: ``seeds/`` at the repository root: German news articles, the only text the build learns from.
DEFAULT_SEEDS_DIR = Path(__file__).resolve().parents[2] / "seeds"

#: Same limit as Helsinki-NLP/opus-mt-de-en, so the sentence packing against it is exercised.
TRANSLATION_MAX_TOKENS = 512


# Tokenizer vocabulary sizes (upper bounds).  The repository's seeds support a little over 1100
# unigram pieces, so 1000 is reached with them; fewer seed texts give a smaller vocabulary.
_SPM_VOCAB_SIZE = 1000

# Marian's special tokens.  opus-mt vocabularies start with ``</s>`` = 0 and ``<unk>`` = 1 and end
# with ``<pad>`` (the last id), which doubles as the decoder start token.
_MARIAN_EOS = "</s>"
_MARIAN_UNK = "<unk>"
_MARIAN_PAD = "<pad>"

# MarianTokenizer warns on every construction when sacremoses is missing; the punctuation
# normalizer it would provide is optional and not part of what the tiny build tests.
_SACREMOSES_WARNING = r"Recommended: pip install sacremoses"

# Files that must be present in each model directory for a cached build to count as complete.
_COMMON_FILES = (
    "config.json",
    "generation_config.json",
    "model.safetensors",
    "tokenizer_config.json",
)
_TRANSLATION_FILES = (*_COMMON_FILES, "source.spm", "target.spm", "vocab.json")
_SUMMARIZATION_FILES = (*_COMMON_FILES, "tokenizer.json")


@dataclass(frozen=True)
class TinyModelPaths:
    """Where the two tiny models live; each directory loads with ``from_pretrained``."""

    translation: Path
    summarization: Path


def make_tiny_models(
    out_dir: Path,
    *,
    seed: int = 0,
    seeds_dir: Path | None = None,
    force: bool = False,
) -> TinyModelPaths:
    """Build (or reuse) the tiny translation and summarization models under ``out_dir``.

    ``out_dir/"translation"`` gets a MarianMT model with a ``MarianTokenizer``;
    ``out_dir/"summarization"`` gets a BART model with a byte-level BPE tokenizer.  Weights are
    random, drawn after ``torch.manual_seed(seed)``; the tokenizers are trained on the ``*.txt``
    files in ``seeds_dir`` (default: the repository's ``seeds/``).

    A complete earlier build with the same seed, seed texts and format version is reused as is,
    which makes repeated calls (every test session, every worker start) cheap; ``force=True``
    rebuilds regardless.  A file lock serializes concurrent callers, and the marker file is written
    only after both models are in place, so an interrupted build is never mistaken for a complete
    one.
    """
    out_dir = Path(out_dir)
    seeds_dir = DEFAULT_SEEDS_DIR if seeds_dir is None else Path(seeds_dir)
    lines = _read_seed_lines(seeds_dir)
    wanted = {
        "format": BUILD_FORMAT_VERSION,
        "seed": seed,
        "seeds_sha256": hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest(),
    }
    paths = TinyModelPaths(
        translation=out_dir / "translation", summarization=out_dir / "summarization"
    )

    out_dir.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(out_dir / ".tiny-build.lock"):
        if not force and _is_complete(out_dir, paths, wanted):
            return paths
        (out_dir / MARKER_NAME).unlink(missing_ok=True)
        with (
            tempfile.TemporaryDirectory(prefix=".tiny-build-", dir=out_dir) as tmp,
            _quiet_progress_bars(),
        ):
            staging = Path(tmp)
            _build_translation(staging / "translation", lines, seed, staging / "spm")
            build_summarization(staging / "summarization", lines, seed)
            for name in ("translation", "summarization"):
                _make_world_readable(staging / name)
                final = out_dir / name
                if final.exists():
                    shutil.rmtree(final)
                (staging / name).rename(final)
        (out_dir / MARKER_NAME).write_text(
            json.dumps(wanted, indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )
    return paths


def _read_seed_lines(seeds_dir: Path) -> list[str]:
    """Return the non-empty, stripped lines of the seed articles in a fixed (sorted) order.

    Sorting makes the training input, and hence the tokenizers, independent of directory order.
    """
    files = sorted(seeds_dir.glob("*.txt"))
    if not files:
        raise FileNotFoundError(f"no seed articles (*.txt) in {seeds_dir}")
    lines: list[str] = []
    for path in files:
        lines.extend(
            stripped
            for line in path.read_text(encoding="utf-8").splitlines()
            if (stripped := line.strip())
        )
    return lines


@contextlib.contextmanager
def _quiet_progress_bars() -> Iterator[None]:
    """Hide transformers' "Writing model shards" bars, which are noise for a sub-second save."""
    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()  # type: ignore[no-untyped-call]


def _make_world_readable(directory: Path) -> None:
    """Give every file mode 0644, whatever the umask.

    safetensors (0.8) writes ``model.safetensors`` with mode 0600, which breaks a build shared
    between users: made by root in an image, say, and read by an unprivileged worker.
    """
    for path in directory.iterdir():
        if path.is_file():
            path.chmod(0o644)


def _is_complete(out_dir: Path, paths: TinyModelPaths, wanted: dict[str, Any]) -> bool:
    """Whether ``out_dir`` holds a finished build made from the same inputs as ``wanted``."""
    try:
        found = json.loads((out_dir / MARKER_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if found != wanted:
        return False
    return all((paths.translation / name).is_file() for name in _TRANSLATION_FILES) and all(
        (paths.summarization / name).is_file() for name in _SUMMARIZATION_FILES
    )


# --- translation: MarianMT ----------------------------------------------------------------------


def _train_sentencepiece(lines: list[str]) -> bytes:
    """Train a unigram SentencePiece model on ``lines`` and return the serialized model.

    Training from an iterator into memory (rather than from a file) keeps temporary paths out of
    the stored trainer spec, and a single thread with no shuffling or sampling makes the bytes
    identical from run to run.  ``</s>`` = 0 and ``<unk>`` = 1 match the ids in Marian's
    ``vocab.json``; there is no ``<s>`` (Marian starts decoding from ``<pad>``).
    """
    buffer = io.BytesIO()
    # Nothing below should draw random numbers; fixing SentencePiece's (process-wide) generator
    # anyway keeps the output reproducible should a future trainer version start to.
    sentencepiece.set_random_generator_seed(0)
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(lines),
        model_writer=buffer,
        model_type="unigram",
        vocab_size=_SPM_VOCAB_SIZE,
        character_coverage=1.0,
        # A soft limit: a smaller seeds directory then yields a smaller vocabulary instead of an
        # error ("Vocabulary size too high").
        hard_vocab_limit=False,
        seed_sentencepiece_size=1_000_000,
        input_sentence_size=0,
        shuffle_input_sentence=False,
        num_threads=1,
        eos_id=0,
        unk_id=1,
        bos_id=-1,
        pad_id=-1,
        eos_piece=_MARIAN_EOS,
        unk_piece=_MARIAN_UNK,
        minloglevel=2,
    )
    return buffer.getvalue()


def _marian_vocab(spm_model: bytes) -> dict[str, int]:
    """Build Marian's ``vocab.json``: every SentencePiece piece at its own id, then ``<pad>``.

    Keeping the piece ids equal to the vocabulary ids means MarianTokenizer's fallback to the
    SentencePiece model (for ids missing from the vocabulary) can never disagree with it.
    """
    processor = sentencepiece.SentencePieceProcessor(model_proto=spm_model)
    vocab = {processor.id_to_piece(i): i for i in range(processor.get_piece_size())}
    if vocab.get(_MARIAN_EOS) != 0 or vocab.get(_MARIAN_UNK) != 1 or _MARIAN_PAD in vocab:
        raise RuntimeError("unexpected special pieces in the trained SentencePiece model")
    vocab[_MARIAN_PAD] = len(vocab)
    return vocab


def _build_translation(target: Path, lines: list[str], seed: int, scratch: Path) -> None:
    """Save a tiny MarianMT model and its ``MarianTokenizer`` into ``target``."""
    spm_model = _train_sentencepiece(lines)
    vocab = _marian_vocab(spm_model)
    scratch.mkdir(parents=True)
    # One model serves both sides, as the source and target text share one German-trained vocab.
    for name in ("source.spm", "target.spm"):
        (scratch / name).write_bytes(spm_model)
    (scratch / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_SACREMOSES_WARNING, category=UserWarning)
        tokenizer = MarianTokenizer(
            source_spm=str(scratch / "source.spm"),
            target_spm=str(scratch / "target.spm"),
            vocab=str(scratch / "vocab.json"),
            source_lang="de",
            target_lang="en",
            model_max_length=TRANSLATION_MAX_TOKENS,
        )
    pad_id = vocab[_MARIAN_PAD]
    eos_id = vocab[_MARIAN_EOS]

    # Mirrors opus-mt-de-en's config.json, shrunk: swish, scaled embeddings, sinusoidal positions,
    # shared and tied embeddings, and decoding that starts from <pad>.
    config = MarianConfig(
        vocab_size=len(vocab),
        decoder_vocab_size=len(vocab),
        max_position_embeddings=TRANSLATION_MAX_TOKENS,
        **DIMENSIONS,
        activation_function="swish",
        scale_embedding=True,
        share_encoder_decoder_embeddings=True,
        tie_word_embeddings=True,
        pad_token_id=pad_id,
        eos_token_id=eos_id,
        decoder_start_token_id=pad_id,
        forced_eos_token_id=eos_id,
    )
    with seeded(seed):
        model = MarianMTModel(config)
    model.generation_config = GenerationConfig(  # type: ignore[no-untyped-call]
        pad_token_id=pad_id,
        eos_token_id=eos_id,
        decoder_start_token_id=pad_id,
        forced_eos_token_id=eos_id,
        # opus-mt forbids generating <pad>, which would otherwise restart the sentence.
        bad_words_ids=[[pad_id]],
        max_length=TRANSLATION_MAX_TOKENS,
        num_beams=1,
    )
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)
