"""The web app's own refusals, worded in the page's language.

A :class:`PageError` keeps its catalog message and the fields it is filled with, so the error
page says it in the page's language; its ``detail`` stays the English text (for JSON answers
and logs).
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.exceptions import HTTPException


class PageError(HTTPException):
    """An HTTP error whose words come from the catalogs (mark ``message`` with ``N_``)."""

    def __init__(self, status: int, message: str, *, locale: str | None = None,
                 **fields: object) -> None:
        super().__init__(status, message.format(**fields))
        self.message, self.fields, self.locale = message, fields, locale

    def said(self, gettext: Callable[[str], str]) -> str:
        """The message in the language of ``gettext``."""
        return gettext(self.message).format(**self.fields)
