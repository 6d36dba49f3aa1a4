"""Style presets: ``prompts/<style>.toml`` files, validated when the process starts.

A preset says how one summary style is generated: a description for ``GET /styles``, an
instruction template for instruction-following models (FLAN-T5 and kin; CNN-trained BART models
ignore it), the generation settings, and how the generated text is laid out.  A bad file stops
start-up with the file and the field named, rather than failing the first request that uses it.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from pathlib import Path
from typing import Literal

import msgspec

from service.errors import PresetError, UnknownStyleError


class Generation(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """Decoding settings; lengths are in generated tokens."""

    min_length: int = 0
    max_length: int = 142
    num_beams: int = 4
    length_penalty: float = 1.0
    no_repeat_ngram_size: int = 3


class Preset(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """One summary style, as written in its TOML file."""

    description: str
    instruction: str
    generation: Generation = Generation()
    layout: Literal["paragraph", "bullets", "headline"] = "paragraph"
    #: What an unsupported fact in the summary does: "flag" reports it; "retry" regenerates the
    #: summary once with other decoding and keeps the version with fewer unsupported facts.
    fact_check: Literal["flag", "retry"] = "flag"
    min_points: int = 3
    max_points: int = 5
    version: int = 1
    name: str = ""
    digest: str = ""

    def __post_init__(self) -> None:
        checks = [
            ("instruction", "{text}" in self.instruction, "must contain the {text} placeholder"),
            ("description", bool(self.description.strip()), "must not be empty"),
            ("generation.max_length", self.generation.max_length >= 1, "must be at least 1"),
            ("generation.min_length", self.generation.min_length >= 0, "must not be negative"),
            (
                "generation.min_length",
                self.generation.min_length <= self.generation.max_length,
                "must not exceed generation.max_length",
            ),
            ("generation.num_beams", 1 <= self.generation.num_beams <= 16, "must be 1..16"),
            (
                "generation.no_repeat_ngram_size",
                self.generation.no_repeat_ngram_size >= 0,
                "must not be negative",
            ),
            ("max_points", 1 <= self.min_points <= self.max_points, "needs 1 <= min <= max"),
        ]
        for field, ok, problem in checks:
            if not ok:
                raise ValueError(f"{field}\x00{problem}")

    def prompt(self, text: str) -> str:
        """The model input for an instruction-following summarizer."""
        return self.instruction.replace("{text}", text)


_FIELD_IN_MESSAGE = re.compile(r"at `\$\.?([^`]*)`")
_NAMED_FIELD = re.compile(r"(?:unknown|required) field `([^`]*)`")
_STYLE_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


def load_preset(path: Path) -> Preset:
    """Read and validate one preset file; any problem is a ``PresetError`` naming the field."""
    name = path.stem
    if not _STYLE_NAME.match(name):
        raise PresetError(str(path), "name", "file names must be lowercase words like brief.toml")
    raw = path.read_bytes()
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise PresetError(str(path), "(file)", f"not valid TOML: {error}") from error
    try:
        preset = msgspec.convert(data, Preset)
    except msgspec.ValidationError as error:
        message = str(error)
        if "\x00" in message:
            field, problem = message.split("\x00", 1)
        else:
            match = _FIELD_IN_MESSAGE.search(message)
            field = match.group(1) if match else ""
            named = _NAMED_FIELD.search(message)
            if named:
                field = f"{field}.{named.group(1)}" if field else named.group(1)
            field = field or "(file)"
            problem = _FIELD_IN_MESSAGE.sub("", message).rstrip(" -")
        raise PresetError(str(path), field, problem) from error
    digest = hashlib.sha256(raw).hexdigest()[:12]
    return msgspec.structs.replace(preset, name=name, digest=digest)


class PresetRegistry:
    """All presets of a directory, loaded and validated together at start-up."""

    def __init__(self, presets: dict[str, Preset]) -> None:
        if not presets:
            raise PresetError("prompts/", "(directory)", "no *.toml presets found")
        self._presets = dict(sorted(presets.items()))

    @classmethod
    def from_directory(cls, directory: Path) -> PresetRegistry:
        """Load every ``*.toml`` in ``directory``; the first bad file stops the load."""
        if not directory.is_dir():
            raise PresetError(str(directory), "(directory)", "no such directory")
        return cls({path.stem: load_preset(path) for path in sorted(directory.glob("*.toml"))})

    @property
    def names(self) -> list[str]:
        return list(self._presets)

    def all(self) -> list[Preset]:
        return list(self._presets.values())

    def get(self, style: str) -> Preset:
        """The preset for ``style``, or ``UnknownStyleError`` listing the known ones."""
        try:
            return self._presets[style]
        except KeyError:
            raise UnknownStyleError(style, self.names) from None
