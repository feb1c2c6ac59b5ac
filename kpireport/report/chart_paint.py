"""charts.css resolved into the charts' own attributes, for the PDF renderer.

WeasyPrint styles an inline SVG only from a ``<style>`` inside it, and it parses and compiles
that stylesheet again for every chart (~20 a report). It applies a stylesheet to an SVG element
by writing each matching declaration into the element's attributes (in the order of the
selectors' specificity, then of the rules; the root ``<svg>`` itself is never styled), before
the style attribute and before inheritance. :class:`ChartPaint` does that same step once per
renderer and per kind of element, in text: every element of a chart gets the declarations its
selectors match as attributes, and the chart needs no ``<style>``. The result is the same
attributes, so the same pixels and the same tags (role, title and alt text are untouched).

Only stylesheets whose meaning this can reproduce exactly are resolved: rules whose selectors
are type, class and universal selectors joined by descendant combinators, without
``!important``, at-rules or anything else. :meth:`ChartPaint.from_css` returns ``None`` for any
other stylesheet, and the renderer then puts the stylesheet into each chart as before.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html import escape, unescape

# One compound selector: (type or None for any, the classes it requires).
Compound = tuple[str | None, frozenset[str]]
# A rule's selector: compounds from the outermost ancestor to the element, its specificity
# (classes, types), the rule's index, and the declarations of the rule.
Rule = tuple[tuple[Compound, ...], tuple[int, int], int, tuple[tuple[str, str], ...]]

_IDENT = re.compile(r"-?[A-Za-z_][A-Za-z0-9_-]*\Z")
_PROPERTY = re.compile(r"[a-z][a-z0-9-]*\Z")
_CHART = re.compile(r"<svg\b.*?</svg\s*>", re.S | re.I)
_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9:._-]*)((?:[^>\"']|\"[^\"]*\"|'[^']*')*?)(/?)>")
_ATTRIBUTE = re.compile(r"""\s*([^\s=/>"']+)(?:\s*=\s*("[^"]*"|'[^']*'|[^\s"'=<>`]+))?""")
# Markup inside a chart that a tag scanner cannot read for certain: such a chart keeps its
# <style>.
_UNSURE = re.compile(r"<!--|<!\[CDATA\[|<svg\b", re.I)


@dataclass
class ChartPaint:
    """A chart stylesheet as rules a tag scanner applies (see the module's docstring)."""

    rules: tuple[Rule, ...]
    fallback: str  # the stylesheet as a <style> element, for a chart that cannot be resolved
    # by the chain of (tag, classes) from the root to an element: the names it gets and
    # their attribute text
    _cache: dict[tuple, tuple[frozenset[str], str]] = field(default_factory=dict, repr=False)

    @classmethod
    def from_css(cls, css: str) -> ChartPaint | None:
        """The resolved form of ``css``; ``None`` when it uses anything beyond type, class and
        universal selectors with descendant combinators and plain declarations."""
        import tinycss2  # lazy: only the PDF path resolves chart styles

        rules: list[Rule] = []
        for index, rule in enumerate(tinycss2.parse_stylesheet(css, skip_comments=True,
                                                                skip_whitespace=True)):
            if rule.type != "qualified-rule":
                return None  # an at-rule (@media, @import, @font-face…) or a parse error
            declarations = _declarations(tinycss2, rule.content)
            selectors = _selectors(rule.prelude)
            if declarations is None or selectors is None:
                return None
            if not declarations:
                continue
            for compounds in selectors:
                specificity = (sum(len(c) for _, c in compounds),
                               sum(t is not None for t, _ in compounds))
                rules.append((compounds, specificity, index, declarations))
        rules.sort(key=lambda r: (r[1], r[2]))
        return cls(tuple(rules), "<style>" + css.replace("<", "\\3C ") + "</style>")

    def apply(self, html: str) -> str:
        """``html`` with every inline ``<svg>`` painted by attributes."""
        if "<svg" not in html:
            return html
        return _CHART.sub(self._chart, html)

    def _chart(self, match: re.Match) -> str:
        chart = match.group(0)
        if _UNSURE.search(chart, 4):
            start = chart.index(">") + 1
            return chart[:start] + self.fallback + chart[start:]
        chain: list[tuple[str, frozenset[str]]] = []
        parts: list[str] = []
        last = 0
        for tag in _TAG.finditer(chart):
            closing, name, attributes, empty = tag.groups()
            if closing:
                if chain:
                    chain.pop()
                continue
            classes = _classes(attributes)
            chain.append((name, classes))
            if len(chain) > 1:  # the root <svg> is never styled
                key = tuple(chain)
                found = self._cache.get(key)
                if found is None:
                    found = self._cache[key] = self._paint(key)
                names, paint = found
                if paint:
                    parts += [chart[last:tag.start()], "<", name,
                              _without(attributes, names), paint, empty, ">"]
                    last = tag.end()
            if empty:
                chain.pop()
        if not parts:
            return chart
        parts.append(chart[last:])
        return "".join(parts)

    def _paint(self, chain: tuple) -> tuple[frozenset[str], str]:
        """What the rules declare for the chain's last element, in cascade order."""
        declared: dict[str, str] = {}
        for compounds, _, _, declarations in self.rules:
            if _matches(compounds, chain):
                declared.update(declarations)
        return frozenset(declared), "".join(f' {name}="{escape(value)}"'
                                            for name, value in declared.items())


def _declarations(tinycss2, content) -> tuple[tuple[str, str], ...] | None:
    """The declarations WeasyPrint's SVG styling reads from a rule (names without a leading
    dash, values serialised and stripped); ``None`` if one is ``!important`` or not a
    plain property name."""
    out: list[tuple[str, str]] = []
    for item in tinycss2.parse_blocks_contents(content, skip_comments=True,
                                               skip_whitespace=True):
        if item.type != "declaration":
            return None
        if item.name.startswith("-"):
            continue  # WeasyPrint ignores these in SVG
        if item.important or not _PROPERTY.match(item.lower_name):
            return None
        out.append((item.lower_name, tinycss2.serialize(item.value).strip()))
    return tuple(out)


def _selectors(prelude) -> list[tuple[Compound, ...]] | None:
    """A selector list of type, class and universal selectors with descendant combinators, as
    compounds per selector; ``None`` for anything else."""
    selectors: list[tuple[Compound, ...]] = []
    compounds: list[Compound] = []
    tag: str | None = None
    classes: set[str] = set()
    started = False
    pending_dot = False

    def close() -> bool:
        nonlocal tag, classes, started
        if not started:
            return False
        compounds.append((tag, frozenset(classes)))
        tag, classes, started = None, set(), False
        return True

    for token in prelude:
        kind = token.type
        if pending_dot:
            if kind != "ident" or not _IDENT.match(token.value):
                return None
            classes.add(token.value)
            pending_dot = False
            continue
        if kind == "whitespace":
            close()
        elif kind == "ident" and not started and _IDENT.match(token.value):
            tag, started = token.value, True
        elif kind == "literal" and token.value == "*" and not started:
            started = True
        elif kind == "literal" and token.value == ".":
            started, pending_dot = True, True
        elif kind == "literal" and token.value == ",":
            if not close() and not compounds:
                return None
            selectors.append(tuple(compounds))
            compounds = []
        else:
            return None  # ids, attributes, pseudo-classes, other combinators…
    if pending_dot:
        return None
    close()
    if not compounds:
        return None
    selectors.append(tuple(compounds))
    return selectors


def _matches(compounds: tuple[Compound, ...], chain: tuple) -> bool:
    """Whether the last compound matches the chain's last element and the others match its
    ancestors in order (descendant combinators)."""

    def fits(compound: Compound, element: tuple[str, frozenset[str]]) -> bool:
        tag, classes = compound
        return (tag is None or tag == element[0]) and classes <= element[1]

    if not fits(compounds[-1], chain[-1]):
        return False
    position = len(chain) - 2
    for compound in reversed(compounds[:-1]):
        while position >= 0 and not fits(compound, chain[position]):
            position -= 1
        if position < 0:
            return False
        position -= 1
    return True


def _classes(attributes: str) -> frozenset[str]:
    for name, value in _ATTRIBUTE.findall(attributes):
        if name.lower() == "class":
            return frozenset(_unquote(value).split())
    return frozenset()


def _without(attributes: str, names: frozenset[str]) -> str:
    """The attribute text without the attributes ``names`` (they are set again after it)."""
    if not any(name in attributes.lower() for name in names):
        return attributes
    return "".join(a.group(0) for a in _ATTRIBUTE.finditer(attributes)
                   if a.group(1).lower() not in names)


def _unquote(value: str) -> str:
    if value[:1] in "\"'":
        value = value[1:-1]
    return unescape(value)
