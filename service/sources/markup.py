"""Translating HTML while keeping its markup: blocks as units, inline tags as placeholders.

A block (``p``, a heading, ``li``, ``td``, ``blockquote``, ``figcaption``, any container's run of
text) is translated as one unit, its whitespace folded, so a sentence wrapped over three source
lines is still one sentence to the model.  Inline elements inside it (``a``, ``em``, ``strong``,
``b``, ``i``, ``span`` and their kin) become placeholder tokens around the words they wrap::

    <p>Die <a href="/k">Kanzlerin</a> sprach <em>lange</em>.</p>
    -> "Die <g1>Kanzlerin</g1> sprach <g2>lange</g2>."

and the translation's tokens put each element back around the English words.  Elements with no
words of their own (``<br>``, ``<img>``) and those that must not be translated (``code``, and
anything marked ``translate="no"`` or ``class="notranslate"``) become single tokens
(``<x3/>``) and come back unchanged.  A model may drop, duplicate or garble tokens; then:

* a token that names no element of the unit, or comes a second time, is dropped;
* an element opened and never closed lets its words stay where they are;
* an element that is lost this way, or never appears at all, is **re-attached at the end of its
  block**, around a separate translation of the words it wrapped (so those words may appear
  twice: once in the sentence, once in the re-attached link).  Nothing is ever dropped.

Attributes are kept as written; the result is sanitized with nh3 (Ammonia): scripts, styles,
event handlers and ``javascript:`` URLs go.  ``translate`` is **asynchronous**: it takes a list of
German segments (placeholders included) and returns their translations in order.
:func:`sentence_translator` adapts a sentence translator (such as the worker's scheduler) to it.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Final

import nh3

from service.sources.markup_tree import Element, Node, parse_fragment, serialize, text_of
from service.text.segment import split_sentences

__all__ = ["SegmentTranslator", "sanitize", "sentence_translator", "translate_html"]

SegmentTranslator = Callable[[list[str]], Awaitable[list[str]]]
"""German segments in, English segments out, same length and order."""

#: Inline elements that wrap words: they get a token pair and keep their place.
_INLINE: Final = frozenset(
    {"a", "abbr", "b", "bdi", "cite", "del", "dfn", "em", "i", "ins", "mark", "q", "s", "small"}
    | {"span", "strong", "sub", "sup", "time", "u"}
)
#: Inline elements copied whole as one token: no words, or words that must stay as written.
_ATOMIC: Final = frozenset({"br", "img", "wbr", "code", "kbd", "samp", "var", "math", "svg"})
#: Elements left exactly as they are, wherever they stand.
_UNTOUCHED: Final = frozenset({"script", "style", "pre", "textarea", "template", "noscript"})
#: A placeholder as models write it back, a blank allowed between its parts (``< g1 >``); one
#: blank, not ``\s*``, so that adjacent optional runs cannot backtrack quadratically.
_TOKEN: Final = re.compile(r"< ?(/?) ?([gx]) ?(\d{1,4}) ?(/?) ?>")
_SPACES: Final = re.compile(r"\s+")
#: Attributes kept on every element on top of nh3's per-tag defaults.
_GENERIC_ATTRIBUTES: Final = {"class", "dir", "id", "lang", "title", "translate"}


def _protected(element: Element) -> bool:
    """Whether ``element`` is marked to stay untranslated."""
    classes = (element.attr("class") or "").split()
    return (element.attr("translate") or "").strip().lower() == "no" or "notranslate" in classes


def _is_inline(node: Node) -> bool:
    """Text, or an inline element with only inline content: part of a translation unit."""
    if isinstance(node, str):
        return True
    if node.tag in _ATOMIC or (node.tag in _INLINE and _protected(node)):
        return True
    return node.tag in _INLINE and all(_is_inline(child) for child in node.children)


@dataclass(eq=False)
class _Unit:
    """One run of inline content: its source with tokens, and what each token stands for."""

    parent: Element
    start: int
    nodes: list[Node]
    source: str = ""
    pairs: dict[int, Element] = field(default_factory=dict)
    atoms: dict[int, Element] = field(default_factory=dict)
    lead: str = ""
    trail: str = ""

    def encode(self) -> None:
        """Fill ``source`` with the folded text and tokens; number the elements."""
        parts: list[str] = []

        def walk(node: Node) -> None:
            if isinstance(node, str):
                parts.append(node)
                return
            number = len(self.pairs) + len(self.atoms) + 1
            if node.tag in _ATOMIC or _protected(node):
                self.atoms[number] = node
                parts.append(f" <x{number}/> " if node.tag == "br" else f"<x{number}/>")
                return
            self.pairs[number] = node
            parts.append(f"<g{number}>")
            for child in node.children:
                walk(child)
            parts.append(f"</g{number}>")

        for node in self.nodes:
            walk(node)
        raw = "".join(parts)
        self.lead = " " if raw[:1].isspace() else ""
        self.trail = " " if raw[-1:].isspace() else ""
        self.source = _SPACES.sub(" ", raw).strip()

    @property
    def translatable(self) -> bool:
        """Whether any words remain once the tokens are taken out."""
        return bool(_TOKEN.sub("", self.source).strip())


def _collect(element: Element, units: list[_Unit]) -> None:
    """Cut ``element``'s children into units (runs of inline content) and recurse into blocks."""
    if element.tag in _UNTOUCHED or _protected(element):
        return
    run: list[Node] = []
    start = 0
    for index, child in enumerate([*element.children, None]):
        if child is not None and _is_inline(child):
            if not run:
                start = index
            run.append(child)
            continue
        if run:
            unit = _Unit(element, start, run)
            unit.encode()
            if unit.translatable:
                units.append(unit)
            run = []
        if isinstance(child, Element):
            _collect(child, units)


