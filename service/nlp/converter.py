"""ctranslate2's ``TransformersConverter``, recording how the source model starts decoding.

The one module of the ctranslate2 backend that needs torch and transformers' model classes:
converting reads the source model's float32 weights through them.  ``service.nlp.conversion``
imports it only when a copy has to be made (at image build or a worker's first start), so a
worker whose models are converted already runs without torch in memory.  Why the decoder start
is checked at all is told in ``service.nlp.conversion``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from ctranslate2.converters import TransformersConverter

from service.nlp.conversion import DecoderStart
from service.nlp.loading import quiet_tokenizer

__all__ = ["CheckedConverter"]


class CheckedConverter(TransformersConverter):  # type: ignore[misc]  # ctranslate2 has no type stubs
    """``TransformersConverter`` that also records how the source model starts decoding.

    It keeps the loaded source model just long enough to compare its decoder start with the
    converted specification's, and fills in config attributes that ctranslate2's BART loader
    reads but transformers 5 no longer defines.
    """

    def __init__(self, source_dir: Path) -> None:
        super().__init__(str(source_dir))
        self._model: Any = None
        self._tokenizer: Any = None
        self.decoder_start: DecoderStart | None = None

    def load_model(self, model_class: Any, model_name_or_path: str, **kwargs: Any) -> Any:
        model = super().load_model(model_class, model_name_or_path, **kwargs)
        config = model.config
        if config.model_type == "bart":
            # BART is post-norm with a layer norm after the embeddings; transformers 5 dropped
            # these two flags from BartConfig, but ctranslate2 4.x still reads them.
            for name, value in (("normalize_before", False), ("normalize_embedding", True)):
                if not hasattr(config, name):
                    setattr(config, name, value)
        self._model = model
        return model

    def load_tokenizer(self, tokenizer_class: Any, model_name_or_path: str, **kwargs: Any) -> Any:
        self._tokenizer = quiet_tokenizer(tokenizer_class, model_name_or_path, **kwargs)
        return self._tokenizer

    def _load(self) -> Any:
        # ``Converter._load`` is the documented hook for subclasses; the specification is only
        # reachable here, before it is quantized and saved.
        spec = super()._load()
        try:
            self.decoder_start = _decoder_start(spec, self._model, self._tokenizer)
        finally:
            self._model = self._tokenizer = None  # the float32 source model is not needed after
        return spec


def _decoder_start(spec: Any, model: Any, tokenizer: Any) -> DecoderStart:
    """Compare the converted specification's decoder start with the source model's."""
    start_id = model.config.decoder_start_token_id
    if start_id is None:
        start_id = model.generation_config.decoder_start_token_id
    expected = str(tokenizer.convert_ids_to_tokens(int(start_id)))
    decoder = model.get_decoder()
    embeddings = getattr(decoder, "embed_tokens", None)
    row_is_zero = False
    if embeddings is not None and int(start_id) < embeddings.weight.shape[0]:
        row_is_zero = bool(torch.count_nonzero(embeddings.weight[int(start_id)]) == 0)
    return DecoderStart(
        expected=expected,
        configured=str(spec.config.decoder_start_token),
        zero_embedding=bool(getattr(spec.decoder, "start_from_zero_embedding", False)),
        expected_row_is_zero=row_is_zero,
    )
