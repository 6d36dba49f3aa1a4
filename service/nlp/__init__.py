"""The models and nothing else; it runs in the worker, never in the API process.

``engine`` holds the contracts the pipeline calls and the limits both backends share;
``transformers_engine`` and ``ct2`` (with ``conversion``) are the two backends, side by side;
``backends.load_engines`` picks one from the settings; ``loading`` and ``device`` find models and
place them; ``batching`` (the inference scheduler) and ``summarize`` (the map-reduce) drive any
engine and need no torch.  Outside ``service.dev``, the modules here are the only ones in
``service`` that import torch, and only ``transformers_engine`` and ``converter`` do so when they
are imported: a ctranslate2 worker whose models are converted already never loads torch.
"""
