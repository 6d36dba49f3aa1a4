"""A ctranslate2 worker on converted models runs without torch; the transformers backend still
runs with it.

Each check starts a fresh interpreter: whether torch is in ``sys.modules`` is a fact about a
whole process, and the test session itself has imported torch long before (the tiny models are
built with it).  The child loads the models the way a worker does (``build_pipeline`` from
``Settings``) and runs one seed article through the pipeline before it looks.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from service.nlp.conversion import convert_model
from service.nlp.loading import resolve_model_dir
from service.settings import ROOT
from tests.processes import environ_without_kurz

#: What the child runs: the worker's modules, its pipeline, one article, then a look at what got
#: imported.  Settings come as JSON in argv, not from KURZ_ variables, so nothing leaks in.
_CHILD = """
import asyncio, json, sys
from pathlib import Path

import service.worker  # the worker process's own modules, imported first as the worker does
from service.pipeline import ArticleRequest, build_pipeline
from service.settings import Settings

fields = json.loads(sys.argv[1])
text = Path(sys.argv[2]).read_text(encoding="utf-8")
settings = Settings(**fields, _env_file=None)
pipeline = build_pipeline(settings)
try:
    result = asyncio.run(pipeline.run(ArticleRequest(text=text)))
finally:
    pipeline.close()
print(json.dumps({
    "translation": result.translation,
    "backend": result.models["translation"].backend,
    "torch": "torch" in sys.modules and sys.modules["torch"] is not None,
    "torch_modules": sorted(
        name for name, module in sys.modules.items()
        if module is not None and (name == "torch" or name.startswith("torch."))
    ),
    "model_classes": sorted(
        m for m in sys.modules
        if m == "transformers.modeling_utils"
        or (m.startswith("transformers.models.") and ".modeling_" in m)
    ),
}))
"""

#: The transformers model classes a ctranslate2 worker must not load (nor any other).
_MODELING_MARIAN = "transformers.models.marian.modeling_marian"


def _short_article(seed_texts: dict[str, str], directory: Path) -> Path:
    """The first paragraph of a seed article (a few sentences), as a file for the child."""
    first = next(iter(seed_texts.values()))
    paragraph = next(p for p in first.split("\n\n") if len(p.split()) > 20)
    path = directory / "article.txt"
    path.write_text(paragraph, encoding="utf-8")
    return path


def _run_child(fields: dict[str, object], article: Path) -> dict[str, object]:
    """Run ``_CHILD`` in a fresh interpreter and return what it printed last."""
    env = environ_without_kurz()
    env["HF_HUB_OFFLINE"] = "1"
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, json.dumps(fields), str(article)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    report: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return report


@pytest.fixture
def converted_dir(tiny_models_dir: Path, tmp_path: Path) -> Path:
    """Both tiny models converted for ctranslate2 as a worker would find them on a later start
    (here, in this process, which has torch: converting needs it)."""
    root = tmp_path / "converted"
    for name in ("translation", "summarization"):
        source = str(tiny_models_dir / name)
        source_dir, revision = resolve_model_dir(source)
        convert_model(source_dir, revision, source, "int8", root)
    return root


def _settings(tiny_models_dir: Path, **fields: object) -> dict[str, object]:
    """Settings fields (JSON-ready) for the tiny models on the CPU in int8, one thread each.

    The CPU, not ``auto``: on a GPU ``auto`` means float16, which the fixture did not convert.
    """
    return {
        "models": "tiny",
        "tiny_models_dir": str(tiny_models_dir),
        "device": "cpu",
        "compute_type": "int8",
        "inference_threads": 1,
        **fields,
    }


def test_ctranslate2_worker_on_converted_models_never_imports_torch(
    tiny_models_dir: Path,
    converted_dir: Path,
    seed_texts: dict[str, str],
    tmp_path: Path,
) -> None:
    """Loading both converted models, translating and summarizing a seed article leaves torch
    and transformers' model classes out of the worker process (and converts nothing again)."""
    before = sorted(p.name for p in converted_dir.iterdir())
    fields = _settings(
        tiny_models_dir, backend="ctranslate2", converted_models_dir=str(converted_dir)
    )
    report = _run_child(fields, _short_article(seed_texts, tmp_path))
    assert report["backend"] == "ctranslate2"
    assert report["translation"]
    assert report["torch"] is False, report["torch_modules"]
    assert report["torch_modules"] == []
    assert report["model_classes"] == []
    assert _MODELING_MARIAN not in report["model_classes"]
    assert sorted(p.name for p in converted_dir.iterdir()) == before  # nothing converted


def test_transformers_backend_still_runs_with_torch(
    tiny_models_dir: Path, seed_texts: dict[str, str], tmp_path: Path
) -> None:
    """KURZ_BACKEND=transformers imports torch where it needs it and runs the same article."""
    report = _run_child(
        _settings(tiny_models_dir, backend="transformers"), _short_article(seed_texts, tmp_path)
    )
    assert report["backend"] == "transformers"
    assert report["translation"]
    assert report["torch"] is True
    assert _MODELING_MARIAN in report["model_classes"]


