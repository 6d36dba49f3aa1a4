"""The README says what exists: its example response, its endpoints and its command line.

Each of these drifted once (the example named a backend that was no longer the default, and
endpoints and flags were missing), so each is checked against the service itself.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from service.__main__ import _parser
from service.api.app import create_app
from service.settings import Settings
from tests.processes import service_stack
from tests.readme_example import README, abridge, masked, readme_example, run_example

#: Routes that are not endpoints a client calls: the page's files and Swagger UI's assets.
NOT_ENDPOINTS = re.compile(r"^/static/|^/schema/(\{|oauth2-redirect|openapi\.json)")


def readme() -> str:
    return README.read_text(encoding="utf-8")


def section(title: str) -> str:
    """The README's text under ``## title`` up to the next second-level heading."""
    text = readme()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def normalized(path: str) -> str:
    """``/jobs/{job_id:str}`` and ``/jobs/{id}`` alike as ``/jobs/{}``."""
    return re.sub(r"\{[^}]*\}", "{}", path)


@pytest.mark.slow
@pytest.mark.redis
def test_readme_example_response_is_what_the_service_answers(
    tmp_path: Path, tiny_models_dir: Path
) -> None:
    """The README's example is the job view a real run gives, but for per-run values."""
    with service_stack(tmp_path, tiny_models_dir) as stack:
        fresh = abridge(run_example(stack.base_url))
    shown = readme_example(readme())
    assert masked(shown) == masked(fresh), (
        "the README's example response has drifted from the service's answer: "
        "run `python -m tests.readme_example` to write it again"
    )
    # The defaults, not whatever ran last: the backend and number format a user gets.
    defaults = Settings(_env_file=None)  # type: ignore[call-arg]
    for model in shown["result"]["models"].values():
        assert model["backend"] == defaults.backend


def test_readme_lists_every_endpoint() -> None:
    """Every route of the API appears in the README with its method and path."""
    app = create_app(Settings(_env_file=None))  # type: ignore[call-arg]
    lines = [normalized(line) for line in readme().splitlines()]
    missing = []
    for route in app.routes:
        if NOT_ENDPOINTS.search(route.path):
            continue
        path = normalized(route.path)
        for method in sorted(getattr(route, "methods", set()) - {"HEAD", "OPTIONS"}):
            said = re.compile(rf"`{method} {re.escape(path)}`")
            if not any(said.search(line) for line in lines):
                missing.append(f"{method} {route.path}")
    assert not missing, f"endpoints the README does not name (as `METHOD /path`): {missing}"


def _commands(
    parser: argparse.ArgumentParser, prefix: str = ""
) -> list[tuple[str, argparse.ArgumentParser]]:
    """Every command (``glossary suggest`` for nested ones) with its parser."""
    found: list[tuple[str, argparse.ArgumentParser]] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                path = f"{prefix} {name}".strip()
                nested = _commands(sub, path)
                found.extend(nested or [(path, sub)])
    return found


def test_readme_lists_every_command_and_flag() -> None:
    """The README's command line section names each command and each of its options."""
    text = section("Command line")
    missing = []
    for command, parser in _commands(_parser()):
        if f"python -m service {command}" not in text:
            missing.append(command)
        for action in parser._actions:
            for option in action.option_strings:
                if option.startswith("--") and option != "--help" and option not in text:
                    missing.append(f"{command} {option}")
    assert not missing, f"missing from the README's command line section: {missing}"
