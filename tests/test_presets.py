"""Style presets: the shipped ones validate, a broken one stops start-up with a clear message."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.errors import PresetError, UnknownStyleError
from service.presets import PresetRegistry
from service.settings import ROOT

GOOD = 'description = "d"\ninstruction = "Summarize: {text}"\n'


def test_every_shipped_preset_validates() -> None:
    """All presets in prompts/ load, and the four documented styles exist."""
    registry = PresetRegistry.from_directory(ROOT / "prompts")
    assert {"standard", "brief", "bullets", "headline"} <= set(registry.names)
    for preset in registry.all():
        assert preset.description
        assert "{text}" in preset.instruction
        assert preset.generation.min_length <= preset.generation.max_length
        assert len(preset.digest) == 12
        assert preset.fact_check in ("flag", "retry")


@pytest.mark.parametrize(
    ("content", "field"),
    [
        (GOOD + '[generation]\nnum_beams = "four"\n', "generation.num_beams"),
        ('description = "d"\ninstruction = "no placeholder"\n', "instruction"),
        (GOOD + "[generation]\nmin_length = 50\nmax_length = 10\n", "generation.min_length"),
        (GOOD + 'layout = "haiku"\n', "layout"),
        (GOOD + 'fact_check = "sometimes"\n', "fact_check"),
        (GOOD + 'colour = "blue"\n', "colour"),
        ('instruction = "{text}"\n', "description"),
        ("description = \n", "(file)"),
    ],
)
def test_bad_preset_names_file_and_field(tmp_path: Path, content: str, field: str) -> None:
    """A broken preset file fails loading with its path and the offending field in the message."""
    (tmp_path / "standard.toml").write_text(GOOD)
    bad = tmp_path / "broken.toml"
    bad.write_text(content)
    with pytest.raises(PresetError) as error:
        PresetRegistry.from_directory(tmp_path)
    assert error.value.path == str(bad)
    assert error.value.field == field
    assert str(bad) in str(error.value)


def test_unknown_style_lists_the_known_ones(tmp_path: Path) -> None:
    """Asking for a style that does not exist says which styles do."""
    (tmp_path / "standard.toml").write_text(GOOD)
    (tmp_path / "brief.toml").write_text(GOOD)
    with pytest.raises(UnknownStyleError) as error:
        PresetRegistry.from_directory(tmp_path).get("sonnet")
    assert error.value.known == ["brief", "standard"]


def test_digest_changes_when_the_file_changes(tmp_path: Path) -> None:
    """Editing a preset changes its digest, so cached summaries made with the old one expire."""
    path = tmp_path / "standard.toml"
    path.write_text(GOOD)
    before = PresetRegistry.from_directory(tmp_path).get("standard").digest
    path.write_text(GOOD + "[generation]\nnum_beams = 2\n")
    assert PresetRegistry.from_directory(tmp_path).get("standard").digest != before


def test_fact_check_defaults_to_flag_and_accepts_retry(tmp_path: Path) -> None:
    """A preset without ``fact_check`` only flags; one that says "retry" keeps that setting."""
    (tmp_path / "standard.toml").write_text(GOOD)
    (tmp_path / "strict.toml").write_text(GOOD + 'fact_check = "retry"\n')
    registry = PresetRegistry.from_directory(tmp_path)
    assert registry.get("standard").fact_check == "flag"
    assert registry.get("strict").fact_check == "retry"
