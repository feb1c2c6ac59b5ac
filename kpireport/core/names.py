"""File names from workbook text: the one place an employee id or a department becomes a name.

Every report file whose name comes from the workbook goes through :func:`safe_names`, so no id
can become a path (``../../x``, ``a/b``), a Windows device (``CON``), one of the run folder's own
files (``index``, ``company``) or a name that differs from another only by case or Unicode
normalisation (which case-insensitive and normalising file systems would merge). The text itself
stays as typed in the documents; only the file name is made safe.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable

MAX_LENGTH = 64
# Windows device names (with any extension), and the run folder's own file stems.
RESERVED = frozenset(
    ["con", "prn", "aux", "nul", "clock$", "conin$", "conout$"]
    + [f"{d}{n}" for d in ("com", "lpt") for n in "0123456789"]
    + ["index", "company", "results", "payroll", "recipients", "manifest", "audit", "archive",
       "employees", "departments"])
_UNSAFE = re.compile(r"[^A-Za-z0-9_]+")


def base_name(text: str, *, lower: bool = False, fallback: str = "report") -> str:
    """``text`` as a file-name stem: ASCII letters, digits, ``_`` and single ``-`` only.

    Letters with accents lose them (``Đức`` → ``Duc``); every other run of characters
    (separators, dots, ``#?%``, spaces, control characters, other scripts) becomes one ``-``.
    At most :data:`MAX_LENGTH` characters; a reserved name gets a trailing ``_``.
    """
    text = unicodedata.normalize("NFKC", text).replace("đ", "d").replace("Đ", "D")
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    if lower:
        text = text.lower()
    name = _UNSAFE.sub("-", text).strip("-")[:MAX_LENGTH].strip("-") or fallback
    if name.casefold() in RESERVED:
        name += "_"
    return name


def safe_names(texts: Iterable[str], *, lower: bool = False,
               fallback: str = "report") -> dict[str, str]:
    """A distinct, safe file-name stem for each text; deterministic for a given set of texts.

    Texts whose stems are equal ignoring case get suffixes: the text typed exactly as its stem
    keeps it (``E1`` stays ``E1``), the others, in code-point order, get ``-2``, ``-3`` … (a
    suffixed name never equals another text's stem). The order the texts come in does not
    matter.
    """
    unique = sorted(set(texts))
    stems = {t: base_name(t, lower=lower, fallback=fallback) for t in unique}
    groups: dict[str, list[str]] = defaultdict(list)
    for text in unique:
        groups[stems[text].casefold()].append(text)
    taken = set(groups)
    names: dict[str, str] = {}
    for key in sorted(groups):
        members = sorted(groups[key], key=lambda t: (t != stems[t], t))
        names[members[0]] = stems[members[0]]
        n = 2
        for text in members[1:]:
            while f"{stems[text]}-{n}".casefold() in taken:
                n += 1
            names[text] = f"{stems[text]}-{n}"
            taken.add(names[text].casefold())
    return names
