"""Model loading: local directories, the hub cache, and the one-line error when neither has it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from service.errors import ModelUnavailableError
from service.nlp.loading import load_seq2seq, resolve_model_dir
from service.settings import ROOT


def test_loads_a_model_from_a_local_directory(tiny_models_dir: Path) -> None:
    """A directory saved with save_pretrained loads, with a content-derived revision."""
    loaded = load_seq2seq(str(tiny_models_dir / "translation"), device=torch.device("cpu"))
    assert loaded.ref.backend == "transformers"
    assert loaded.ref.compute_type == "float32"
    assert loaded.ref.revision.startswith("local-")
    assert not loaded.model.training
    again = resolve_model_dir(str(tiny_models_dir / "translation"))[1]
    assert again == loaded.ref.revision


def test_int8_dynamic_quantization_is_reported(tiny_models_dir: Path) -> None:
    """KURZ_COMPUTE_TYPE=int8 under transformers quantizes the Linear layers and says so."""
    loaded = load_seq2seq(
        str(tiny_models_dir / "translation"), device=torch.device("cpu"), compute_type="int8"
    )
    assert loaded.ref.compute_type == "int8"
    quantized = [m for m in loaded.model.modules() if "quantized" in type(m).__module__]
    assert quantized


def test_missing_directory_names_the_model_and_the_fix(tmp_path: Path) -> None:
    """A path that does not exist fails with the model named and the command that fetches it."""
    missing = str(tmp_path / "nope" / "model")
    with pytest.raises(ModelUnavailableError) as error:
        load_seq2seq(missing, device=torch.device("cpu"))
    message = str(error.value)
    assert missing in message
    assert "python -m service download-models" in message


def test_uncached_hub_model_offline_names_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    """A hub id that is not in the cache, offline, fails at once with one clear message."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelUnavailableError) as error:
        resolve_model_dir("kurzgefasst-tests/not-a-real-model")
    assert "kurzgefasst-tests/not-a-real-model" in str(error.value)
    assert "not in the Hugging Face cache" in str(error.value)


def test_cli_reports_a_missing_model_in_one_line(tmp_path: Path) -> None:
    """The CLI exits non-zero with a readable message, not a traceback, for a missing model."""
    article = tmp_path / "a.txt"
    article.write_text("Ein Satz auf Deutsch.", encoding="utf-8")
    env = {
        "PATH": "/usr/bin:/bin",
        "HF_HUB_OFFLINE": "1",
        "HF_HOME": str(tmp_path / "hf"),
        "KURZ_TRANSLATION_MODEL": "kurzgefasst-tests/not-a-real-model",
    }
    done = subprocess.run(
        [sys.executable, "-m", "service", "summarize", str(article)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "kurzgefasst-tests/not-a-real-model" in done.stderr
    assert "download-models" in done.stderr


def test_download_models_offline_fails_in_one_line(tmp_path: Path) -> None:
    """download-models without a reachable hub exits 2 naming the model, not a traceback."""
    env = {
        "PATH": "/usr/bin:/bin",
        "HF_HUB_OFFLINE": "1",
        "HF_HOME": str(tmp_path / "hf"),
        "KURZ_TRANSLATION_MODEL": "kurzgefasst-tests/not-a-real-model",
    }
    done = subprocess.run(
        [sys.executable, "-m", "service", "download-models"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "kurzgefasst-tests/not-a-real-model" in done.stderr


@pytest.mark.parametrize(
    ("cpu_max", "expected"),
    [("max 100000", None), ("200000 100000", 2), ("50000 100000", 1), (None, None)],
)
def test_thread_count_respects_a_container_cpu_quota(
    tmp_path: Path, cpu_max: str | None, expected: int | None
) -> None:
    """A worker limited to N CPUs by its container sizes its threads for N, not the host."""
    import os

    from service.nlp.device import usable_cores

    path = tmp_path / "cpu.max"
    if cpu_max is not None:
        path.write_text(cpu_max + "\n")
    affinity = len(os.sched_getaffinity(0))
    assert usable_cores(path) == (min(expected, affinity) if expected else affinity)
