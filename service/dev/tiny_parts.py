"""What both tiny model builders share: the (tiny) dimensions, and seeded initialization."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch

__all__ = ["DIMENSIONS", "seeded"]

# Sizes shared by both models: the smallest shapes that are still a real multi-layer, multi-head
# encoder-decoder, so that the weights stay in the kilobytes and generation is instant.
DIMENSIONS: dict[str, Any] = {
    "d_model": 32,
    "encoder_layers": 2,
    "decoder_layers": 2,
    "encoder_attention_heads": 2,
    "decoder_attention_heads": 2,
    "encoder_ffn_dim": 64,
    "decoder_ffn_dim": 64,
}


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed torch's CPU generator for one model's initialization, then restore the caller's state.

    Forking keeps a build from silently reseeding the caller's random stream (a test suite's, say),
    while each model still starts from ``torch.manual_seed(seed)`` exactly.  Only CPU state is
    forked: the models are built on the CPU, and touching CUDA here would initialize it for nothing.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield
