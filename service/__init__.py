"""Kurzgefasst: German news articles in, English translations and summaries out.

The package is split by process: ``service.api.app`` and its routes run in the API process and never
import torch; ``service.worker`` and ``service.nlp`` run in the worker, where the models live.
"""

__version__ = "0.1.0"

#: Bumped whenever a change alters what the pipeline produces for the same input and models,
#: so that cached results made by an older pipeline are not served as if they were current.
#: 2: results carry fact checks (checks, summary_flags); 3: a glossary's wrong spellings are
#: forbidden to the decoder in the sentences that require its target forms.
PIPELINE_VERSION = "3"
