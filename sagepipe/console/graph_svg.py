"""The run page's graph: graph.py's picture of the execution, as SVG safe to put in the page.

graph.py draws the state machine with the path taken (the same DOT as graph.svg); Graphviz lays it out. Labels
and tooltips carry text from events (error causes, object keys): graph.py quotes them for DOT and Graphviz
escapes them for XML. The console does not rely on that alone: it parses Graphviz's SVG and writes out only the
elements and attributes a drawing needs (no script, no event handler, no style, no link), escaping every text and
attribute itself. A tooltip (`<a xlink:title>`) becomes a `<title>`, which browsers show the same way.

Each state's node is a `<g class="node state ...">` whose first `<title>` is the state's name: the page's script
finds the state clicked by it.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any, Final

from sagepipe.local.graph import dot_to_svg, execution_path, to_dot

SVG_NS: Final = "http://www.w3.org/2000/svg"
XLINK_TITLE: Final = "{http://www.w3.org/1999/xlink}title"

ELEMENTS: Final = frozenset({"svg", "g", "title", "path", "polygon", "polyline", "ellipse", "circle", "rect", "text"})
ATTRIBUTES: Final = frozenset(
    {
        "id",
        "class",
        "viewBox",
        "transform",
        "d",
        "points",
        "cx",
        "cy",
        "rx",
        "ry",
        "r",
        "x",
        "y",
        "width",
        "height",
        "fill",
        "stroke",
        "stroke-width",
        "stroke-dasharray",
        "font-family",
        "font-size",
        "font-weight",
        "font-style",
        "text-anchor",
    }
)
_DOCTYPE: Final = re.compile(r"<!DOCTYPE[^>]*>", re.DOTALL)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _attributes(element: ET.Element, root: bool) -> str:
    kept = []
    for name, value in element.attrib.items():
        local = _local(name)
        if local not in ATTRIBUTES or (root and local in {"width", "height"}):
            continue  # the page sizes the picture (CSS); the viewBox keeps its proportions
        kept.append(f' {local}="{escape(value, quote=True)}"')
    return "".join(kept)


def _write(element: ET.Element, out: list[str], root: bool = False) -> None:
    tag = _local(element.tag)
    if tag == "a":
        # A Graphviz tooltip: keep what it wraps, its text as a <title> (the only thing it may carry).
        title = element.attrib.get(XLINK_TITLE)
        out.append("<g>")
        if title:
            out.append(f"<title>{escape(title, quote=False)}</title>")
        for child in element:
            _write(child, out)
        out.append("</g>")
    elif tag in ELEMENTS:
        namespace = f' xmlns="{SVG_NS}"' if root else ""
        out.append(f"<{tag}{namespace}{_attributes(element, root)}>")
        if element.text and tag in {"title", "text"}:
            out.append(escape(element.text, quote=False))
        for child in element:
            _write(child, out)
        out.append(f"</{tag}>")
    # Anything else (script, foreignObject, style, image, use...) is dropped with its content.


def sanitize(svg: str) -> str:
    """Graphviz's SVG with only drawing elements and attributes, every text escaped."""
    # Graphviz writes a DOCTYPE with an external DTD and no entities; it is dropped, so nothing is expanded or fetched.
    root = ET.fromstring(_DOCTYPE.sub("", svg, count=1))  # noqa: S314 - our own Graphviz output, DOCTYPE removed
    if _local(root.tag) != "svg":
        raise ValueError("not an SVG document")
    out: list[str] = []
    _write(root, out, root=True)
    return "".join(out)


def execution_svg(
    definition: Mapping[str, Any], history: Sequence[Mapping[str, Any]], *, title: str
) -> tuple[str | None, str | None]:
    """(The sanitized SVG of the execution, None), or (None, why there is no picture)."""
    svg, problem = dot_to_svg(to_dot(definition, execution_path(history), title=title))
    if svg is None:
        return None, problem
    try:
        return sanitize(svg), None
    except (ET.ParseError, ValueError) as error:
        return None, f"Graphviz's SVG could not be read: {error}"
