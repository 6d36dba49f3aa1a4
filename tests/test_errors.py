"""The exception tree drawn in ``service.errors``' docstring is the tree the code defines."""

from __future__ import annotations

import importlib
import pkgutil
import re

import pytest

import service
from service import errors
from service.errors import ApiProblem, KurzError

#: One drawn line: the tree's guides, a class name, its status (or "(its own)") and its code.
_LINE = re.compile(r"^(?P<guides>[ │├└─]*?)(?P<name>[A-Z]\w+)\s+(?P<status>\d{3}|\(its own\))\s?")


def drawn_tree() -> list[tuple[int, str, str]]:
    """(depth, class name, status) for each line of the drawing in the module docstring."""
    lines: list[tuple[int, str, str]] = []
    for raw in (errors.__doc__ or "").splitlines():
        stripped = raw.removeprefix("    ")
        match = _LINE.match(stripped)
        guides = match.group("guides") if match else ""
        if match is None or (guides and not any(box in guides for box in "├└")):
            continue
        depth = len(match.group("guides")) // 4
        lines.append((depth, match.group("name"), match.group("status")))
    return lines


def all_kurz_errors() -> set[type[KurzError]]:
    """Every ``KurzError`` subclass defined anywhere in the package (all modules imported)."""
    for module in pkgutil.walk_packages(service.__path__, "service."):
        if module.name != "service.__main__":
            importlib.import_module(module.name)
    found: set[type[KurzError]] = set()
    pending: list[type[KurzError]] = [KurzError]
    while pending:
        cls = pending.pop()
        found.add(cls)
        pending.extend(cls.__subclasses__())
    return found


def test_the_drawing_names_every_error_class_with_its_parent_and_status() -> None:
    """Each drawn class exists, sits under its real base class and answers the drawn status."""
    tree = drawn_tree()
    assert tree[0] == (0, "KurzError", "500")
    parents: list[str] = []
    for depth, name, status in tree:
        cls = getattr(errors, name)
        parents = parents[:depth]
        if parents:
            assert cls.__bases__[0].__name__ == parents[-1], f"{name} is drawn under {parents[-1]}"
        if status != "(its own)":
            assert cls.status == int(status), f"{name} is drawn as {status}, answers {cls.status}"
        else:
            assert issubclass(cls, ApiProblem)
        parents.append(name)


def test_every_error_class_of_the_service_is_drawn() -> None:
    """No ``KurzError`` subclass is defined outside the drawing (one tree, in one place)."""
    drawn = {name for _, name, _ in drawn_tree()}
    defined = {cls.__name__ for cls in all_kurz_errors()}
    assert defined == drawn


@pytest.mark.parametrize("cls", sorted(all_kurz_errors(), key=lambda c: c.__name__))
def test_every_error_class_is_defined_in_the_errors_package(cls: type[KurzError]) -> None:
    """Every error class lives in ``service.errors`` and is importable from it, so the tree is
    read in one place."""
    assert cls.__module__.startswith("service.errors."), f"{cls.__name__} is in {cls.__module__}"
    assert getattr(errors, cls.__name__) is cls
    assert cls.__name__ in errors.__all__
