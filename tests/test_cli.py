"""The command line: ``python -m service summarize`` and ``make-tiny-models``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from service.settings import ROOT
from tests.processes import environ_without_kurz

pytestmark = pytest.mark.slow


def cli(
    args: list[str], tiny_models_dir: Path, *, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = environ_without_kurz()
    env.update(
        KURZ_MODELS="tiny",
        KURZ_TINY_MODELS_DIR=str(tiny_models_dir),
        KURZ_CONVERTED_MODELS_DIR=str(tiny_models_dir / "converted"),
        KURZ_DEVICE="cpu",
        HF_HUB_OFFLINE="1",
    )
    return subprocess.run(
        [sys.executable, "-m", "service", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=300,
        check=False,
    )


def test_summarize_json_prints_one_result_per_file(tiny_models_dir: Path) -> None:
    """--json prints one JSON object per article, with the result fields and its file name."""
    seeds = sorted(str(p) for p in (ROOT / "seeds").glob("*.txt"))[:2]
    done = cli(["summarize", *seeds, "--json", "--style", "brief"], tiny_models_dir)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [line["file"] for line in lines] == seeds
    for line in lines:
        assert line["style"] == "brief"
        assert line["sentences_in"] == line["sentences_translated"] > 0
        assert line["summary"]
        assert {"translation", "alignment", "models", "timings_ms"} <= set(line)


def test_summarize_prints_fact_checks_and_a_flagged_line(tiny_models_dir: Path) -> None:
    """--json carries checks and summary_flags; text mode prints them on a FLAGGED line."""
    seed = str(sorted((ROOT / "seeds").glob("*.txt"))[0])
    as_json = cli(["summarize", seed, "--json"], tiny_models_dir)
    assert as_json.returncode == 0, as_json.stderr
    [result] = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert result["summary_flags"]  # the tiny models' gibberish names are not in the article
    assert result["summary_flags"] == [c["text"] for c in result["checks"] if not c["supported"]]
    assert (result["summary_attempts"], result["summary_kept"]) == (1, 1)
    as_text = cli(["summarize", seed], tiny_models_dir)
    assert as_text.returncode == 0, as_text.stderr
    [flag_line] = [line for line in as_text.stdout.splitlines() if line.startswith("FLAGGED: ")]
    assert flag_line == "FLAGGED: " + "; ".join(result["summary_flags"])


def test_summarize_reads_stdin_and_keeps_going_after_a_bad_file(tiny_models_dir: Path) -> None:
    """'-' reads standard input; a missing file is reported, the rest still run, exit is 1."""
    done = cli(
        ["summarize", "-", "does-not-exist.txt", "--json", "--title", "Eine Meldung"],
        tiny_models_dir,
        stdin="Die Regierung hat am Montag neue Pläne vorgestellt. Kritiker sind skeptisch.",
    )
    assert done.returncode == 1
    assert "does-not-exist.txt" in done.stderr
    assert "Traceback" not in done.stderr
    [result] = [json.loads(line) for line in done.stdout.splitlines()]
    assert result["file"] == "-"
    assert result["title_en"]
    assert result["sentences_in"] == 2


def test_unknown_style_fails_before_any_work(tiny_models_dir: Path) -> None:
    """An unknown style exits with status 2 and lists the styles that exist."""
    done = cli(["summarize", "-", "--style", "limerick"], tiny_models_dir, stdin="Ein Satz.")
    assert done.returncode == 2
    assert "limerick" in done.stderr
    assert "standard" in done.stderr


def test_make_tiny_models_builds_loadable_directories(tmp_path: Path) -> None:
    """make-tiny-models DIR prints the two model directories it built."""
    done = cli(["make-tiny-models", str(tmp_path / "m")], tmp_path)
    assert done.returncode == 0, done.stderr
    printed = [Path(line) for line in done.stdout.splitlines()]
    assert printed == [tmp_path / "m" / "translation", tmp_path / "m" / "summarization"]
    assert all((p / "config.json").is_file() for p in printed)