def _rebuild(unit: _Unit, translation: str) -> tuple[list[Node], list[int]]:
    """The unit's new nodes from ``translation``, and the numbers of elements not placed."""
    root = Element("#unit")
    stack: list[tuple[int, Element]] = [(0, root)]
    created: dict[int, Element] = {}
    atoms_placed: set[int] = set()
    position = 0
    for match in _TOKEN.finditer(translation):
        _append_text(stack[-1][1], translation[position : match.start()])
        position = match.end()
        closing, kind, number = match.group(1) == "/", match.group(2), int(match.group(3))
        if kind == "x":
            if number in unit.atoms and number not in atoms_placed:
                atoms_placed.add(number)
                stack[-1][1].children.append(unit.atoms[number].clone())
        elif closing:
            if any(open_number == number for open_number, _ in stack[1:]):
                while stack[-1][0] != number:
                    stack.pop()
                stack.pop()
        elif number in unit.pairs and number not in created:
            element = unit.pairs[number].shell()
            created[number] = element
            stack[-1][1].children.append(element)
            stack.append((number, element))
    _append_text(stack[-1][1], translation[position:])
    lost: set[int] = set()
    for number, element in reversed(stack[1:]):  # opened, never closed: unwrap in place
        lost.add(number)
        _unwrap(root, element)
    for number, element in created.items():
        if (
            number not in lost
            and not text_of(element).strip()
            and text_of(unit.pairs[number]).strip()
        ):
            lost.add(number)  # placed around nothing: its words are elsewhere
            _unwrap(root, element)
    _trim_around_breaks(root)
    missing = [n for n in unit.pairs if n not in created or n in lost]
    missing += [n for n in unit.atoms if n not in atoms_placed]
    return root.children, missing


def _trim_around_breaks(element: Element) -> None:
    """Take out the blanks the ``<br>`` token was written with (``" <x3/> "``)."""
    children = element.children
    for index, child in enumerate(children):
        if isinstance(child, Element):
            if child.tag == "br":
                if index > 0 and isinstance(children[index - 1], str):
                    children[index - 1] = str(children[index - 1]).rstrip(" ")
                if index + 1 < len(children) and isinstance(children[index + 1], str):
                    children[index + 1] = str(children[index + 1]).lstrip(" ")
            else:
                _trim_around_breaks(child)
    element.children = [child for child in children if child != ""]


def _append_text(element: Element, text: str) -> None:
    """Add text (blank runs folded, as tokens taken out leave them) to ``element``."""
    text = _SPACES.sub(" ", text)
    if text:
        element.children.append(text)


def _walk(element: Element) -> list[Element]:
    result: list[Element] = []
    for child in element.children:
        if isinstance(child, Element):
            result.append(child)
            result.extend(_walk(child))
    return result


