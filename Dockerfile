# syntax=docker/dockerfile:1
# Kurzgefasst: one image for both processes of the service.
#
#   docker build -t kurzgefasst:local .                     models baked in and converted, no torch
#   docker run -p 8000:8000 kurzgefasst:local               the API (needs KURZ_REDIS_URL)
#   docker run kurzgefasst:local worker                     a worker (same image, other command)
#
# Build arguments:
#   BAKE_MODELS=1        run `python -m service download-models` at build time, so that a
#                        container starts without internet (0: fetched, and converted for
#                        ctranslate2, on the worker's first start; compose keeps both in volumes;
#                        `tiny`: the tiny offline models, built from seeds/, for checking the
#                        image and the stack without model weights; run with KURZ_MODELS=tiny)
#   KURZ_BACKEND         `ctranslate2` (the default) also converts the baked models at build
#                        time; `transformers` skips that, and keeps torch in the image
#   BASE_IMAGE           a CUDA base for GPU workers (see compose.gpu.yml); needs Python 3.11,
#                        or an Ubuntu whose apt has python3.11 (it is installed then)
#   TORCH_SPEC, TORCH_INDEX_URL
#                        passed to scripts/install.sh; the default index is PyTorch's CPU build
#                        (an empty TORCH_INDEX_URL lets the script probe for it and fall back to
#                        the registry's CPU build, for a build behind a mirror)
#   KURZ_TORCH           `cpu` (the default): the build fails if torch is a CUDA build or any
#                        nvidia-* package got in, since the CPU image must never carry CUDA
#                        libraries; `cuda` for the GPU workers' image (compose.gpu.yml), which
#                        keeps torch
#
# torch: a worker on the ctranslate2 backend runs on the converted models with tokenizers and
# CTranslate2 alone, so the runtime's virtual environment has no torch (scripts/install.sh with
# WITH_TORCH=0; about 0.7 GB less) when the models are baked in (BAKE_MODELS=1 or tiny) on the
# default backend: they are made and converted in the `models` stage, whose copy of the
# environment has torch, and only the models reach the runtime.  torch stays in the runtime for
# KURZ_BACKEND=transformers, for the GPU image (KURZ_TORCH=cuda), and with BAKE_MODELS=0, where
# the worker converts the models it downloads on its first start.
#
# `make image` builds it (with Podman where there is no Docker engine, on a Debian base made with
# debootstrap where no image registry answers) and `make test-image` checks the compose stack
# made from it; see the README's Docker section.
#
# Dependencies are installed by scripts/install.sh, the script `make install` and CI run, in a
# layer of their own (DEPS_ONLY=1, from pyproject.toml alone) before the source is copied, so
# that changing the code does not reinstall torch.

ARG BASE_IMAGE=python:3.11-slim-bookworm
ARG BAKE_MODELS=1
ARG KURZ_BACKEND=ctranslate2
ARG KURZ_TORCH=cpu
ARG TORCH_SPEC=torch==2.13.0
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu

# --- base: Python 3.11, tini and the unprivileged user -----------------------------------------
FROM ${BASE_IMAGE} AS base
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1
# Unpinned: the versions come with the base image's release, and differ between the CPU and
# the CUDA base.  python3.11 is installed only where the base lacks it (CUDA images on Ubuntu).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates tini \
    && if ! command -v python3.11 >/dev/null; then \
         apt-get install -y --no-install-recommends python3.11 python3.11-venv; \
       fi \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --gid 10001 kurz \
    && useradd --create-home --uid 10001 --gid 10001 --shell /usr/sbin/nologin kurz \
    && mkdir -p /app/var /home/kurz/.cache/huggingface \
    && chown -R kurz:kurz /app/var /home/kurz/.cache
WORKDIR /app

# --- deps: the runtime's virtual environment, its dependencies (torch only where needed) -------
FROM base AS deps
ARG BAKE_MODELS
ARG KURZ_BACKEND
ARG KURZ_TORCH
ARG TORCH_SPEC
ARG TORCH_INDEX_URL
COPY pyproject.toml ./
# The install script alone: a change to another script must not reinstall the dependencies.
COPY scripts/install.sh scripts/
# Which builds keep torch at run time: see the top of this file.
RUN with_torch=0; \
    if [ "$KURZ_BACKEND" != ctranslate2 ] || [ "$KURZ_TORCH" = cuda ] \
       || [ "$BAKE_MODELS" = 0 ]; then \
      with_torch=1; \
    fi; \
    WITH_TORCH=$with_torch DEPS_ONLY=1 TORCH_CPU_ONLY=1 PYTHON=python3.11 scripts/install.sh .venv

