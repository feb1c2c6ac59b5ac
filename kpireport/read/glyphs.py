"""Which workbook texts the shipped fonts cannot draw: a warning naming cell and characters.

The PDFs use the fonts in ``templates/fonts`` (Noto Sans: Latin, Greek, Cyrillic, Vietnamese;
KPI Symbols). A name in Chinese, Japanese, Korean, Arabic or with emoji has no glyph there;
WeasyPrint then takes a font of the machine if it has one, and draws empty boxes if not.
``check`` says so beforehand instead of a report silently showing boxes.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

from kpireport.core.issues import IssueLog
from kpireport.core.resources import builtin_templates

# Columns whose text is shown in the reports.
SHOWN = {"Settings": ("value",), "People": ("name", "department", "title"),
         "Goals": ("goal", "perspective"), "KPIs": ("kpi", "description"),
         "Comments": ("author", "comment"), "Bands": ("band",)}
FONTS = ("NotoSans-Regular.ttf", "NotoSans-Bold.ttf", "KpiSymbols.ttf")


@lru_cache(maxsize=1)
def covered() -> frozenset[int]:
    """Code points every shipped text font (regular and bold) or the symbol font draws."""
    # lazy: fontTools is loaded only where it is used (start-up stays light)
    from fontTools.ttLib import TTFont

    folder = builtin_templates() / "fonts"
    regular, bold, symbols = (set(TTFont(folder / name, lazy=True).getBestCmap())
                              for name in FONTS)
    return frozenset((regular & bold) | symbols)


def missing(text: str) -> list[str]:
    """The distinct characters of ``text`` the shipped fonts lack (format characters such as
    zero-width joiners and variation selectors are not listed: they draw nothing)."""
    if text.isascii():
        return []
    have = covered()
    found: dict[str, None] = {}
    for char in text:
        if ord(char) not in have and not char.isspace() \
                and unicodedata.category(char) not in ("Cf", "Mn", "Cc") \
                and not 0xFE00 <= ord(char) <= 0xFE0F:
            found.setdefault(char, None)
    return list(found)


def check_glyphs(tables: dict, log: IssueLog) -> None:
    """Warn (``missing-glyphs``) for every shown text cell with characters the fonts lack."""
    for sheet, columns in SHOWN.items():
        table = tables.get(sheet)
        if table is None:
            continue
        for column in columns:
            if column not in table.columns:
                continue
            for r in table.rows:
                value = table.value(r, column)
                if not isinstance(value, str):
                    continue
                chars = missing(value)
                if chars:
                    cell = table.cell(r, column)
                    shown = " ".join(f"{c} (U+{ord(c):04X})" for c in chars[:8])
                    more = f" and {len(chars) - 8} more" if len(chars) > 8 else ""
                    log.add("missing-glyphs", table.name, cell, chars=shown + more)
