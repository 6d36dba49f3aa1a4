"""A small HTML tree: parsed with the standard library, written back out, nothing else.

:mod:`service.sources.markup` needs to walk a fragment, replace the text of its blocks and write
it out again with every tag and attribute where it was.  ``html.parser`` reads the markup as it
comes (no tag soup repaired beyond what is below) and keeps attribute order; lxml would be faster
but moves things (it wraps a fragment in ``<p>``, hoists blocks out of paragraphs), which is
exactly what must not happen here.

Repairs made while parsing, as browsers make them: a void element (``<br>``, ``<img>``) has no
children; a new ``<p>``, heading, list or other block closes an open ``<p>``; a new ``<li>``
closes an open ``<li>`` of the same list, ``<td>``/``<th>`` a cell of the same row, ``<tr>`` a row
of the same table, ``<dt>``/``<dd>`` one of the same list; an end tag closes everything opened
after its element; an end tag with no open element is ignored; comments are dropped.
"""

from __future__ import annotations

import copy
import html
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Final

__all__ = ["VOID_TAGS", "Element", "Node", "parse_fragment", "serialize", "text_of"]

VOID_TAGS: Final = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track"}
    | {"wbr"}
)
#: Elements whose start closes an open ``<p>``.
_CLOSES_P: Final = frozenset(
    {"address", "article", "aside", "blockquote", "div", "dl", "fieldset", "figcaption"}
    | {"figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "main"}
    | {"nav", "ol", "p", "pre", "section", "table", "ul"}
)
#: For a start tag, the open elements it closes and the container that stops the search.
_CLOSES_SIBLING: Final = {
    "li": ({"li"}, {"ul", "ol"}),
    "td": ({"td", "th"}, {"tr", "table"}),
    "th": ({"td", "th"}, {"tr", "table"}),
    "tr": ({"tr", "td", "th"}, {"table", "tbody", "thead", "tfoot"}),
    "dt": ({"dt", "dd"}, {"dl"}),
    "dd": ({"dt", "dd"}, {"dl"}),
}


@dataclass(eq=False)
class Element:
    """One element: its tag, its attributes in source order, and its children."""

    tag: str
    attrs: list[tuple[str, str | None]] = field(default_factory=list)
    children: list[Node] = field(default_factory=list)

    def attr(self, name: str) -> str | None:
        """The value of attribute ``name``, or None when absent."""
        return next((value for key, value in self.attrs if key == name), None)

    def shell(self) -> Element:
        """The same element without children (for rebuilding its content)."""
        return Element(self.tag, list(self.attrs))

    def clone(self) -> Element:
        """A deep copy, so one original can be placed twice without sharing."""
        return copy.deepcopy(self)


Node = Element | str


class _TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#root")
        self.stack: list[Element] = [self.root]

    def _close(self, tags: set[str] | frozenset[str], stop: set[str]) -> None:
        """Close the innermost open element in ``tags`` unless a ``stop`` element comes first."""
        for depth in range(len(self.stack) - 1, 0, -1):
            tag = self.stack[depth].tag
            if tag in stop:
                return
            if tag in tags:
                del self.stack[depth:]
                return

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _CLOSES_P:
            self._close({"p"}, {"div", "td", "th", "li", "blockquote", "section", "article"})
        if tag in _CLOSES_SIBLING:
            closes, stop = _CLOSES_SIBLING[tag]
            self._close(closes, stop)
        element = Element(tag, attrs)
        self.stack[-1].children.append(element)
        if tag not in VOID_TAGS:
            self.stack.append(element)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in VOID_TAGS:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        for depth in range(len(self.stack) - 1, 0, -1):
            if self.stack[depth].tag == tag:
                del self.stack[depth:]
                return

    def handle_data(self, data: str) -> None:
        children = self.stack[-1].children
        if children and isinstance(children[-1], str):
            children[-1] += data
        else:
            children.append(data)


def parse_fragment(markup: str) -> Element:
    """A ``#root`` element holding the fragment; for a whole document, the body's content."""
    builder = _TreeBuilder()
    builder.feed(markup)
    builder.close()
    body = _find(builder.root, "body")
    if body is not None:
        return Element("#root", children=body.children)
    document = _find(builder.root, "html")
    if document is not None:
        kept = [c for c in document.children if not (isinstance(c, Element) and c.tag == "head")]
        return Element("#root", children=kept)
    return builder.root


def _find(element: Element, tag: str) -> Element | None:
    for child in element.children:
        if isinstance(child, Element):
            if child.tag == tag:
                return child
            found = _find(child, tag)
            if found is not None:
                return found
    return None


def text_of(node: Node) -> str:
    """All text below ``node``, tags left out."""
    if isinstance(node, str):
        return node
    return "".join(text_of(child) for child in node.children)


def serialize(node: Node) -> str:
    """Markup for ``node``: text escaped, attributes quoted, void elements without end tags."""
    if isinstance(node, str):
        return html.escape(node, quote=False)
    inner = "".join(serialize(child) for child in node.children)
    if node.tag == "#root":
        return inner
    attrs = "".join(
        f" {name}" if value is None else f' {name}="{html.escape(value, quote=True)}"'
        for name, value in node.attrs
    )
    if node.tag in VOID_TAGS:
        return f"<{node.tag}{attrs}>"
    return f"<{node.tag}{attrs}>{inner}</{node.tag}>"
