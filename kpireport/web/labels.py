"""What the pages say in the page's language: the program's own words (severities, report
kinds, delivery states) and the check page's table of issues, from the catalogs."""

from __future__ import annotations

from collections.abc import Callable

from kpireport.core.issues import Issue, fix_in, in_table, text_in

Gettext = Callable[[str], str]


def _(text: str) -> str:
    """Marks a word for the catalogs; it is translated where it is shown (:func:`label`)."""
    return text


# the program's words a page shows: severities, report kinds, delivery states
LABELS = {
    "error": _("error"), "warning": _("warning"), "info": _("info"),
    "employee": _("employee"), "department": _("department"), "company": _("company"),
    "index": _("index"), "sent": _("sent"), "failed": _("failed"), "not sent": _("not sent"),
    "unknown": _("unknown"), "sending": _("sending"), "skipped": _("skipped"),
    "correction not sent": _("correction not sent"),
}
_ORDER = {"error": 0, "warning": 1, "info": 2}
NO_PAGE = _("There is no such page here.")  # a 404 of the router (its own: "Not Found")


def label(word: str, gettext: Gettext) -> str:
    """One of the program's words (:data:`LABELS`) in the language of ``gettext``; anything
    else as it is."""
    return gettext(LABELS[word]) if word in LABELS else word


def summary(facts: dict, gettext: Gettext) -> str:
    """What a build changed (``diff``'s summary line) from its numbers, in the language of
    ``gettext``."""
    # lazy: this stage loads only when the command reaches it (start-up stays light)
    from kpireport.month.diff import summary_in

    return summary_in(facts, gettext)


def issue_rows(issues: list[Issue], gettext: Gettext) -> list[dict]:
    """The check page's table: errors first; each message in the language of ``gettext``,
    without the sheet and cell its row shows in their own columns."""
    rows = []
    for i in sorted(issues, key=lambda i: _ORDER.get(i.severity, 3)):
        text = in_table(i, text_in(i, gettext))
        rows.append({"severity": i.severity, "label": label(i.severity, gettext),
                     "sheet": i.sheet, "cell": i.cell, "code": i.code, "message": text,
                     "fix": fix_in(i.code, gettext)})
    return rows