def _unwrap(root: Element, target: Element) -> None:
    """Replace ``target`` by its children wherever it sits below ``root``."""
    for parent in [root, *_walk(root)]:
        for index, child in enumerate(parent.children):
            if child is target:
                parent.children[index : index + 1] = target.children
                return


def _copy_without(nodes: Sequence[Node], drop: set[int]) -> list[Node]:
    """Copies of ``nodes`` with the elements whose ids are in ``drop`` unwrapped."""
    result: list[Node] = []
    for node in nodes:
        if isinstance(node, str):
            result.append(node)
        elif id(node) in drop:
            result.extend(_copy_without(node.children, drop) if node.tag not in _ATOMIC else [])
        else:
            copied = node.shell()
            copied.children = _copy_without(node.children, drop)
            result.append(copied)
    return result


def _outermost_missing(unit: _Unit, missing: Sequence[int]) -> list[int]:
    """Missing pair elements not inside another missing one (that one brings them along)."""
    missing_pairs = [n for n in missing if n in unit.pairs]
    inside = {
        id(node)
        for n in missing_pairs
        for node in _walk(unit.pairs[n])  # descendants of a missing element
    }
    return [n for n in missing_pairs if id(unit.pairs[n]) not in inside]


async def translate_html(markup: str, translate: SegmentTranslator) -> str:
    """``markup`` with its text translated by ``translate`` and its tags kept, sanitized.

    A whole document is reduced to its body's content.  ``translate`` is awaited once for the
    blocks, and once more per level of nesting for elements whose place the model lost.
    """
    root = parse_fragment(markup)
    units: list[_Unit] = []
    _collect(root, units)
    while units:
        translations = await translate([unit.source for unit in units])
        if len(translations) != len(units):
            message = f"translate returned {len(translations)} segments for {len(units)}"
            raise ValueError(message)
        followups: list[_Unit] = []
        # Later units first: replacing a run shifts the indices of the runs after it.
        for unit, translation in sorted(
            zip(units, translations, strict=True), key=lambda pair: -pair[0].start
        ):
            nodes, missing = _rebuild(unit, translation)
            reattached = _outermost_missing(unit, missing)
            placed = {
                id(e) for n, e in [*unit.pairs.items(), *unit.atoms.items()] if n not in missing
            }
            for number in reattached:
                shell = unit.pairs[number].shell()
                # What was placed in the sentence already must not come a second time.
                shell.children = _copy_without(unit.pairs[number].children, placed)
                nodes.extend([" ", shell])
                inner = _Unit(shell, 0, shell.children)
                inner.encode()
                if inner.translatable:
                    followups.append(inner)
            brought = {id(node) for n in reattached for node in _walk(unit.pairs[n])}
            for number in missing:
                if number in unit.atoms and id(unit.atoms[number]) not in brought:
                    atom = unit.atoms[number]
                    nodes.extend([atom.clone()] if atom.tag == "br" else [" ", atom.clone()])
            nodes = [unit.lead, *nodes, unit.trail] if unit.lead or unit.trail else nodes
            end = unit.start + len(unit.nodes)
            unit.parent.children[unit.start : end] = [n for n in nodes if n != ""]
        units = followups
    return sanitize(serialize(root))


def sanitize(markup: str) -> str:
    """nh3's safe defaults, plus the generic attributes translation must not lose."""
    attributes = {tag: set(names) for tag, names in nh3.ALLOWED_ATTRIBUTES.items()}
    attributes["*"] = set(_GENERIC_ATTRIBUTES)
    return nh3.clean(markup, attributes=attributes, link_rel=None)


def sentence_translator(
    translate_sentences: Callable[[list[str]], Awaitable[list[str]]],
) -> SegmentTranslator:
    """A segment translator that sends each segment's sentences to ``translate_sentences``.

    Segments are paragraphs; MarianMT reads one sentence at a time, so each is split with the
    pipeline's own segmentation and the translations joined with spaces.  Placeholder tokens
    stay in the sentence where they stand.
    """

    async def translate(segments: list[str]) -> list[str]:
        pieces = [[s.text for s in split_sentences(segment)] or [segment] for segment in segments]
        flat = [sentence for piece in pieces for sentence in piece]
        english = await translate_sentences(flat)
        result: list[str] = []
        offset = 0
        for piece in pieces:
            result.append(" ".join(english[offset : offset + len(piece)]))
            offset += len(piece)
        return result

    return translate
