"""The tiny summarizer: a random BART with a byte-level BPE trained on the seeds."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from tokenizers import ByteLevelBPETokenizer
from transformers import BartConfig, BartForConditionalGeneration, BartTokenizer, GenerationConfig

from service.dev.tiny_parts import DIMENSIONS, seeded

__all__ = ["SUMMARIZATION_MAX_TOKENS", "SUMMARIZER_EOS_BIAS", "build_summarization"]

#: Deliberately tiny (real BART has 1024) so that map-reduce over long articles is cheap to test.
SUMMARIZATION_MAX_TOKENS = 256
#: Upper bound of the byte-level BPE vocabulary.
_BPE_VOCAB_SIZE = 1000
#: BART's special tokens, in the order that gives them BART's ids 0..4.
_BART_SPECIALS = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")
_BART_BOS, _BART_PAD, _BART_EOS = 0, 1, 2
#: Logit bias on the tiny summarizer's </s> (see ``build_summarization``).
SUMMARIZER_EOS_BIAS = 0.2


def _train_byte_level_bpe(lines: list[str]) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Train a byte-level BPE on ``lines`` and return its vocabulary and merges.

    Byte level means any text encodes without ``<unk>``, as with BART's own GPT-2 vocabulary, and
    passing the special tokens first gives them BART's ids 0..4.
    """
    trainer = ByteLevelBPETokenizer()
    trainer.train_from_iterator(
        lines,
        vocab_size=_BPE_VOCAB_SIZE,
        min_frequency=2,
        special_tokens=list(_BART_SPECIALS),
        show_progress=False,
    )
    model = json.loads(trainer.to_str())["model"]
    vocab: dict[str, int] = model["vocab"]
    merges = [_as_pair(merge) for merge in model["merges"]]
    if [vocab.get(token) for token in _BART_SPECIALS] != list(range(len(_BART_SPECIALS))):
        raise RuntimeError("BPE trainer did not give BART's special tokens the ids 0..4")
    return vocab, merges


def _as_pair(merge: str | list[str]) -> tuple[str, str]:
    """Normalize one serialized merge (``"a b"`` in older tokenizers, ``["a", "b"]`` now)."""
    first, second = merge.split(" ", 1) if isinstance(merge, str) else merge
    return first, second


def build_summarization(target: Path, lines: list[str], seed: int) -> None:
    """Save a tiny BART model and its byte-level BPE tokenizer into ``target``."""
    vocab, merges = _train_byte_level_bpe(lines)
    tokenizer = BartTokenizer(
        vocab=vocab,
        # Pairs are what the tokenizers backend takes (and what transformers itself passes when it
        # loads a tokenizer.json); the annotation only lists the file-path and "a b" forms.
        merges=merges,  # type: ignore[arg-type]
        model_max_length=SUMMARIZATION_MAX_TOKENS,
    )

    # Mirrors distilbart-cnn's ids: decoding starts from </s> and the first generated token is
    # forced to <s>, as BART was trained.
    config = BartConfig(
        vocab_size=len(vocab),
        max_position_embeddings=SUMMARIZATION_MAX_TOKENS,
        **DIMENSIONS,
        pad_token_id=_BART_PAD,
        bos_token_id=_BART_BOS,
        eos_token_id=_BART_EOS,
        decoder_start_token_id=_BART_EOS,
        forced_eos_token_id=_BART_EOS,
        # Not read by transformers 5, but present in distilbart's config.json and required by
        # ctranslate2's BART converter (it builds a post-norm transformer from this flag).
        normalize_before=False,  # type: ignore[call-arg]
    )
    with seeded(seed):
        model = BartForConditionalGeneration(config)
    # Random weights never choose end-of-sequence, so every summary would run to its length cap
    # and map-reduce over long articles would crawl.  A small bias on </s> makes the tiny
    # summarizer stop after about 30 tokens, as a real one stops after a few sentences.
    with torch.no_grad():
        model.final_logits_bias[0, _BART_EOS] = SUMMARIZER_EOS_BIAS
    model.generation_config = GenerationConfig(  # type: ignore[no-untyped-call]
        pad_token_id=_BART_PAD,
        bos_token_id=_BART_BOS,
        eos_token_id=_BART_EOS,
        decoder_start_token_id=_BART_EOS,
        forced_bos_token_id=_BART_BOS,
        forced_eos_token_id=_BART_EOS,
        num_beams=1,
        min_length=0,
        max_length=64,
        no_repeat_ngram_size=3,
    )
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)
