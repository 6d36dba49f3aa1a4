"""Shared fixtures: the tiny offline models, settings that use them, and seed articles."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.settings import ROOT, Settings

SEEDS_DIR = ROOT / "seeds"

# Tests never reach the hub: a model that is not local must fail fast, not hang on the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def seed_texts() -> dict[str, str]:
    """The five German seed articles by file name."""
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(SEEDS_DIR.glob("*.txt"))}


@pytest.fixture(scope="session")
def tiny_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny random-weight models built from the seeds, once per test session."""
    from service.dev.tiny import make_tiny_models

    directory = tmp_path_factory.mktemp("tiny-models")
    make_tiny_models(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_settings(tiny_models_dir: Path) -> Settings:
    """Settings that run the pipeline on the tiny models, on the CPU."""
    return Settings(
        models="tiny",
        tiny_models_dir=tiny_models_dir,
        device="cpu",
        backend="transformers",
        inference_threads=2,
        _env_file=None,  # type: ignore[call-arg]
    )


@pytest.fixture(scope="session")
def long_article(seed_texts: dict[str, str]) -> str:
    """All seeds repeated until the article passes 30,000 characters."""
    parts: list[str] = []
    while sum(len(p) for p in parts) <= 30_000:
        parts.extend(seed_texts.values())
    return "\n\n".join(parts)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No KURZ_ variables from the developer's shell leak into a test."""
    for name in list(os.environ):
        if name.startswith("KURZ_"):
            monkeypatch.delenv(name)
    yield
