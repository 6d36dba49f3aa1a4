"""Random-weight models with the real models' architectures, for honest CPU timings offline.

The hub models (opus-mt-de-en, distilbart-cnn-12-6) cannot be downloaded here, and the tiny
test models are far too small to say anything about speed.  What decides inference cost is the
architecture (widths, depths, heads, vocabulary size) and how many tokens go in and come out,
not the values of the weights.  So this module builds models with the real configurations and
random weights, and the benchmarks fix every output length (``benchmarks.fixed_length``),
which makes each model do exactly the work the real one would do.

Tokenizers come from the tiny models (``make_tiny_models``): their ids all lie inside the real
vocabularies, so embedding look-ups and the output projection have the real shapes.  The one
adjustment to the random weights is ``final_logits_bias`` (a buffer both architectures add to
the logits at every step, so it costs the same whatever it holds): ids the small tokenizer does
not know are pushed far down, so that the generated ids decode into text (otherwise nearly every
id would decode to nothing), and for the translator word-initial pieces too (see
``_mask_word_starts``), so that a translation decodes to about as many summarizer tokens as it
has generated tokens.  The summary stage then reads as much text as it would behind a real
translator.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from transformers import (
    AutoTokenizer,
    BartConfig,
    BartForConditionalGeneration,
    GenerationConfig,
    MarianConfig,
    MarianMTModel,
)
from transformers.utils import logging as hf_logging

from service.dev.tiny import make_tiny_models

__all__ = ["BART_DIMENSIONS", "MARIAN_DIMENSIONS", "RealSizeModels", "build_real_size_models"]

#: Helsinki-NLP/opus-mt-de-en, from its config.json.
MARIAN_DIMENSIONS: dict[str, int] = {
    "vocab_size": 58101,
    "d_model": 512,
    "encoder_layers": 6,
    "decoder_layers": 6,
    "attention_heads": 8,
    "ffn_dim": 2048,
    "max_position_embeddings": 512,
}
#: sshleifer/distilbart-cnn-12-6, from its config.json.
BART_DIMENSIONS: dict[str, int] = {
    "vocab_size": 50264,
    "d_model": 1024,
    "encoder_layers": 12,
    "decoder_layers": 6,
    "attention_heads": 16,
    "ffn_dim": 4096,
    "max_position_embeddings": 1024,
}

#: Added to the logits of ids the borrowed tokenizer cannot decode: never chosen, same cost.
_UNKNOWN_ID_BIAS = -1.0e4
#: SentencePiece's word-boundary marker, which begins every word-initial piece.
_WORD_START = "\u2581"


@dataclass(frozen=True, slots=True)
class RealSizeModels:
    """Where the two models were saved, their sizes, and how long building them took."""

    translation: Path
    summarization: Path
    translation_parameters: int
    summarization_parameters: int
    build_s: float


def build_real_size_models(out_dir: Path, *, seed: int = 0) -> RealSizeModels:
    """Save a real-size MarianMT and a real-size distilBART (random weights) under ``out_dir``.

    Each directory loads with ``from_pretrained`` and therefore through the service's own
    ``load_seq2seq``, like a hub snapshot would.
    """
    started = time.perf_counter()
    out_dir = Path(out_dir)
    tiny = make_tiny_models(out_dir / "tiny", seed=seed)
    translation = out_dir / "translation"
    summarization = out_dir / "summarization"
    marian_parameters = _build_marian(tiny.translation, translation, seed)
    bart_parameters = _build_bart(tiny.summarization, summarization, seed)
    return RealSizeModels(
        translation=translation,
        summarization=summarization,
        translation_parameters=marian_parameters,
        summarization_parameters=bart_parameters,
        build_s=time.perf_counter() - started,
    )


def _mask_unknown_ids(bias: torch.Tensor, known: int) -> None:
    """Keep generation inside the first ``known`` ids (see the module docstring)."""
    with torch.no_grad():
        bias.zero_()
        bias[:, known:] = _UNKNOWN_ID_BIAS


def _mask_word_starts(bias: torch.Tensor, vocab: dict[str, int]) -> None:
    """Keep the random translator from starting new words, so its output keeps its length.

    A random decoder falls into repeating one piece at once.  A repeated *word* ("Kon Kon Kon")
    is collapsed to one word by the translator's loop guard (``collapse_repeats``), which would
    leave the summarizer almost nothing to read; a repeated *piece* inside one word is not, and
    decodes to about one summarizer token per generated token, as a real translation does.
    """
    starts = [index for piece, index in vocab.items() if piece.startswith(_WORD_START)]
    with torch.no_grad():
        bias[:, starts] = _UNKNOWN_ID_BIAS


def _build_marian(tiny_dir: Path, target: Path, seed: int) -> int:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*sacremoses.*", category=UserWarning)
        tokenizer = AutoTokenizer.from_pretrained(str(tiny_dir))
    pad_id = int(tokenizer.pad_token_id)
    eos_id = int(tokenizer.eos_token_id)
    dims = MARIAN_DIMENSIONS
    if len(tokenizer) > dims["vocab_size"]:
        raise RuntimeError("the borrowed Marian tokenizer is larger than the real vocabulary")
    config = MarianConfig(
        vocab_size=dims["vocab_size"],
        decoder_vocab_size=dims["vocab_size"],
        d_model=dims["d_model"],
        encoder_layers=dims["encoder_layers"],
        decoder_layers=dims["decoder_layers"],
        encoder_attention_heads=dims["attention_heads"],
        decoder_attention_heads=dims["attention_heads"],
        encoder_ffn_dim=dims["ffn_dim"],
        decoder_ffn_dim=dims["ffn_dim"],
        max_position_embeddings=dims["max_position_embeddings"],
        activation_function="swish",
        scale_embedding=True,
        share_encoder_decoder_embeddings=True,
        tie_word_embeddings=True,
        pad_token_id=pad_id,
        eos_token_id=eos_id,
        decoder_start_token_id=pad_id,
        forced_eos_token_id=eos_id,
    )
    torch.manual_seed(seed)
    model = MarianMTModel(config)
    _mask_unknown_ids(model.final_logits_bias, len(tokenizer))
    _mask_word_starts(model.final_logits_bias, tokenizer.get_vocab())
    # As opus-mt-de-en's generation_config.json, except num_beams (the pipeline passes its own).
    model.generation_config = GenerationConfig(  # type: ignore[no-untyped-call]
        pad_token_id=pad_id,
        eos_token_id=eos_id,
        decoder_start_token_id=pad_id,
        forced_eos_token_id=eos_id,
        bad_words_ids=[[pad_id]],
        max_length=dims["max_position_embeddings"],
        num_beams=1,
    )
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)
    return sum(p.numel() for p in model.parameters())


def _build_bart(tiny_dir: Path, target: Path, seed: int) -> int:
    dims = BART_DIMENSIONS
    # The tiny summarizer reads 256 tokens (to exercise map-reduce cheaply); distilBART reads
    # 1024, and the chunk size decides how much work the summary stage does.
    tokenizer = AutoTokenizer.from_pretrained(
        str(tiny_dir), model_max_length=dims["max_position_embeddings"]
    )
    if len(tokenizer) > dims["vocab_size"]:
        raise RuntimeError("the borrowed BART tokenizer is larger than the real vocabulary")
    bos_id, pad_id, eos_id = (
        int(tokenizer.bos_token_id),
        int(tokenizer.pad_token_id),
        int(tokenizer.eos_token_id),
    )
    config = BartConfig(
        vocab_size=dims["vocab_size"],
        d_model=dims["d_model"],
        encoder_layers=dims["encoder_layers"],
        decoder_layers=dims["decoder_layers"],
        encoder_attention_heads=dims["attention_heads"],
        decoder_attention_heads=dims["attention_heads"],
        encoder_ffn_dim=dims["ffn_dim"],
        decoder_ffn_dim=dims["ffn_dim"],
        max_position_embeddings=dims["max_position_embeddings"],
        activation_function="gelu",
        scale_embedding=False,
        pad_token_id=pad_id,
        bos_token_id=bos_id,
        eos_token_id=eos_id,
        decoder_start_token_id=eos_id,
        forced_eos_token_id=eos_id,
    )
    torch.manual_seed(seed)
    model = BartForConditionalGeneration(config)
    _mask_unknown_ids(model.final_logits_bias, len(tokenizer))
    # As distilbart-cnn-12-6's generation settings; the pipeline passes lengths and beams.
    model.generation_config = GenerationConfig(  # type: ignore[no-untyped-call]
        pad_token_id=pad_id,
        bos_token_id=bos_id,
        eos_token_id=eos_id,
        decoder_start_token_id=eos_id,
        forced_bos_token_id=bos_id,
        forced_eos_token_id=eos_id,
        num_beams=1,
        min_length=56,
        max_length=142,
        no_repeat_ngram_size=3,
    )
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)
    return sum(p.numel() for p in model.parameters())


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.models DIR``: build into DIR, print what was built as JSON.

    The benchmarks build in a child process this way, so that building (which holds a model in
    memory twice while saving it) never counts towards the measuring process's peak memory.
    """
    parser = argparse.ArgumentParser(prog="python -m benchmarks.models", description=main.__doc__)
    parser.add_argument("directory", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--convertible",
        action="store_true",
        help="the copies ctranslate2 can convert too (benchmarks.ct2_bench.prepare_ct2_models)",
    )
    args = parser.parse_args(argv)
    hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    if args.convertible:
        from benchmarks.ct2_bench import prepare_ct2_models

        prepared = prepare_ct2_models(args.directory, seed=args.seed)
        built = RealSizeModels(
            translation=prepared.translation,
            summarization=prepared.summarization,
            translation_parameters=prepared.translation_parameters,
            summarization_parameters=prepared.summarization_parameters,
            build_s=prepared.build_s,
        )
    else:
        built = build_real_size_models(args.directory, seed=args.seed)
    print(json.dumps({key: str(value) for key, value in asdict(built).items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
