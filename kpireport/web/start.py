"""Getting started without a terminal: the blank template, the samples and ``prepare``.

The same library calls as ``kpireport init`` (:func:`kpireport.data_in.template.write_template`,
``write_workbook`` of a sample) and ``kpireport prepare`` (:func:`kpireport.data_in.prepare.
prepare_workbook`). Files are written in the app's private folder and handed over as bytes; the
laid-out copy ``prepare`` makes becomes the next version of the workbook (the version it was
made from is never changed).
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from kpireport.core.errors import KpireportError

# The workbook locales offered on the page (any Babel locale works in Settings), with the
# currency each starts with.
LOCALES = {"en_US": "USD", "en_GB": "GBP", "vi_VN": "VND"}
CURRENCIES = ("USD", "VND", "EUR", "GBP", "JPY", "SGD", "AUD", "INR")
SAMPLES = {"acme": "acme.xlsx", "onlinecrm": "onlinecrm.xlsx"}


@dataclass(frozen=True)
class TemplateChoice:
    """What the template form asked for."""

    language: str  # of the texts: the page's, "en" or "vi"
    locale: str
    currency: str
    year: int

    @classmethod
    def of(cls, language: str, query) -> TemplateChoice:
        """From the page's language and the form's fields; a value not offered is refused."""
        locale = query.get("locale") or ("vi_VN" if language == "vi" else "en_US")
        if locale not in LOCALES:
            raise KpireportError(f"locale {locale!r} is not offered here; choose one of "
                                 f"{', '.join(LOCALES)}")
        currency = (query.get("currency") or LOCALES[locale]).upper()
        if currency not in CURRENCIES:
            raise KpireportError(f"currency {currency!r} is not offered here; choose one of "
                                 f"{', '.join(CURRENCIES)}")
        text = query.get("year") or str(dt.date.today().year)
        if not text.isdigit() or not 1990 <= int(text) <= 2100:
            raise KpireportError(f"year {text!r}: give a year from 1990 to 2100")
        return cls(language, locale, currency, int(text))

    @property
    def filename(self) -> str:
        return f"kpi-template-{self.year}-{self.locale}.xlsx"


def template_bytes(private: Path, choice: TemplateChoice) -> bytes:
    """The blank standard template, as ``kpireport init`` writes it, with the texts in the
    page's language and Settings' locale and currency as chosen."""
    # lazy: this stage loads only when the command reaches it (start-up stays light)
    from kpireport.data_in.template import write_template

    with _scratch(private) as folder:
        path = write_template(Path(folder) / choice.filename, year=choice.year,
                              locale=choice.locale, currency=choice.currency,
                              language=choice.language)
        return path.read_bytes()


def sample_bytes(private: Path, name: str) -> bytes:
    """A sample workbook (``kpireport init --sample NAME``), in its own language."""
    # lazy: this stage loads only when the command reaches it (start-up stays light)
    from kpireport.data_in import samples, template

    if name not in SAMPLES:
        raise KpireportError(f"no sample {name!r}; the samples are {', '.join(SAMPLES)}")
    with _scratch(private) as folder:
        path = template.write_workbook(Path(folder) / SAMPLES[name], samples.SAMPLES[name]())
        return path.read_bytes()


@dataclass(frozen=True)
class Prepared:
    """What ``prepare`` added, and the file with it (None when there was nothing to add)."""

    rows_added: dict[str, int]
    months_added: dict[str, int]
    file: Path | None

    @property
    def rows(self) -> int:
        return sum(self.rows_added.values())

    @property
    def months(self) -> int:
        return sum(self.months_added.values())


def prepare_copy(source: Path, into: Path) -> Prepared:
    """``kpireport prepare`` on a copy of ``source`` in ``into`` (same file name); the copy is
    the result only when rows or month columns were added."""
    # lazy: openpyxl is loaded only where it is used (start-up stays light)
    from kpireport.data_in.prepare import prepare_workbook

    copy = into / source.name
    shutil.copyfile(source, copy)
    result = prepare_workbook(copy)
    result.backup.unlink(missing_ok=True)  # the version it came from is the backup
    added = sum(result.rows_added.values()) + sum(result.months_added.values())
    return Prepared(dict(result.rows_added), dict(result.months_added),
                    copy if added else None)


def prepare_version(workspace, name: str, version: int | None):
    """"Lay out my Actuals sheet": ``prepare`` on a copy of a version of workbook ``name``;
    (what was added, the check of the new version or None when nothing was added)."""
    source = workspace.book(name, version)
    with _scratch(workspace.private) as folder:
        prepared = prepare_copy(source, Path(folder))
        if prepared.file is None:
            return prepared, None
        with prepared.file.open("rb") as handle:
            _, report = workspace.store_upload(name, handle, origin="prepare")
        return prepared, report


def _scratch(private: Path) -> tempfile.TemporaryDirectory:
    """A folder in the app's private folder, removed on leaving the ``with``."""
    private.mkdir(parents=True, exist_ok=True)
    return tempfile.TemporaryDirectory(prefix="start-", dir=private)
