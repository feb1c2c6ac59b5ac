"""Formula KPIs: a tiny arithmetic language (numbers, + - * / ( ) and kpi_ids), never ``eval``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

_TOKEN = re.compile(r"\s*(?:(\d+(?:\.\d*)?|\.\d+)|([A-Za-z][A-Za-z0-9_]*)|(.))")


class FormulaError(ValueError):
    """The formula text does not parse; the message says where."""


@dataclass(frozen=True)
class Node:
    op: str  # 'num', 'ref', 'neg', '+', '-', '*', '/'
    value: float = 0.0
    name: str = ""
    left: Node | None = None
    right: Node | None = None

    def refs(self) -> set[str]:
        if self.op == "ref":
            return {self.name}
        found: set[str] = set()
        for child in (self.left, self.right):
            if child is not None:
                found |= child.refs()
        return found


def parse(text: str) -> Node:
    """Parse ``text`` into a tree; kpi_id names keep the spelling they were written in."""
    tokens = _tokenise(text)
    parser = _Parser(tokens, text)
    node = parser.expression()
    if parser.pos != len(tokens):
        raise FormulaError(f"unexpected {tokens[parser.pos][1]!r} in {text!r}")
    return node


def _tokenise(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    for match in _TOKEN.finditer(text):
        number, name, other = match.groups()
        if number is not None:
            tokens.append(("num", number))
        elif name is not None:
            tokens.append(("ref", name))
        elif other is not None and other.strip():
            if other not in "+-*/()":
                raise FormulaError(
                    f"{other!r} is not allowed (use numbers, + - * / ( ) and kpi_ids)")
            tokens.append(("op", other))
    if not tokens:
        raise FormulaError("the formula is empty")
    return tokens


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]], text: str) -> None:
        self.tokens, self.text, self.pos = tokens, text, 0

    def _peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def expression(self) -> Node:
        node = self.term()
        while (tok := self._peek()) and tok in (("op", "+"), ("op", "-")):
            self.pos += 1
            node = Node(tok[1], left=node, right=self.term())
        return node

    def term(self) -> Node:
        node = self.factor()
        while (tok := self._peek()) and tok in (("op", "*"), ("op", "/")):
            self.pos += 1
            node = Node(tok[1], left=node, right=self.factor())
        return node

    def factor(self) -> Node:
        tok = self._peek()
        if tok is None:
            raise FormulaError(f"{self.text!r} ends too early")
        self.pos += 1
        kind, value = tok
        if kind == "num":
            return Node("num", value=float(value))
        if kind == "ref":
            if self._peek() == ("op", "("):
                raise FormulaError(f"functions such as {value}() are not allowed")
            return Node("ref", name=value)
        if value == "-":
            return Node("neg", left=self.factor())
        if value == "+":
            return self.factor()
        if value == "(":
            node = self.expression()
            if self._peek() != ("op", ")"):
                raise FormulaError(f"a ')' is missing in {self.text!r}")
            self.pos += 1
            return node
        raise FormulaError(f"unexpected {value!r} in {self.text!r}")


def rename(node: Node, names: dict[str, str]) -> Node:
    """Return the tree with every reference replaced by ``names[ref]`` (canonical ids)."""
    if node.op == "ref":
        return Node("ref", name=names.get(node.name, node.name))
    return Node(node.op, node.value, node.name,
                rename(node.left, names) if node.left else None,
                rename(node.right, names) if node.right else None)


def evaluate(node: Node, values: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Evaluate over arrays; return (result, divided_by_zero). NaN in → NaN out."""
    # lazy: numpy is loaded only where it is used (start-up stays light)
    import numpy as np

    with np.errstate(divide="ignore", invalid="ignore"):
        result, zero = _eval(node, values)
    return result, zero


def _eval(node: Node, values: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    # lazy: numpy is loaded only where it is used (start-up stays light)
    import numpy as np

    if node.op == "num":
        shape = next(iter(values.values())).shape if values else ()
        return np.full(shape, node.value), np.zeros(shape, dtype=bool)
    if node.op == "ref":
        arr = values[node.name]
        return arr, np.zeros(arr.shape, dtype=bool)
    left, lz = _eval(node.left, values)  # type: ignore[arg-type]
    if node.op == "neg":
        return -left, lz
    right, rz = _eval(node.right, values)  # type: ignore[arg-type]
    zero = lz | rz
    if node.op == "+":
        return left + right, zero
    if node.op == "-":
        return left - right, zero
    if node.op == "*":
        return left * right, zero
    by_zero = (right == 0) & ~np.isnan(left)
    out = np.where(by_zero, np.nan, left / np.where(right == 0, 1.0, right))
    return out, zero | by_zero