# --- build: the runtime's virtual environment with the package ---------------------------------
FROM deps AS build
ARG KURZ_TORCH
ARG TORCH_SPEC
ARG TORCH_INDEX_URL
COPY . .
# With torch where the dependencies got it, without where they did not.
RUN with_torch=0; \
    if .venv/bin/python -c 'import importlib.util as u; assert u.find_spec("torch")' 2>/dev/null; then \
      with_torch=1; \
    fi; \
    WITH_TORCH=$with_torch TORCH_CPU_ONLY=1 PYTHON=python3.11 scripts/install.sh .venv \
    && .venv/bin/python -m compileall -q service
# Nothing here compiles C++ against torch or runs its C++ test programs: its headers, tests and
# test binaries (about 190 MB) stay out of the image.
RUN torch=$(echo .venv/lib/python3*/site-packages/torch) \
    && rm -rf "$torch"/include "$torch"/test "$torch"/bin/test_* "$torch"/bin/*Test "$torch"/bin/protoc*

# --- models: the Hugging Face cache (and converted models) to bake in --------------------------
# Making the tiny models and converting need torch: this stage's copy of the environment gets it
# (kept in a layer of its own while pyproject.toml and the install script do not change), and
# the runtime takes only the models from here.
FROM deps AS deps-torch
ARG KURZ_TORCH
ARG TORCH_SPEC
ARG TORCH_INDEX_URL
RUN WITH_TORCH=1 DEPS_ONLY=1 TORCH_CPU_ONLY=1 PYTHON=python3.11 scripts/install.sh .venv

FROM deps-torch AS models
ARG BAKE_MODELS
ARG KURZ_BACKEND
ARG KURZ_TORCH
ARG TORCH_SPEC
ARG TORCH_INDEX_URL
COPY . .
RUN WITH_TORCH=1 TORCH_CPU_ONLY=1 PYTHON=python3.11 scripts/install.sh .venv
# The downloads go through a BuildKit cache, so a rebuild after a code change copies them from
# there instead of fetching a gigabyte again.
RUN --mount=type=cache,target=/cache/huggingface,id=kurzgefasst-hf \
    mkdir -p /models/huggingface /app/var/ct2 \
    && case "$BAKE_MODELS" in \
         1) HF_HOME=/cache/huggingface .venv/bin/python -m service download-models \
            && cp -a /cache/huggingface/. /models/huggingface/ ;; \
         tiny) .venv/bin/python -m service make-tiny-models var/tiny-models ;; \
         0) ;; \
         *) echo "BAKE_MODELS=$BAKE_MODELS: use 1, 0 or tiny" >&2; exit 1 ;; \
       esac \
    && if [ "$BAKE_MODELS" != "0" ] && [ "$KURZ_BACKEND" = "ctranslate2" ]; then \
         models=hub; if [ "$BAKE_MODELS" = "tiny" ]; then models=tiny; fi; \
         HF_HOME=/models/huggingface HF_HUB_OFFLINE=1 KURZ_DEVICE=cpu KURZ_MODELS=$models \
           .venv/bin/python -c \
           'from service.pipeline import build_pipeline; from service.settings import Settings; build_pipeline(Settings()).close()'; \
       fi

# --- runtime ------------------------------------------------------------------------------------
FROM base AS runtime
ARG KURZ_BACKEND
ENV PATH=/app/.venv/bin:$PATH \
    HF_HOME=/home/kurz/.cache/huggingface \
    KURZ_HOST=0.0.0.0 \
    KURZ_PORT=8000 \
    KURZ_BACKEND=${KURZ_BACKEND}
COPY --from=build /app /app
COPY --from=models --chown=10001:10001 /models/huggingface /home/kurz/.cache/huggingface
COPY --from=models --chown=10001:10001 /app/var /app/var
USER 10001:10001
EXPOSE 8000
STOPSIGNAL SIGTERM
# Ready means Redis answers and at least one worker is alive: what a load balancer should ask.
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
    CMD ["/app/.venv/bin/python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health/ready', timeout=4)"]
ENTRYPOINT ["/usr/bin/tini", "--", "/app/.venv/bin/python", "-m", "service"]
CMD ["api"]
