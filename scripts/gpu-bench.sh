#!/usr/bin/env bash
# The pipeline benchmark on a CUDA GPU (issue 17), in one command of under ten minutes:
#
#   scripts/gpu-bench.sh [OUT.json]      default: benchmarks/gpu-run.json
#
# Runs `python -m benchmarks pipeline --device cuda` three times, on the real-size random-weight
# models (benchmarks/models.py), greedy and with the 4-beam article:
#   ctranslate2 float16, ctranslate2 int8_float16, transformers float16;
# and writes every figure of the three into one JSON file, each under its own key
# (`ct2_float16`, `ct2_int8_float16`, `transformers_float16`).  The batch-1 baseline of each run
# is transformers float32 on the same GPU, one sentence at a time.
#
# What it needs beyond `make install` (which installs CPU wheels): a CUDA build of torch and a
# ctranslate2 wheel that finds the CUDA 12 runtime, cuBLAS and cuDNN 9 (PyPI's ctranslate2 4.x
# wheels link them; the nvidia-*-cu12 pip packages or a CUDA image provide them).  This script
# installs nothing.  It stops at once, with exit status 2, when torch or ctranslate2 sees no
# CUDA device.
#
# PYTHON (default .venv/bin/python) is the interpreter; extra arguments for the pipeline
# benchmark go in PIPELINE_ARGS (default: --sample-every 8 --beam4-seeds 1).
set -euo pipefail

cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
OUT=${1:-benchmarks/gpu-run.json}
read -r -a EXTRA <<<"${PIPELINE_ARGS:---sample-every 8 --beam4-seeds 1}"

if ! "$PYTHON" - <<'PY'
import sys

import ctranslate2
import torch

problems = []
if not torch.cuda.is_available():
    problems.append(f"torch {torch.__version__} sees no CUDA device (a CUDA build is needed)")
if ctranslate2.get_cuda_device_count() < 1:
    problems.append(
        f"ctranslate2 {ctranslate2.__version__} sees no CUDA device "
        "(it needs the CUDA 12 runtime, cuBLAS and cuDNN 9 libraries)"
    )
if problems:
    print("gpu-bench: no CUDA device:\n  " + "\n  ".join(problems), file=sys.stderr)
    sys.exit(2)
print(f"gpu-bench: {torch.cuda.get_device_name(0)}", file=sys.stderr)
PY
then
    exit 2
fi

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

run() {  # NAME BACKEND COMPUTE_TYPE
    echo "gpu-bench: $1 ($(date -u +%H:%M:%S))" >&2
    "$PYTHON" -m benchmarks pipeline --device cuda --backend "$2" --compute-type "$3" \
        "${EXTRA[@]}" --output "$scratch/$1.json"
}

status=0
run ct2_float16 ctranslate2 float16 || status=1
run ct2_int8_float16 ctranslate2 int8_float16 || status=1
run transformers_float16 transformers float16 || status=1

"$PYTHON" - "$scratch" "$OUT" <<'PY'
import json
import sys
from pathlib import Path

scratch, out = Path(sys.argv[1]), Path(sys.argv[2])
runs = {path.stem: json.loads(path.read_text()) for path in sorted(scratch.glob("*.json"))}
out.write_text(json.dumps(runs, indent=2, sort_keys=True) + "\n")
for name, figures in runs.items():
    pipeline = figures.get("pipeline", figures)
    keys = ("translation_pipeline_source_tokens_per_s", "translation_speedup_vs_batch1")
    print(name, {key: pipeline.get(key) for key in keys})
print(f"gpu-bench: figures in {out}")
PY
exit "$status"
