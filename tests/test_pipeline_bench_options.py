"""The pipeline benchmark's device and compute-type options, and the GPU script's refusal."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import ctranslate2
import pytest
import torch

from benchmarks.__main__ import _parser
from benchmarks.pipeline_bench import PipelineBenchOptions, check_device

ROOT = Path(__file__).resolve().parent.parent
NO_CUDA = not torch.cuda.is_available() or ctranslate2.get_cuda_device_count() < 1


def test_the_defaults_measure_the_service_default_backend_on_the_cpu() -> None:
    """No options: ctranslate2 with compute type auto (int8 on a CPU), on the CPU."""
    args = _parser().parse_args(["pipeline"])
    assert (args.backend, args.device, args.compute_type) == ("ctranslate2", "cpu", "auto")
    options = PipelineBenchOptions()
    assert (options.backend, options.device, options.compute_type) == args_tuple(args)


def args_tuple(args: object) -> tuple[str, str, str]:
    return (args.backend, args.device, args.compute_type)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--device", "cuda", "--compute-type", "float16"], ("ctranslate2", "cuda", "float16")),
        (
            ["--device", "cuda", "--compute-type", "int8_float16"],
            ("ctranslate2", "cuda", "int8_float16"),
        ),
        (
            ["--backend", "transformers", "--compute-type", "float32"],
            ("transformers", "cpu", "float32"),
        ),
    ],
)
def test_device_backend_and_compute_type_parse(argv: list[str], expected: tuple[str, ...]) -> None:
    """The GPU script's combinations parse into the options the benchmark reads."""
    assert args_tuple(_parser().parse_args(["pipeline", *argv])) == expected


def test_an_unknown_compute_type_is_refused() -> None:
    """A typo fails at parse time, not after the models are built."""
    with pytest.raises(SystemExit):
        _parser().parse_args(["pipeline", "--compute-type", "fp16"])


def test_the_cpu_needs_no_check() -> None:
    """A CPU run passes the device check whatever the machine has."""
    check_device(PipelineBenchOptions())


@pytest.mark.skipif(not NO_CUDA, reason="this machine has a CUDA device")
def test_cuda_without_a_device_fails_before_anything_is_built() -> None:
    """--device cuda on a machine without CUDA stops with a message that says so."""
    with pytest.raises(RuntimeError, match="no CUDA device"):
        check_device(PipelineBenchOptions(device="cuda"))


@pytest.mark.skipif(not NO_CUDA, reason="this machine has a CUDA device")
def test_the_gpu_script_stops_clearly_without_cuda(tmp_path: Path) -> None:
    """scripts/gpu-bench.sh exits 2 naming the missing device, and writes no figures file."""
    out = tmp_path / "gpu.json"
    done = subprocess.run(
        ["scripts/gpu-bench.sh", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHON": sys.executable},
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "no CUDA device" in done.stderr
    assert not out.exists()
