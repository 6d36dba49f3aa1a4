"""The README's example response, made from a real run so it cannot drift from the service.

``python -m tests.readme_example`` starts a private Redis, the API and a worker on the tiny
models with the default settings otherwise (so the backend and number format are the defaults),
submits the first seed exactly as the README's "Try it" command does, and writes the answer,
abridged, between the README's ``example-response`` markers.  ``tests/test_readme.py`` does the
same run and fails when the README's block differs from it in anything but the values that
change from run to run or with the model's English (ids, times, timings, revisions, checks).

Abridged means: English text (which depends on the models: the tiny ones write random words) is
replaced by a note, lists keep their first entry, and the tiny models' local directories are
shown as the default model ids a real install loads.
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx

from service.settings import ROOT, Settings

README = ROOT / "README.md"
SEED = ROOT / "seeds" / "000_1e1de29cccfa5500.txt"
START = "<!-- example-response: made by `python -m tests.readme_example`; do not edit -->"
END = "<!-- /example-response -->"
ENGLISH = "(English: its wording depends on the model)"

#: Paths (dotted, ``*`` for any key or list index) whose values change from run to run or with
#: the model's English: the README and a fresh run must agree on their type only (a masked dict
#: or list is not looked into).
VOLATILE = (
    "id",
    "created_at",
    "finished_at",
    "links.self",
    "links.events",
    "result.models.*.revision",
    "result.timings_ms.*",
    "result.summary_chunks",
    "result.summary_rounds",
    "result.checks",
    "result.summary_flags",
    "result.alignment.*.glossary",
    "result.glossary.digest",
    "result.glossary.applied",
    "result.glossary.fallback",
    "result.glossary.missed",
    "result.glossary.missed_terms",
    "result.glossary.summary_replaced",
)
#: English text, replaced by the note.
ENGLISH_PATHS = (
    "result.title_en",
    "result.translation",
    "result.summary",
    "result.alignment.*.en",
    "result.checks.*.text",
    "result.summary_flags.*",
)


def _matches(path: str, patterns: tuple[str, ...]) -> bool:
    return any(re.fullmatch(re.escape(p).replace(r"\*", r"[^.]+"), path) for p in patterns)


def abridge(view: dict[str, Any]) -> dict[str, Any]:
    """The job view as the README shows it: English replaced, lists cut to their first entry,
    model ids the defaults'."""
    defaults = Settings(_env_file=None)  # type: ignore[call-arg]
    default_ids = {
        "translation": defaults.translation_model,
        "summarization": defaults.summarization_model,
    }

    def walk(value: Any, path: str) -> Any:
        if isinstance(value, dict):
            out = {key: walk(item, f"{path}.{key}" if path else key) for key, item in value.items()}
            if path.startswith("result.models.") and path.count(".") == 2:
                out["id"] = default_ids.get(path.rsplit(".", 1)[1], out.get("id"))
            return out
        if isinstance(value, list):
            return [walk(item, f"{path}.{index}") for index, item in enumerate(value[:1])]
        if isinstance(value, str) and value and _matches(path, ENGLISH_PATHS):
            return ENGLISH
        return value

    result: dict[str, Any] = walk(view, "")
    return result


def masked(value: Any, path: str = "") -> Any:
    """``value`` with every volatile value replaced by its type's name, for comparing runs."""
    if _matches(path, VOLATILE):
        return type(value).__name__
    if isinstance(value, dict):
        return {key: masked(item, f"{path}.{key}" if path else key) for key, item in value.items()}
    if isinstance(value, list):
        return [masked(item, f"{path}.{index}") for index, item in enumerate(value)]
    return value


def render(example: dict[str, Any]) -> str:
    """The README block: the markers around a JSON code block."""
    body = json.dumps(example, indent=2, ensure_ascii=False)
    return f"{START}\n```json\n{body}\n```\n{END}"


def readme_example(text: str) -> dict[str, Any]:
    """The example the README holds now (the JSON between the markers)."""
    match = re.search(re.escape(START) + r"\n```json\n(.*?)\n```\n" + re.escape(END), text, re.S)
    if match is None:
        raise ValueError("the README has no example-response block")
    loaded: dict[str, Any] = json.loads(match.group(1))
    return loaded


def run_example(base_url: str) -> dict[str, Any]:
    """Submit the first seed as the README's command does and return the finished job view."""
    response = httpx.post(
        f"{base_url}/summarize?wait=60",
        json={"text": SEED.read_text(encoding="utf-8")},
        timeout=90,
    )
    view: dict[str, Any] = response.json()
    if response.status_code != 200 or view.get("status") != "succeeded":
        raise RuntimeError(f"the example job did not finish: {response.status_code} {view}")
    return view


def write_readme(view: dict[str, Any]) -> None:
    text = README.read_text(encoding="utf-8")
    start, end = text.index(START), text.index(END) + len(END)
    README.write_text(text[:start] + render(abridge(view)) + text[end:], encoding="utf-8")


def main() -> int:
    from service.dev.tiny import make_tiny_models
    from tests.processes import service_stack

    with tempfile.TemporaryDirectory() as scratch:
        models = Path(scratch) / "tiny-models"
        make_tiny_models(models)
        logs = Path(scratch) / "logs"
        logs.mkdir()
        with service_stack(logs, models) as stack:
            write_readme(run_example(stack.base_url))
    print(f"wrote the example response into {README}")  # noqa: T201 - a developer's tool
    return 0


if __name__ == "__main__":
    sys.exit(main())
