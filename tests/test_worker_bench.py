"""`python -m benchmarks worker`: registered, its size figures add up, and its memory probe runs
(on the tiny models: a check of the figures' shape, not of their values)."""

from __future__ import annotations

from pathlib import Path

from benchmarks.worker_bench import _closure, _memory_figures, _model_env, runtime_env_figures
from service.nlp.conversion import convert_model
from service.nlp.loading import resolve_model_dir


def test_the_worker_benchmark_is_a_runner() -> None:
    """`python -m benchmarks worker` runs it."""
    from benchmarks.__main__ import _RUNNERS, NAMES

    assert "worker" in NAMES and "worker" in _RUNNERS


def test_leaving_torch_out_drops_torch_and_what_only_it_needs() -> None:
    """The closure without torch loses torch and its own dependencies, nothing the rest needs."""
    with_torch = _closure("kurzgefasst", skip=frozenset())
    without_torch = _closure("kurzgefasst", skip=frozenset({"torch"}))
    assert {"torch", "ctranslate2", "transformers", "tokenizers"} <= with_torch
    assert "torch" not in without_torch
    assert {"ctranslate2", "transformers", "tokenizers", "filelock"} <= without_torch
    assert without_torch < with_torch
    assert "pytest" not in with_torch  # the dev extra is not part of the runtime


def test_size_figures_are_consistent() -> None:
    """Without torch is smaller by at least torch itself; the site-packages total is larger."""
    figures = runtime_env_figures()
    with_torch = float(figures["worker_runtime_env_mib_with_torch"])
    without_torch = float(figures["worker_runtime_env_mib_without_torch"])
    torch_mib = float(figures["worker_torch_package_mib"])
    assert with_torch - without_torch >= torch_mib > 0
    assert float(figures["worker_site_packages_mib"]) >= with_torch
    assert "torch" in str(figures["worker_runtime_env_torch_only"]).split(",")


def test_memory_probe_reports_both_variants(tiny_models_dir: Path, tmp_path: Path) -> None:
    """The resident-memory probe loads converted models with and without torch and says which."""
    converted = tmp_path / "converted"
    prepared: dict[str, str | float] = {}
    for name in ("translation", "summarization"):
        source = str(tiny_models_dir / name)
        source_dir, revision = resolve_model_dir(source)
        convert_model(source_dir, revision, source, "int8", converted)
        prepared[name] = source
    figures = _memory_figures(_model_env(prepared, converted))
    assert float(figures["worker_rss_mib_with_torch"]) > float(
        figures["worker_rss_mib_without_torch"]
    )
    assert 0 < float(figures["worker_rss_saving_ratio"]) < 1