def test_first_start_converts_with_torch_then_runs(
    tiny_models_dir: Path, seed_texts: dict[str, str], tmp_path: Path
) -> None:
    """A ctranslate2 worker with nothing converted yet converts on start (torch is needed for
    that, and stays loaded) and then runs the article."""
    converted = tmp_path / "converted"
    fields = _settings(tiny_models_dir, backend="ctranslate2", converted_models_dir=str(converted))
    report = _run_child(fields, _short_article(seed_texts, tmp_path))
    assert report["backend"] == "ctranslate2"
    assert report["translation"]
    assert report["torch"] is True
    assert len([p for p in converted.iterdir() if not p.name.startswith(".")]) == 2


def test_auto_device_under_ctranslate2_asks_ctranslate2() -> None:
    """KURZ_DEVICE=auto with the ctranslate2 backend finds out about CUDA without torch."""
    child = (
        "import sys\n"
        "from service.nlp.device import resolve_device\n"
        "device = resolve_device('auto', 'ctranslate2')\n"
        "print(device.type, 'torch' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", child],
        cwd=ROOT,
        env=environ_without_kurz(),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    kind, torch_imported = done.stdout.split()
    assert kind in {"cpu", "cuda"}
    assert torch_imported == "False"


def test_converting_without_torch_says_what_is_missing(
    tiny_models_dir: Path, tmp_path: Path
) -> None:
    """Where torch cannot be imported (an image built to run converted models only), a model
    that is not converted yet fails with one message that names torch, not a stack trace."""
    child = (
        "import sys\n"
        "sys.modules['torch'] = None  # as if it were not installed\n"
        "from pathlib import Path\n"
        "from service.errors import ModelUnavailableError\n"
        "from service.nlp.conversion import convert_model\n"
        "from service.nlp.loading import resolve_model_dir\n"
        "source = sys.argv[1]\n"
        "source_dir, revision = resolve_model_dir(source)\n"
        "try:\n"
        "    convert_model(source_dir, revision, source, 'int8', Path(sys.argv[2]))\n"
        "except ModelUnavailableError as error:\n"
        "    print(error)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", child, str(tiny_models_dir / "translation"), str(tmp_path)],
        cwd=ROOT,
        env=environ_without_kurz(),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert "needs torch" in done.stdout, done.stdout + done.stderr


#: A child without torch (as in the image) that prints the error a start-up step raises.
_NO_TORCH_CHILD = """
import json, sys
sys.modules["torch"] = None  # as if it were not installed
from service.errors import ConfigError
from service.settings import Settings
settings = Settings(**json.loads(sys.argv[1]), _env_file=None)
try:
    if sys.argv[2] == "engines":
        from service.nlp.backends import load_engines
        load_engines(settings)
    else:
        from service.__main__ import _prepare_tiny_models
        _prepare_tiny_models(settings)
        print("prepared", "service.dev.tiny" in sys.modules)
except ConfigError as error:
    print(error)
"""


def _without_torch(fields: dict[str, object], step: str) -> str:
    """What ``_NO_TORCH_CHILD`` printed for ``step`` (``engines`` or ``tiny``)."""
    done = subprocess.run(
        [sys.executable, "-c", _NO_TORCH_CHILD, json.dumps(fields), step],
        cwd=ROOT,
        env=environ_without_kurz(),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout.strip()


def test_transformers_backend_without_torch_is_one_config_error(tiny_models_dir: Path) -> None:
    """KURZ_BACKEND=transformers in an image made without torch stops with one line naming
    torch and the build argument that keeps it, not an import error from deep inside."""
    said = _without_torch(_settings(tiny_models_dir, backend="transformers"), "engines")
    assert "KURZ_BACKEND=transformers needs torch" in said, said
    assert "--build-arg KURZ_BACKEND=transformers" in said, said


def test_tiny_models_without_torch_use_the_baked_build(tiny_models_dir: Path) -> None:
    """A worker without torch on KURZ_MODELS=tiny uses the build it finds (the image bakes it
    in) without importing the builder, which needs torch."""
    assert _without_torch(_settings(tiny_models_dir), "tiny") == "prepared False"


def test_tiny_models_without_torch_or_a_build_say_what_is_missing(tmp_path: Path) -> None:
    """With no tiny build to use, the worker says that building one needs torch."""
    said = _without_torch(_settings(tmp_path / "none"), "tiny")
    assert "no tiny models in" in said and "needs torch" in said, said


def test_the_tiny_marker_name_is_the_builders() -> None:
    """The start-up check looks for the file the builder writes last."""
    from service.__main__ import TINY_MARKER_NAME
    from service.dev.tiny import MARKER_NAME

    assert TINY_MARKER_NAME == MARKER_NAME
